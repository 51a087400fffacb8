"""Throughput and memory of the compare kernel against per-pair numpy (fast-diff-py's way).

Prints pairs per second of ``block_dif`` (exact matrix products, four rotations) for a few
block sizes, the per-pair numpy loop that fast-diff-py 1.0.4 runs (its ``compute_image_diff``:
float64 subtraction per rotation), their ratio, and the peak memory of one compare job.

    .venv/bin/python bench/bench_kernel.py [--size 64] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

from fast_diff_py import block_dif


def per_pair(a: np.ndarray, b: np.ndarray) -> float:
    """fast-diff-py 1.0.4's compute_image_diff (mse of float copies, four rotations)."""
    best = None
    for k in range(4):
        ra = np.rot90(a, k, axes=(0, 1))
        d = np.sum(np.square(ra.astype("float") - b.astype("float"))) / (a.shape[0] * a.shape[1])
        best = d if best is None else min(best, d)
    return best


def job_peak_mb(n: int, size: int) -> float:
    """Peak RSS of a fresh process that compares two blocks of n thumbnails."""
    code = (
        f"import numpy as np, resource; from fast_diff_py import block_dif;"
        f"r = np.random.default_rng(0); x = r.integers(0, 256, ({n}, {size}, {size}, 3), np.uint8);"
        f"y = r.integers(0, 256, ({n}, {size}, {size}, 3), np.uint8);"
        f"base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; block_dif(x, y);"
        f"print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    s = args.size
    x = rng.integers(0, 256, (200, s, s, 3), np.uint8)
    ts = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        for i in range(10):
            for j in range(10):
                per_pair(x[i], x[100 + j])
        ts.append(time.perf_counter() - t)
    naive_rate = 100 / statistics.median(ts)
    print(f"S = {s}, rotate = True, 1 process; medians of {args.repeat} runs")
    print(f"per-pair numpy (fast-diff-py):  {naive_rate:12,.0f} pairs/s")
    for n in (256, 512, 1024, 2048):
        a = rng.integers(0, 256, (n, s, s, 3), np.uint8)
        b = rng.integers(0, 256, (n, s, s, 3), np.uint8)
        ts = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            block_dif(a, b)
            ts.append(time.perf_counter() - t)
        rate = n * n / statistics.median(ts)
        print(
            f"block_dif, block {n:5d}:       {rate:12,.0f} pairs/s  ({rate / naive_rate:7.0f}x)"
            f"  job peak +{job_peak_mb(n, s):6.0f} MiB"
        )


if __name__ == "__main__":
    main()
