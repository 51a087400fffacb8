"""What each compare job declares as its input, against the thumbnails it compares.

On a finished workflow folder, a dry run that would redo every compare job lists each job's
input as Snakemake sees it (what it stages for the job where nodes share no disk). Printed per
job: the bytes declared, the bytes of the thumbnails (and crop thumbnails) the job compares
(its blocks' rows x S x S x 3), their ratio; the median and the largest over the jobs; the
total over all jobs; and, for scale, the bytes of every shard's stack, which is what each job
declared while compare jobs gathered their blocks from the shards.

    .venv/bin/python bench/compare_inputs.py /tmp/fastdiff-bench-*/fast-diff-difpy
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from fast_diff_py import CROP_STACK_SUFFIX

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import snakemake_command  # noqa: E402


def declared_inputs(work: Path) -> dict[int, list[Path]]:
    """Each compare job's input files (block id -> paths), from Snakemake's dry run."""
    out = subprocess.run(
        [
            *snakemake_command(work),
            "--dry-run",
            "--forcerun",
            "compare_blocks",
            "compare_blocks_gpu",
            "--cores",
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jobs = {}
    for block in out.split("\n\n"):
        if not re.search(r"^(local)?rule compare_blocks(_gpu)?:$", block, re.M):
            continue
        lines = [line.strip() for line in block.splitlines() if line.startswith("    ") and ": " in line]
        fields = dict(line.split(": ", 1) for line in lines)
        jobs[int(fields["wildcards"].removeprefix("a="))] = [work / p for p in fields["input"].split(", ")]
    return jobs


def thumbnail_bytes(path: Path) -> int:
    """The bytes of the thumbnails an ``.npy`` stack holds (its header left out)."""
    stack = np.load(path, mmap_mode="r")
    return int(stack.size * stack.itemsize)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, help="a finished workflow folder (holds config.yaml)")
    args = ap.parse_args()
    work = args.work.resolve()
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    results = work / cfg.get("results_dir", "results/work")
    jobs = declared_inputs(work)
    if not jobs:
        raise SystemExit(f"{work}: no compare jobs in the plan")
    ratios, declared_total, compared_total = [], 0, 0
    print(f"{'job':>5s} {'declared MB':>11s} {'compared MB':>11s} {'ratio':>6s}")
    for a, files in sorted(jobs.items()):
        declared = sum(p.stat().st_size for p in files)
        compared = sum(thumbnail_bytes(p) for p in files if p.suffix == ".npy")
        ratios.append(declared / compared)
        declared_total += declared
        compared_total += compared
        print(f"{a:5d} {declared / 1e6:11.2f} {compared / 1e6:11.2f} {declared / compared:6.3f}")
    shards = sorted((results / "thumbnails").glob("shard_*[0-9].npy"))
    crops = sorted((results / "thumbnails").glob(f"shard_*[0-9]{CROP_STACK_SUFFIX}"))
    every = sum(p.stat().st_size for p in [*shards, *crops])
    print(
        f"{len(jobs)} compare jobs: declared / compared median {statistics.median(ratios):.3f}, "
        f"largest {max(ratios):.3f}; all jobs declare {declared_total / 1e6:.1f} MB for "
        f"{compared_total / 1e6:.1f} MB of thumbnails compared"
    )
    print(
        f"every shard's stack: {every / 1e6:.1f} MB (each job's input when it gathered its blocks "
        f"from the shards: {len(jobs) * every / 1e6:.1f} MB over all jobs)"
    )


if __name__ == "__main__":
    main()
