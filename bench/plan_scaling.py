"""Compare jobs and work against the number of images, far beyond the corpora on disk.

The plan needs only each image's channel sums. This script takes them from a finished
workflow folder (real photos), draws ``n`` images per partition from them (with a jitter
of half a grey level per channel, so the brightness distribution keeps its shape without
repeating values) and plans them as the workflow would. Printed: the blocks, the compare
jobs (one per A block that has a partner), the block pairs planned (what one job per block
pair would make) of all there are, and the image pairs inside them (what the compare kernel
works through), for a collection of that size with those photos' brightness; and what the
compare jobs read where nodes share no disk: the thumbnails each job stages (its block and
its partners', S x S x 3 bytes each; the median and the largest job) and all jobs together.

    .venv/bin/python bench/plan_scaling.py /tmp/fastdiff-bench-*/fast-diff-difpy \
        --sizes 32000,128000,512000,2048000 --thresholds 15,200
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from fast_diff_py import shard_file, shard_ids
from fast_diff_py._kernel import channel_limit, with_total
from fast_diff_py._plan import plan_pairs


def real_sums(work: Path) -> np.ndarray:
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    thumbs = work / cfg.get("results_dir", "results/work") / "thumbnails"
    parts = []
    for shard in shard_ids(thumbs.parent / "index"):
        t = pq.read_table(thumbs / shard_file(shard), columns=["success", "sum_0", "sum_1", "sum_2"]).to_pydict()
        ok = np.asarray(t["success"]) == 1
        parts.append(np.stack([np.asarray(t[f"sum_{c}"])[ok] for c in range(3)], axis=1))
    return np.concatenate(parts).astype(np.float64), int(cfg.get("compression_target", 64))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, help="a finished workflow folder (holds config.yaml)")
    ap.add_argument("--sizes", default="32000,128000,512000,2048000", help="images per partition")
    ap.add_argument("--thresholds", default="15,200")
    ap.add_argument("--block-sizes", default="8192")
    ap.add_argument("--one-partition", action="store_true", help="plan A against itself")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sums, size = real_sums(args.work)
    rng = np.random.default_rng(args.seed)
    parts = 1 if args.one_partition else 2
    print(f"{len(sums)} real images, S = {size}; {'A x A' if parts == 1 else 'A x B'}")
    print(
        f"{'images':>9s} {'threshold':>9s} {'block':>6s} {'blocks':>6s} {'jobs':>5s} "
        f"{'pairs':>7s} {'of':>9s} {'image pairs':>14s} {'of all':>7s} {'plan s':>6s} "
        f"{'MB/job':>7s} {'max MB':>7s} {'all GB':>7s}"
    )
    for n in map(int, args.sizes.split(",")):
        total = n * parts
        draw = sums[rng.integers(0, len(sums), total)] + rng.uniform(-0.5, 0.5, (total, 3)) * size**2
        features = with_total(np.rint(draw))
        part_b = np.repeat(np.arange(parts, dtype=np.int8), n)
        keys = np.arange(total)
        for threshold in map(float, args.thresholds.split(",")):
            for block_size in map(int, args.block_sizes.split(",")):
                start = time.perf_counter()
                block, pa_, pb_, candidates = plan_pairs(
                    features,
                    part_b,
                    keys,
                    block_size=block_size,
                    limit=channel_limit(size, threshold),
                    has_part_b=parts == 2,
                )
                secs = time.perf_counter() - start
                counts = np.bincount(block)
                a, b = np.asarray(pa_, np.int64), np.asarray(pb_, np.int64)
                inside = counts[a] * counts[b]
                if parts == 1:  # a block with itself holds each pair once
                    inside = np.where(a == b, counts[a] * (counts[a] - 1) // 2, inside)
                every = n * n if parts == 2 else n * (n - 1) // 2
                staged = _staged_bytes(counts, a, b, 3 * size * size)
                print(
                    f"{total:9d} {threshold:9g} {block_size:6d} {len(counts):6d} {len(set(pa_)):5d} {len(a):7d} "
                    f"{candidates:9d} {int(inside.sum()):14.4g} {inside.sum() / every:7.3f} {secs:6.2f} "
                    f"{np.median(staged) / 1e6:7.0f} {staged.max() / 1e6:7.0f} {staged.sum() / 1e9:7.1f}"
                )


def _staged_bytes(counts: np.ndarray, a: np.ndarray, b: np.ndarray, per_image: int) -> np.ndarray:
    """Per compare job (one per A block): the thumbnails of its block and its partners."""
    jobs: dict[int, set[int]] = {}
    for i, j in zip(a.tolist(), b.tolist()):
        jobs.setdefault(i, {i}).add(j)
    return np.asarray([sum(int(counts[x]) for x in blocks) * per_image for blocks in jobs.values()], np.int64)


if __name__ == "__main__":
    main()
