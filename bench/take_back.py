"""One thumbnail job that takes every file back from the last run's kept thumbnails, timed.

On a finished run's results folder: the first shard of its index is made once with a fresh
store (``make_thumbnails`` with ``reuse_dir``), then made again ``--rounds`` times, each on a
copy of that store, so that every file is taken back. Prints each round's seconds and the
median. Run it with another checkout's package first on ``PYTHONPATH`` to compare two
versions on the same files:

    PYTHONPATH=/tmp/before/src python bench/take_back.py /tmp/run/results/work --tag before
    python bench/take_back.py /tmp/run/results/work --tag after
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from fast_diff_py import SHARD_FILES_SUFFIX, shard_file, shard_ids
from fast_diff_py._thumbnails import make_thumbnails


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, help="a finished run's results_dir (its index/ folder is read)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=50, help="the thumbnail size (difpy's: 50)")
    ap.add_argument("--no-hash", action="store_true", help="without compute_hash")
    ap.add_argument("--tag", default="", help="a name printed with the figures")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    shard = args.work / "index" / shard_file(shard_ids(args.work / "index")[0], SHARD_FILES_SUFFIX)
    settings = dict(size=args.size, threads=2, compute_hash=not args.no_hash)

    def job(out: Path, store: Path) -> float:
        out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        make_thumbnails(
            shard, out / "t.npy", out / "m.parquet", out_previews=out / "p.parquet", reuse_dir=store, **settings
        )
        return time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="take-back-") as tmp:
        tmp = Path(tmp)
        job(tmp / "first", tmp / "store" / "s")
        times = []
        for _ in range(args.rounds):
            shutil.rmtree(tmp / "round", ignore_errors=True)
            shutil.copytree(tmp / "store", tmp / "round", copy_function=shutil.copy2)
            times.append(job(tmp / "out", tmp / "round" / "s"))
    print(f"{args.tag} take-back job median {statistics.median(times):.2f} s {[round(t, 2) for t in times]}")


if __name__ == "__main__":
    main()
