"""The walk every start makes: ``walk_partition`` over folders and ``folder_state`` (the walk
and its digest), medians of several calls, against a bare ``os.scandir`` and ``stat`` loop
over the same tree; and where the folders changed, ``record_folder_state`` (the walk, its
digest and the walk kept for the index job, written) and the index job's read of that walk.

    python bench/walk.py /photos/a [/photos/b] [--rounds 5]
    PYTHONPATH=/tmp/before/src python bench/walk.py ...   # another checkout's code

Each folder given is a partition of its own (the first part_a, a second part_b); the paths
the workflow leaves out of its walks are those of the default settings (``own_paths``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import fast_diff_py
from fast_diff_py._config import validate_config
from fast_diff_py._formats import FOLDER_STATE, FOLDER_WALK
from fast_diff_py._index import _walked, folder_state, own_paths, record_folder_state, walk_partition


def bare(roots: list[str]) -> int:
    n = 0
    for root in roots:
        stack = [root]
        while stack:
            with os.scandir(stack.pop()) as it:
                for entry in sorted(it, key=lambda e: e.name):
                    if entry.is_dir():
                        stack.append(entry.path)
                    else:
                        entry.stat()
                        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    roots = [os.path.abspath(f) for f in args.folders]
    cfg = validate_config({"part_a": roots[:1], "part_b": roots[1:2]})
    ext = cfg["allowed_file_extensions"]
    # what the workflow leaves out of every walk: its database, gallery and results folders
    own = own_paths(cfg)

    def walk() -> int:
        return sum(
            sum(
                1
                for _ in walk_partition(
                    [r],
                    part_b=bool(i),
                    first_dir_index=i,
                    recursive=True,
                    allowed_file_extensions=ext,
                    exclude_paths=own,
                )
            )
            for i, r in enumerate(roots[:2])
        )

    def state() -> int:
        folder_state(
            **{
                k: cfg[k]
                for k in ("part_a", "part_b", "recursive", "ignore_names", "ignore_paths", "allowed_file_extensions")
            },
            exclude_paths=own,
        )
        return 0

    results = Path(tempfile.mkdtemp(prefix="walk-bench-"))

    def recorded() -> int:
        for f in results.iterdir():  # a state of its own each time: the walk file is written
            f.unlink()
        record_folder_state(results / FOLDER_STATE, cfg)
        return 0

    def read() -> int:
        entries = _walked(results / FOLDER_WALK, results / FOLDER_STATE)
        return len(entries) if entries is not None else 0

    print(f"fast_diff_py from {os.path.dirname(fast_diff_py.__file__)}")
    for name, fn in (
        ("bare scandir + stat", lambda: bare(roots[:2])),
        ("walk_partition", walk),
        ("folder_state", state),
        ("record_folder_state", recorded),
        ("the walk file read", read),
    ):
        times = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            n = fn()
            times.append(time.perf_counter() - t)
        shown = " / ".join(f"{x:.2f}" for x in times)
        print(f"{name:22s} median {statistics.median(times):6.3f} s  ({shown})" + (f"  {n} files" if n else ""))


if __name__ == "__main__":
    main()
