"""Snakemake's share of a large run: jobs and DAG build time against shard and block size.

Needs a finished workflow folder (run the workflow on a corpus first, e.g. the 2 x 32,000
wallpaper corpus). For each block size, the plan of that block size is written into the
folder and ``snakemake --dry-run`` builds the whole DAG (``--rerun-triggers mtime`` keeps
the changed parameter from hiding the compare jobs behind the checkpoint): the printed
seconds are what Snakemake spends before and between jobs for that many jobs. Shard sizes
only change the thumbnail job count, listed alongside.

    .venv/bin/python bench/dag_scaling.py /tmp/w64k --block-sizes 1024,2048,4096,8192,16384
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from fast_diff_py import block_partners, make_plan, shard_file, shard_ids

REPO = Path(__file__).resolve().parents[1]


def dry_run(work: Path, config: Path, repeat: int) -> tuple[float, int]:
    times, jobs = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                "--snakefile",
                str(REPO / "workflow" / "Snakefile"),
                "--directory",
                str(work),
                "--configfile",
                str(config),
                "--dry-run",
                "--rerun-triggers",
                "mtime",
                "--cores",
                "2",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        times.append(time.perf_counter() - start)
        total = [line for line in out.splitlines() if line.startswith("total")]
        jobs = int(total[0].split()[1]) if total else 0
    return statistics.median(times), jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, help="a finished workflow folder (holds config.yaml)")
    ap.add_argument("--block-sizes", default="1024,2048,4096,8192,16384")
    ap.add_argument("--shard-sizes", default="500,1000,2000,5000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = args.work.resolve()
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    results = work / cfg.get("results_dir", "results/work")
    shards = shard_ids(results / "index")
    index = [str(results / "index" / shard_file(s)) for s in shards]
    meta = [str(results / "thumbnails" / shard_file(s)) for s in shards]
    stacks = [str(results / "thumbnails" / shard_file(s, ".npy")) for s in shards]
    digests = [str(results / "digests" / shard_file(s)) for s in shards] if (results / "digests").is_dir() else None
    files = sum(pq.read_metadata(p).num_rows for p in index)
    size = cfg.get("compression_target", 64)
    threshold = cfg.get("second_loop", {}).get("diff_threshold", 200)
    has_b = bool(cfg.get("part_b"))
    print(f"{work}: {files} files, S={size}, threshold {threshold}, {'two partitions' if has_b else 'one partition'}")
    print(
        "thumbnail jobs by shard_size: "
        + ", ".join(f"{s}: {math.ceil(files / int(s))}" for s in args.shard_sizes.split(","))
    )
    noop, jobs = dry_run(work, work / "config.yaml", args.repeat)
    print(f"no-op dry run of the finished folder: {noop:.2f} s ({jobs} jobs to do)")
    plan = results / "plan"
    saved = work / "plan.saved"
    shutil.copytree(plan, saved, dirs_exist_ok=True)
    try:
        print(f"{'block_size':>10s} {'block pairs':>11s} {'compare jobs':>12s} {'dry run s':>9s} {'jobs in DAG':>11s}")
        for b in map(int, args.block_sizes.split(",")):
            shutil.rmtree(plan)
            n_pairs = make_plan(
                meta,
                index,
                plan,
                size=size,
                block_size=b,
                threshold=threshold,
                has_part_b=has_b,
                digest_paths=digests,
                thumb_paths=stacks,
            )
            conf = work / f"config.block{b}.yaml"
            conf.write_text(yaml.safe_dump({**cfg, "block_size": b}))
            secs, jobs = dry_run(work, conf, args.repeat)
            conf.unlink()
            print(f"{b:10d} {n_pairs:11d} {len(block_partners(plan)):12d} {secs:9.2f} {jobs:11d}")
    finally:
        shutil.rmtree(plan, ignore_errors=True)
        shutil.move(saved, plan)


if __name__ == "__main__":
    main()
