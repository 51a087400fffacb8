"""Comparison of one block pair: thresholded pairs with exact ``dif`` values."""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._codes import PairStatus
from ._io import atomic_path
from ._kernel import (block_dif, channel_bound_mask, grid_bound_mask, grid_cells, grid_sums,
                      pair_dif, pairwise_dif)
from ._plan import read_block
from ._plugins import resolve
from ._thumbnails import HASH_COLUMNS

__all__ = ["PAIR_SCHEMA", "compare_block_pair", "aspect_mask", "hash_match_mask", "load_thumbnails"]

logger = logging.getLogger(__name__)

PAIR_SCHEMA = pa.schema(
    [("key_a", pa.int64()), ("key_b", pa.int64()), ("dif", pa.float64()), ("success", pa.int8())]
)


def load_thumbnails(block: pa.Table, thumb_paths: Sequence[str]) -> np.ndarray:
    """Gather a block's thumbnails from the memory-mapped shard stacks."""
    shards = block.column("shard").to_numpy()
    rows = block.column("thumb_row").to_numpy()
    stacks = {s: np.load(thumb_paths[s], mmap_mode="r") for s in np.unique(shards)}
    if not stacks:
        return np.zeros((0, 1, 1, 3), np.uint8)
    first = next(iter(stacks.values()))
    out = np.empty((len(block), *first.shape[1:]), np.uint8)
    for s, stack in stacks.items():
        sel = np.flatnonzero(shards == s)
        out[sel] = stack[rows[sel]]
    return out


def aspect_mask(size_a: np.ndarray, size_b: np.ndarray, match_aspect_by: float | None) -> np.ndarray:
    """Pairs the size filter lets through (n x m bool).

    ``None``: all. ``0``: equal sizes in either orientation. ``f >= 1``: the aspect ratios
    (long side / short side) satisfy ``ra * f >= rb >= ra / f``.
    """
    n, m = len(size_a), len(size_b)
    if match_aspect_by is None:
        return np.ones((n, m), bool)
    xa, ya = size_a[:, 0][:, None], size_a[:, 1][:, None]
    xb, yb = size_b[:, 0][None, :], size_b[:, 1][None, :]
    if match_aspect_by == 0:
        return ((xa == xb) & (ya == yb)) | ((xa == yb) & (ya == xb))
    ra = np.maximum(xa, ya) / np.minimum(xa, ya)
    rb = np.maximum(xb, yb) / np.minimum(xb, yb)
    return (ra * match_aspect_by >= rb) & (rb >= ra / match_aspect_by)


def hash_match_mask(block_a: pa.Table, block_b: pa.Table) -> np.ndarray:
    """Pairs that share at least one (non-null) hash of any rotation (n x m bool)."""
    where: dict[str, list[int]] = {}
    for col in HASH_COLUMNS:
        for j, h in enumerate(block_b.column(col).to_pylist()):
            if h is not None:
                where.setdefault(h, []).append(j)
    mask = np.zeros((len(block_a), len(block_b)), bool)
    for col in HASH_COLUMNS:
        for i, h in enumerate(block_a.column(col).to_pylist()):
            if h is not None and h in where:
                mask[i, where[h]] = True
    return mask


SPARSE = 0.02  # below this share of surviving pairs, compare pair by pair, not by matrix product


def _exact_difs(x: np.ndarray, y: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                candidates: np.ndarray, dif: np.ndarray, threshold: float, rotate: bool,
                backend: str, what: str) -> None:
    """Fill ``dif`` exactly wherever ``candidates`` (already cut by the channel bound) holds
    a pair that the grid bound cannot rule out; other entries stay infinite."""
    use_torch = backend == "torch" or (backend == "auto" and gpu_available())
    if use_torch:
        from ._kernel_torch import default_device

        logger.info("%s: kernel torch on %s (backend %s)", what, default_device(), backend)
    else:
        logger.info("%s: kernel numpy (backend %s%s)", what, backend,
                    ", no GPU seen" if backend == "auto" else "")
    size = x.shape[1]
    cells = grid_cells(size)
    sub = candidates[np.ix_(rows, cols)]
    sub &= grid_bound_mask(grid_sums(x[rows], cells), grid_sums(y[cols], cells), size, threshold, rotate)
    r, c = np.nonzero(sub)
    if len(r) <= SPARSE * sub.size:
        logger.info("%s: %d of %d pairs survive the bounds; comparing them one by one (CPU)",
                    what, len(r), candidates.size)
        dif[rows[r], cols[c]] = pair_dif(x, y, rows[r], cols[c], rotate)
        return
    rows, cols = rows[np.unique(r)], cols[np.unique(c)]
    logger.info("%s: %d x %d thumbnails by matrix products", what, len(rows), len(cols))
    if use_torch:
        from ._kernel_torch import block_matches_torch

        i, j, d = block_matches_torch(x[rows], y[cols], threshold, rotate)
        dif[rows[i], cols[j]] = d
    else:
        dif[np.ix_(rows, cols)] = block_dif(x[rows], y[cols], rotate)


def gpu_available() -> bool:
    """Whether this job can use a CUDA device (torch installed and a GPU visible).

    torch is imported only where a GPU driver's device files exist: the import alone costs
    seconds, which a CPU job should not pay.
    """
    if importlib.util.find_spec("torch") is None:
        return False
    if not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/kfd")):
        return False
    import torch

    return bool(torch.cuda.is_available())


def compare_block_pair(
    plan_dir: str | os.PathLike[str],
    thumb_paths: Sequence[str],
    block_a: int,
    block_b: int,
    out: str | os.PathLike[str],
    *,
    threshold: float,
    rotate: bool = True,
    skip_matching_hash: bool = False,
    match_aspect_by: float | None = None,
    keep_non_matching_aspects: bool = False,
    cpu_diff: str | Callable[[np.ndarray, np.ndarray, bool], float] | None = None,
    gpu_diff: str | Callable[[np.ndarray, np.ndarray, bool], float] | None = None,
    backend: str = "auto",
) -> int:
    """Compare block ``block_a`` with ``block_b`` and write the stored pairs to ``out``.

    Rows: pairs with ``dif <= threshold`` (success 1); with ``keep_non_matching_aspects`` also
    the pairs the aspect filter rejects (success 3, dif -1). Pairs sharing a hash are left to
    the hash-matching job when ``skip_matching_hash`` is set. Inside one block (``block_a ==
    block_b``) each unordered pair appears once. ``key_a < key_b`` within partition A;
    ``key_a`` is the A side for A x B. Returns the number of rows written.

    ``cpu_diff`` replaces the built-in difference; on a job that sees a CUDA device,
    ``gpu_diff`` (when given) is used instead of it. ``backend`` picks the built-in kernel:
    ``numpy``, ``torch`` (CUDA if seen, else CPU) or ``auto`` (torch on CUDA, else numpy).
    """
    if backend not in ("auto", "numpy", "torch"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    chosen = gpu_diff if gpu_diff and gpu_available() else cpu_diff
    user_diff = resolve(chosen) if chosen else None  # fail early on a bad name
    ta = read_block(plan_dir, block_a)
    tb = ta if block_b == block_a else read_block(plan_dir, block_b)
    keys_a, keys_b = ta.column("key").to_numpy(), tb.column("key").to_numpy()
    size_a = np.stack([ta.column("px").to_numpy(), ta.column("py").to_numpy()], axis=1)
    size_b = np.stack([tb.column("px").to_numpy(), tb.column("py").to_numpy()], axis=1)

    keep = np.ones((len(ta), len(tb)), bool)
    if block_a == block_b:
        keep = np.triu(keep, k=1)
    if skip_matching_hash:
        keep &= ~hash_match_mask(ta, tb)
    aspect_ok = aspect_mask(size_a, size_b, match_aspect_by)
    rejected = keep & ~aspect_ok
    candidates = keep & aspect_ok

    dif = np.full(candidates.shape, np.inf)
    x = load_thumbnails(ta, thumb_paths)
    if user_diff is None:  # no bound holds for a user's function
        sums_a = np.stack([ta.column(f"sum_{c}").to_numpy() for c in range(3)], axis=1)
        sums_b = np.stack([tb.column(f"sum_{c}").to_numpy() for c in range(3)], axis=1)
        candidates &= channel_bound_mask(sums_a, sums_b, x.shape[1], threshold)
    rows, cols = np.flatnonzero(candidates.any(axis=1)), np.flatnonzero(candidates.any(axis=0))
    if len(rows) and len(cols):
        y = x if block_b == block_a else load_thumbnails(tb, thumb_paths)
        if user_diff is None:
            _exact_difs(x, y, rows, cols, candidates, dif, threshold, rotate, backend,
                        f"blocks {block_a} x {block_b}")
        else:
            dif[np.ix_(rows, cols)] = pairwise_dif(x[rows], y[cols], rotate, user_diff)
    matched = candidates & (dif <= threshold)

    parts = [(matched, dif, PairStatus.COMPUTED)]
    if keep_non_matching_aspects:
        parts.append((rejected, np.full(dif.shape, -1.0), PairStatus.NON_MATCHING_ASPECT))
    cols_out = {"key_a": [], "key_b": [], "dif": [], "success": []}
    for mask, values, status in parts:
        i, j = np.nonzero(mask)
        # keys of A are all below those of B, so the smaller key is the A side
        cols_out["key_a"].append(np.minimum(keys_a[i], keys_b[j]))
        cols_out["key_b"].append(np.maximum(keys_a[i], keys_b[j]))
        cols_out["dif"].append(values[i, j])
        cols_out["success"].append(np.full(len(i), int(status), np.int8))
    table = pa.table({k: np.concatenate(v) for k, v in cols_out.items()}, schema=PAIR_SCHEMA)
    table = table.sort_by([("key_a", "ascending"), ("key_b", "ascending")])
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
    logger.info("blocks %d x %d: %d stored pairs", block_a, block_b, len(table))
    return len(table)


def match_hashes(
    meta_paths: Sequence[str],
    index_paths: Sequence[str],
    out: str | os.PathLike[str],
    *,
    has_part_b: bool,
) -> int:
    """Write every pair that shares a hash (of any rotation) as success 2, dif 0.

    Runs over all shards at once: with ``shift_amount != 0`` equal hashes do not imply equal
    thumbnails, so hash matches can lie in block pairs the planner pruned.
    """
    import polars as pl

    frames = []
    for meta_path, index_path in zip(meta_paths, index_paths, strict=True):
        meta = pl.read_parquet(meta_path, columns=["key", "success", *HASH_COLUMNS])
        part = pl.read_parquet(index_path, columns=["part_b"])
        frames.append(pl.concat([meta, part], how="horizontal").filter(pl.col("success") == 1))
    long = (
        pl.concat(frames)
        .unpivot(index=["key", "part_b"], on=list(HASH_COLUMNS), value_name="hash")
        .drop_nulls("hash")
        .select("key", "part_b", "hash")
        .unique()
    )
    left = long.filter(pl.col("part_b") == 0)
    right = long.filter(pl.col("part_b") == (1 if has_part_b else 0))
    pairs = left.join(right, on="hash", suffix="_r").select(
        key_a=pl.col("key"), key_b=pl.col("key_r"))
    if not has_part_b:
        pairs = pairs.filter(pl.col("key_a") < pl.col("key_b"))
    pairs = (
        pairs.unique()
        .sort("key_a", "key_b")
        .with_columns(dif=pl.lit(0.0, pl.Float64), success=pl.lit(int(PairStatus.MATCHING_HASH), pl.Int8))
    )
    with atomic_path(out) as tmp:
        pq.write_table(pairs.to_arrow().cast(PAIR_SCHEMA), tmp)
    logger.info("%d pairs share a hash", len(pairs))
    return len(pairs)
