"""``python -m fast_diff_py``: where an installed fast-diff keeps its workflow.

    snakemake --snakefile "$(python -m fast_diff_py snakefile)" --cores 8 --configfile my.yaml

runs the workflow of the installed package from any folder (its results go below that
folder); ``version`` prints the package's version.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from ._workflow import SNAKEFILE

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fast_diff_py", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["snakefile", "version"], help="what to print")
    args = parser.parse_args(argv)
    if args.what == "snakefile":
        if not SNAKEFILE.is_file():
            print(f"fast_diff_py: error: the workflow is missing from this installation ({SNAKEFILE})", file=sys.stderr)
            return 1
        print(SNAKEFILE)
    else:
        print(__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
