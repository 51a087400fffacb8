"""Command lines: ``fastdiffpy`` (fast-diff-py's) and ``difpy`` (difPy's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not loaded before the console scripts' Ctrl-C handling (_start)
    import argparse


def add_engine_option(parser: argparse.ArgumentParser, note: str = "") -> None:
    """Both command lines' ``-e/--engine``: how the stages run (``FastDifPy``'s engine)."""
    from .._api import ENGINES
    from .._inline import SMALL_RUN_FILES

    parser.add_argument(
        "-e",
        "--engine",
        choices=ENGINES,
        default="auto",
        help="run the stages through Snakemake, job by job, or inline in this process, the same "
        f"stages with the same results (default auto: inline for up to {SMALL_RUN_FILES} files, "
        f"unless -v{note})",
    )
