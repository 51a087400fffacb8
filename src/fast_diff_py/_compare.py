"""Comparison of one block pair: thresholded pairs with exact ``dif`` values."""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._errors import IntermediateError
from ._formats import CROP_STACK_SUFFIX, HASH_COLUMNS, PAIR_SCHEMA, PairStatus
from ._io import arrow_table, as_schema, atomic_path, read_in_index_order, remove_damaged
from ._kernel import (
    DifFunction,
    block_dif,
    channel_bound_mask,
    channel_limit,
    channel_sums,
    grid_bound_rotations,
    grid_cells,
    grid_sums,
    pair_dif,
    pairwise_dif,
    range_bound,
    with_total,
)
from ._plan import block_path, block_stack, read_block, table_sums
from ._plugins import resolve
from ._progress import Progress

__all__ = [
    "Backend",
    "aspect_mask",
    "compare_block_pair",
    "compare_blocks",
    "gpu_available",
    "hash_match_pairs",
    "match_hashes",
]

logger = logging.getLogger(__name__)

# the built-in kernels: numpy, torch (CUDA when seen, else CPU), or torch on CUDA and else numpy
Backend = Literal["auto", "numpy", "torch"]


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


def hash_match_pairs(block_a: pa.Table, block_b: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)`` of rows that share at least one (non-null) hash of any rotation."""
    where: dict[str, list[int]] = {}
    for col in HASH_COLUMNS:
        for j, h in enumerate(block_b.column(col).to_pylist()):
            if h is not None:
                where.setdefault(h, []).append(j)
    found: set[tuple[int, int]] = set()
    for col in HASH_COLUMNS:
        for i, h in enumerate(block_a.column(col).to_pylist()):
            if h is not None and h in where:
                found.update((i, j) for j in where[h])
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i, j = np.array(sorted(found), np.int64).T
    return i, j


SPARSE = 0.02  # below this share of surviving pairs, compare pair by pair, not by matrix product
TILE = 1024  # a block pair is worked through in tiles of TILE x TILE pairs: memory stays flat


def _occupied(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows and the columns of ``mask`` that hold a True."""
    return np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))


def _use_torch(backend: Backend) -> bool:
    return backend == "torch" or (backend == "auto" and gpu_available())


def _exact_difs(
    A: _Block,
    B: _Block,
    rows: np.ndarray,
    cols: np.ndarray,
    candidates: np.ndarray,
    cells: int,
    threshold: float,
    rotate: bool,
    use_torch: bool,
    counts: _Counts,
    mirror: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs ``(rows[i], cols[j])`` with ``candidates[i, j]`` (already cut by the channel
    bound) whose exact ``dif`` is within ``threshold``: indices into the two blocks, and the
    values. The grid bound rules pairs out first; the rest are compared one by one when few,
    else by matrix products."""
    thumbs_a, thumbs_b = A.thumbs, B.thumbs
    r_any, c_any = _occupied(candidates)
    rows, cols = rows[r_any], cols[c_any]
    sub = candidates[np.ix_(r_any, c_any)]
    # per turn and reflection, so that a pair compared one by one is turned only the ways
    # that can match
    turns = grid_bound_rotations(
        A.grids(rows, cells), B.grids(cols, cells), thumbs_a.shape[1], threshold, rotate, mirror
    )
    sub &= turns != 0
    r, c = np.nonzero(sub)
    counts.grid += len(r)
    if len(r) <= SPARSE * sub.size:
        i, j = rows[r], cols[c]
        d = pair_dif(thumbs_a, thumbs_b, i, j, rotate, turns[r, c], mirror)
    else:
        counts.dense_tiles += 1
        if use_torch:
            from ._kernel_torch import block_matches_torch

            # the rows and columns with a pair left, compared whole on the device
            used_rows, used_cols = rows[np.unique(r)], cols[np.unique(c)]
            ii, jj, d = block_matches_torch(thumbs_a[used_rows], thumbs_b[used_cols], threshold, rotate, mirror=mirror)
            i, j = used_rows[ii], used_cols[jj]
            asked = sub[np.searchsorted(rows, i), np.searchsorted(cols, j)]
            i, j, d = i[asked], j[asked], d[asked]
        else:
            full = block_dif(thumbs_a[rows], thumbs_b[cols], rotate, mirror)
            i, j, d = rows[r], cols[c], full[r, c]
    ok = d <= threshold
    return i[ok], j[ok], d[ok]


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


@dataclass
class _Block:
    """One block read for comparison: rows in brightness order, thumbnails and tile ranges."""

    id: int
    table: pa.Table  # the plan's rows, in key order
    perm: np.ndarray  # brightness order of the rows
    sums: np.ndarray
    keys: np.ndarray
    sizes: np.ndarray  # (px, py) per row
    thumbs: np.ndarray | _Thumbnails  # the thumbnails, in brightness order
    tiles: list[tuple[int, int]]
    ranges: list[tuple[np.ndarray, np.ndarray]]  # per tile: minima and maxima of with_total sums
    crops: np.ndarray | None = None  # crop thumbnails (V x n x S x S x 3), brightness order
    crop_sums: np.ndarray | None = None  # their channel sums (V x n x 3)
    _grid: np.ndarray | None = None
    _have: np.ndarray | None = None
    _variants: dict[int, _Block] | None = None

    def variant(self, k: int) -> _Block:
        """The block with crop ``k`` of each image in place of its thumbnail (same rows)."""
        assert self.crops is not None and self.crop_sums is not None
        if self._variants is None:
            self._variants = {}
        if k not in self._variants:
            # its own grid sums; no crops of its own
            self._variants[k] = replace(
                self,
                sums=self.crop_sums[k],
                thumbs=self.crops[k],
                crops=None,
                crop_sums=None,
                _grid=None,
                _have=None,
                _variants=None,
            )
        return self._variants[k]

    def comparisons(self, other: _Block) -> list[tuple[_Block, _Block]]:
        """The thumbnail pairings whose least ``dif`` is a pair's: the thumbnails, and with
        crops each image's crops against the other's thumbnail, both ways."""
        pairs = [(self, other)]
        if self.crops is not None and other.crops is not None:
            for k in range(len(self.crops)):
                pairs += [(self.variant(k), other), (self, other.variant(k))]
        return pairs

    def grids(self, idx: np.ndarray, cells: int) -> np.ndarray:
        """Grid sums of the images ``idx``, each computed once, when a tile first needs it:
        only the few images near a match need one, and they recur across tiles."""
        if self._grid is None or self._have is None:
            self._grid = np.empty((len(self.thumbs), cells, cells, self.thumbs.shape[3]), np.int64)
            self._have = np.zeros(len(self.thumbs), bool)
        grid, have = self._grid, self._have
        todo = idx[~have[idx]]
        if len(todo):
            grid[todo] = grid_sums(self.thumbs[todo], cells)
            have[todo] = True
        return grid[idx]


def _load_block(plan_dir: str | os.PathLike[str], block: int, tile: int, crops: bool = False) -> _Block:
    # brightness order inside each block, so that tiles cover narrow ranges of sums
    table = read_block(plan_dir, block)
    sums = table_sums(table)
    perm = np.argsort(sums.sum(axis=1), kind="stable")
    sums = sums[perm]
    feat = with_total(sums)
    n = len(table)
    tiles = [(i0, min(i0 + tile, n)) for i0 in range(0, n, tile)]
    crop_stack = crop_sums = None
    low, high = feat, feat
    if crops and n:
        stacked = block_stack(plan_dir, block, CROP_STACK_SUFFIX)
        if stacked.ndim != 5 or len(stacked) != n:
            raise IntermediateError(
                f"crop stack {block_path(plan_dir, block, CROP_STACK_SUFFIX)!r} is not of shape ({n}, V, S, S, 3)"
            )
        # crop by crop, each a contiguous stack of the block's rows
        crop_stack = np.ascontiguousarray(stacked[perm].transpose(1, 0, 2, 3, 4))
        del stacked
        crop_sums = channel_sums(crop_stack.reshape(-1, *crop_stack.shape[2:])).reshape(len(crop_stack), n, 3)
        # a tile's ranges cover its images' crops too
        crop_feat = with_total(crop_sums)
        low = np.minimum(feat, crop_feat.min(axis=0))
        high = np.maximum(feat, crop_feat.max(axis=0))
    return _Block(
        id=block,
        table=table,
        perm=perm,
        sums=sums,
        keys=table.column("key").to_numpy()[perm],
        sizes=np.stack([table.column("px").to_numpy(), table.column("py").to_numpy()], axis=1)[perm],
        thumbs=_thumbnails(plan_dir, block, _rows_of(table)[perm], sums),
        tiles=tiles,
        ranges=[(low[i0:i1].min(axis=0), high[i0:i1].max(axis=0)) for i0, i1 in tiles],
        crops=crop_stack,
        crop_sums=crop_sums,
    )


def _rows_of(table: pa.Table) -> np.ndarray:
    """Where a block's rows (its file's ``table``) are in its thumbnails: ``block_row``."""
    return table.column("block_row").to_numpy().astype(np.intp)


def _thumbnails(
    plan_dir: str | os.PathLike[str], block: int, rows: np.ndarray, sums: np.ndarray
) -> np.ndarray | _Thumbnails:
    """The block's thumbnails at ``rows`` of its stack (``_Thumbnails``: each read when first
    asked for and checked then against the channel sums its thumbnail job recorded, ``sums``
    in the same order). Where ``rows`` are not all in the stack, the plan is removed (so
    that the next run makes it again) and IntermediateError names the stack."""
    if not len(rows):
        return np.zeros((0, 1, 1, 3), np.uint8)
    stack = block_stack(plan_dir, block)
    if rows.min() < 0 or rows.max() >= len(stack):
        del stack
        _refuse_stack(plan_dir, block, len(rows))
    return _Thumbnails(stack, rows, sums, lambda bad: _refuse_stack(plan_dir, block, bad))


def _refuse_stack(plan_dir: str | os.PathLike[str], block: int, bad: int) -> None:
    path = block_path(plan_dir, block, ".npy")
    remove_damaged([path])
    raise IntermediateError(
        f"thumbnail stack {path!r} changed since it was written ({bad} thumbnails differ from "
        "their recorded sums); removed the plan: run the same command again to make it anew"
    )


class _Thumbnails:
    """A block's thumbnails in brightness order, as an array indexed by row numbers
    (``x[rows]``), read from the block's stack when first asked for: the bounds leave the
    few images near a match, so a job reads those of its partner blocks and not every one.
    Each is checked, when it is read, against its recorded channel sums (``refuse`` is called
    with the number that differ)."""

    def __init__(self, stack: np.ndarray, rows: np.ndarray, sums: np.ndarray, refuse: Callable[[int], None]):
        self._stack, self._rows, self._sums, self._refuse = stack, rows, sums, refuse
        self.shape = (len(rows), *stack.shape[1:])
        self._data = np.empty(self.shape, stack.dtype)  # pages taken as rows are read
        self._have = np.zeros(len(rows), bool)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.intp)
        wanted = np.zeros(len(self._have), bool)  # each row once (np.unique loads numpy.ma)
        wanted[idx[~self._have[idx]]] = True
        todo = np.flatnonzero(wanted)
        if len(todo):
            # in the stack's order: a mapped file read forwards
            at = np.argsort(self._rows[todo], kind="stable")
            todo = todo[at]
            x = np.asarray(self._stack[self._rows[todo]])
            bad = int((channel_sums(x) != self._sums[todo]).any(axis=1).sum())
            if bad:
                del x
                self._refuse(bad)
            self._data[todo] = x
            self._have[todo] = True
        return self._data[idx]


def compare_blocks(
    plan_dir: str | os.PathLike[str],
    block_a: int,
    blocks_b: Sequence[int],
    out: str | os.PathLike[str],
    *,
    threshold: float,
    rotate: bool = True,
    skip_matching_hash: bool = False,
    match_aspect_by: float | None = None,
    keep_non_matching_aspects: bool = False,
    cpu_diff: str | DifFunction | None = None,
    gpu_diff: str | DifFunction | None = None,
    backend: Backend = "auto",
    tile: int = TILE,
    mirror: bool = False,
    crops: bool = False,
) -> int:
    """Compare block ``block_a`` with each of ``blocks_b`` in turn and write the stored pairs
    to ``out`` (a row group per block pair), reading the blocks' files in ``plan_dir``
    (``block_file``: rows, thumbnails and, with ``crops``, crop thumbnails) and no others.
    Returns the number of rows written. ``dif`` is
    the minimum over the four turns (``rotate``) and, with ``mirror``, their mirror images.

    Block A stays in memory while the others are read one at a time, so memory is that of
    two blocks however many are listed. Rows: pairs with ``dif <= threshold`` (success 1);
    with ``keep_non_matching_aspects`` also the pairs the aspect filter rejects (success 3,
    dif -1). Pairs sharing a hash are left to the hash-matching job when
    ``skip_matching_hash`` is set. Inside one block (``block_a`` listed in ``blocks_b``) each
    unordered pair appears once. Of two blocks, the one of the lower number is compared as
    the A side, whichever the job holds (partition A's blocks come before partition B's).
    ``key_a < key_b`` within partition A; ``key_a`` is the A side for A x B.

    ``cpu_diff`` replaces the built-in difference; on a job that sees a CUDA device,
    ``gpu_diff`` (when given) is used instead of it. ``backend`` picks the built-in kernel:
    ``numpy``, ``torch`` (CUDA if seen, else CPU) or ``auto`` (torch on CUDA, else numpy).

    The pairs are worked through in tiles of ``tile x tile`` (whole blocks with torch), with
    each block ordered by brightness: a tile whose per-channel sum ranges are too far apart
    is skipped whole, and memory does not grow with the block size.

    ``crops`` (crop_tolerance; the plan holds the blocks' crop thumbnails) makes ``dif`` the
    least over the thumbnails and each image's crops against the other's thumbnail
    (``fast_diff_py._crops``).
    """
    if backend not in ("auto", "numpy", "torch"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    chosen = gpu_diff if gpu_diff and gpu_available() else cpu_diff
    user_diff = resolve(chosen) if chosen else None  # fail early on a bad name
    if user_diff is not None and crops:
        raise ValueError(
            "crop thumbnails (crop_tolerance) apply to the built-in difference, not to cpu_diff or gpu_diff"
        )
    use_torch = user_diff is None and _use_torch(backend)
    what = f"block {block_a} x {list(blocks_b)}"
    if user_diff is not None:
        logger.info("%s: user difference function %r", what, chosen)
    elif use_torch:
        from ._kernel_torch import default_device

        logger.info("%s: kernel torch on %s (backend %s)", what, default_device(), backend)
        tile = 2**62  # the device wants big products: one tile per block
    else:
        logger.info("%s: kernel numpy (backend %s%s)", what, backend, ", no GPU seen" if backend == "auto" else "")
    options = _Options(
        threshold=threshold,
        rotate=rotate,
        mirror=mirror,
        skip_matching_hash=skip_matching_hash,
        match_aspect_by=match_aspect_by,
        keep_non_matching_aspects=keep_non_matching_aspects,
        user_diff=user_diff,
        use_torch=use_torch,
    )
    first = _load_block(plan_dir, block_a, tile, crops)
    written = 0
    progress = Progress(len(blocks_b), "block pairs", logger)
    with atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, PAIR_SCHEMA) as writer:
            for b in blocks_b:
                second = first if b == block_a else _load_block(plan_dir, b, tile, crops)
                # the block of the lower number on the A side, whichever the job holds
                lower, higher = (first, second) if block_a <= b else (second, first)
                table = _compare_loaded(lower, higher, options)
                writer.write_table(table)
                written += len(table)
                del second
                progress.add()
    logger.info("%s: %d stored pairs", what, written)
    return written


def compare_block_pair(
    plan_dir: str | os.PathLike[str],
    block_a: int,
    block_b: int,
    out: str | os.PathLike[str],
    **options,
) -> int:
    """Compare block ``block_a`` with ``block_b`` (see :func:`compare_blocks`)."""
    return compare_blocks(plan_dir, block_a, [block_b], out, **options)


@dataclass(frozen=True)
class _Options:
    """How the pairs of a block pair are judged (``compare_blocks``' arguments, resolved)."""

    threshold: float
    rotate: bool
    mirror: bool
    skip_matching_hash: bool
    match_aspect_by: float | None
    keep_non_matching_aspects: bool
    user_diff: DifFunction | None  # a user's difference function: no bounds, no kernel
    use_torch: bool


@dataclass
class _Counts:
    """What the bounds did to one block pair's pairs, for the job's log."""

    pairs: int = 0  # pairs of the block pair
    tiles: int = 0
    skipped_tiles: int = 0  # tiles whose brightness ranges are too far apart
    channel: int = 0  # pairs that pass the channel bound
    grid: int = 0  # pairs that pass the grid bound
    dense_tiles: int = 0  # tiles compared by matrix products

    def log(self, what: str) -> None:
        logger.info(
            "%s: %d pairs in %d tiles (%d skipped by their sum ranges); %d pass the channel "
            "bound, %d the grid bound; %d tiles by matrix products",
            what,
            self.pairs,
            self.tiles,
            self.skipped_tiles,
            self.channel,
            self.grid,
            self.dense_tiles,
        )


# pairs found in one tile: rows of block A, rows of block B (brightness order), dif, status
_Found = tuple[np.ndarray, np.ndarray, np.ndarray, PairStatus]


def _compare_loaded(A: _Block, B: _Block, options: _Options) -> pa.Table:
    """The stored pairs of one block pair, sorted by keys."""
    hash_pairs = _hash_pairs(A, B) if options.skip_matching_hash else None
    counts = _Counts()
    found: list[_Found] = []
    same = A is B
    for tile_a in range(len(A.tiles)):
        for tile_b in range(tile_a if same else 0, len(B.tiles)):
            found += _compare_tile(A, B, tile_a, tile_b, hash_pairs, options, counts)
    counts.log(f"blocks {A.id} x {B.id}")
    return _pair_table(A, B, found)


def _hash_pairs(A: _Block, B: _Block) -> tuple[np.ndarray, np.ndarray]:
    """The pairs that share a hash (left to the hash-matching job), as rows of both blocks in
    brightness order."""
    rows_a, rows_b = hash_match_pairs(A.table, B.table)
    return np.argsort(A.perm)[rows_a], np.argsort(B.perm)[rows_b]


def _compare_tile(
    A: _Block,
    B: _Block,
    tile_a: int,
    tile_b: int,
    hash_pairs: tuple[np.ndarray, np.ndarray] | None,
    options: _Options,
    counts: _Counts,
) -> list[_Found]:
    """The stored pairs of one tile: rows ``A.tiles[tile_a]`` x rows ``B.tiles[tile_b]``."""
    (i0, i1), (j0, j1) = A.tiles[tile_a], B.tiles[tile_b]
    diagonal = A is B and tile_a == tile_b
    counts.tiles += 1
    counts.pairs += (i1 - i0) * (i1 - i0 - 1) // 2 if diagonal else (i1 - i0) * (j1 - j0)
    size = A.thumbs.shape[1]
    # a tile whose brightness ranges are too far apart holds no match
    out_of_range = options.user_diff is None and (
        float(range_bound(*A.ranges[tile_a], *B.ranges[tile_b])) > channel_limit(size, options.threshold)
    )
    counts.skipped_tiles += out_of_range
    if out_of_range and not options.keep_non_matching_aspects:
        return []
    rows, cols = np.arange(i0, i1), np.arange(j0, j1)
    # the pairs of the tile this job answers: each unordered pair once, hash matches left out
    asked = np.ones((i1 - i0, j1 - j0), bool)
    if diagonal:
        asked &= rows[:, None] < cols[None, :]
    if hash_pairs is not None:
        ha, hb = hash_pairs
        inside = (ha >= i0) & (ha < i1) & (hb >= j0) & (hb < j1)
        asked[ha[inside] - i0, hb[inside] - j0] = False
    aspect_ok = aspect_mask(A.sizes[i0:i1], B.sizes[j0:j1], options.match_aspect_by)
    found: list[_Found] = []
    if options.keep_non_matching_aspects:
        r, c = np.nonzero(asked & ~aspect_ok)
        found.append((rows[r], cols[c], np.full(len(r), -1.0), PairStatus.NON_MATCHING_ASPECT))
    if out_of_range:
        return found
    candidates = asked & aspect_ok
    if options.user_diff is not None:
        n_candidates = int(np.count_nonzero(candidates))
        counts.channel += n_candidates
        if n_candidates:
            found.append((*_user_difs(A, B, rows, cols, candidates, options), PairStatus.COMPUTED))
        return found
    parts = []
    for X, Y in A.comparisons(B):
        # the channel bound per pairing: a crop has sums of its own
        pairing = channel_bound_mask(X.sums[i0:i1], Y.sums[j0:j1], size, options.threshold)
        pairing &= candidates
        n_candidates = int(np.count_nonzero(pairing))
        counts.channel += n_candidates
        if n_candidates:
            parts.append(
                _exact_difs(
                    X,
                    Y,
                    rows,
                    cols,
                    pairing,
                    grid_cells(size),
                    options.threshold,
                    options.rotate,
                    options.use_torch,
                    counts,
                    options.mirror,
                )
            )
    if parts:
        found.append((*_least(parts), PairStatus.COMPUTED))
    return found


def _least(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs found by one or more pairings, each once with its least ``dif``."""
    if len(parts) == 1:
        return parts[0]
    i, j, d = (np.concatenate(x) for x in zip(*parts))
    order = np.lexsort((d, j, i))
    i, j, d = i[order], j[order], d[order]
    first = np.ones(len(i), bool)
    first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
    return i[first], j[first], d[first]


def _user_difs(
    A: _Block, B: _Block, rows: np.ndarray, cols: np.ndarray, candidates: np.ndarray, options: _Options
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like ``_exact_difs``, with the user's difference function on every candidate."""
    assert options.user_diff is not None
    r_any, c_any = _occupied(candidates)
    dif = pairwise_dif(A.thumbs[rows[r_any]], B.thumbs[cols[c_any]], options.rotate, options.user_diff)
    r, c = np.nonzero(candidates[np.ix_(r_any, c_any)] & (dif <= options.threshold))
    return rows[r_any][r], cols[c_any][c], dif[r, c]


def _pair_table(A: _Block, B: _Block, found: list[_Found]) -> pa.Table:
    """The pairs found, by keys (the smaller key is the A side), sorted (PAIR_SCHEMA)."""
    found = [*found, (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), PairStatus.COMPUTED)]
    i = np.concatenate([f[0] for f in found])
    j = np.concatenate([f[1] for f in found])
    ka, kb = A.keys[i], B.keys[j]
    key_a, key_b = np.minimum(ka, kb), np.maximum(ka, kb)
    order = np.lexsort((key_b, key_a))
    dif = np.concatenate([f[2] for f in found])
    success = np.concatenate([np.full(len(f[0]), int(f[3]), np.int8) for f in found])
    columns = {"key_a": key_a[order], "key_b": key_b[order], "dif": dif[order], "success": success[order]}
    return arrow_table(columns, PAIR_SCHEMA)


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
        # the rows of the index shard's files (files gone from it may have rows)
        meta = pl.DataFrame(read_in_index_order(meta_path, index_path, ["success", *HASH_COLUMNS]))
        part = pl.read_parquet(index_path, columns=["key", "part_b"])
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
    pairs = left.join(right, on="hash", suffix="_r").select(key_a=pl.col("key"), key_b=pl.col("key_r"))
    if not has_part_b:
        pairs = pairs.filter(pl.col("key_a") < pl.col("key_b"))
    pairs = (
        pairs.unique()
        .sort("key_a", "key_b")
        .with_columns(dif=pl.lit(0.0, pl.Float64), success=pl.lit(int(PairStatus.MATCHING_HASH), pl.Int8))
    )
    with atomic_path(out) as tmp:
        pq.write_table(as_schema(pairs.to_arrow(), PAIR_SCHEMA), tmp)
    logger.info("%d pairs share a hash", len(pairs))
    return len(pairs)
