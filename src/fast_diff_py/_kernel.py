"""The difference of two thumbnails: one definition, and an exact matrix-product kernel.

``dif(a, b) = min over rotations k of sum((rot90(a, k) - b)^2) / (S * S)`` for S x S x 3
uint8 thumbnails: summed over the three channels, divided by the pixel count (3 x difPy's
mse). With ``mirror`` the minimum also runs over a's mirror image (left and right swapped)
and its rotations: the eight turns and reflections of a square (``transforms``). Sums of
squares of integers are exact in float64, so every path here returns the value of
:func:`naive_dif` bit for bit.

The block kernel uses ``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b`` (turns and reflections only
permute entries, so ``|rot(a)|^2 = |a|^2``) and computes the dot products with float32
matrix products that are exact: values are centred to [-128, 127], so each product is at most 2^14 in magnitude and a
sum over 1024 of them stays within 2^24, where every integer is a float32. The partial products
over chunks of 1024 entries are added in float64, which is exact below 2^53.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

# a user's difference function: (a, b, rotate) -> dif
DifFunction = Callable[[np.ndarray, np.ndarray, bool], float]

__all__ = [
    "naive_dif",
    "transformed",
    "transforms",
    "channel_sums",
    "channel_bound_mask",
    "block_dif",
    "pairwise_dif",
    "grid_cells",
    "grid_sums",
    "grid_bound_mask",
    "grid_bound_rotations",
    "pair_dif",
]

_CHUNK = 1024  # entries per float32 partial product; 1024 * 128^2 = 2^24


class Rows(Protocol):
    """Thumbnails that give an array of the rows asked for (``x[rows]``): an array, or a
    block's stack read as its rows are first asked for (``_compare._Thumbnails``)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, rows: np.ndarray, /) -> np.ndarray: ...


def _check_thumbs(x: np.ndarray, name: str) -> None:
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != x.shape[2] or x.shape[3] != 3:
        raise ValueError(f"{name} must be uint8 of shape (n, S, S, 3), got {x.dtype} {x.shape}")


def transforms(rotate: bool = True, mirror: bool = False) -> tuple[int, ...]:
    """The turns and reflections ``dif`` takes its minimum over, as indices t: t < 4 turns by
    t x 90 degrees; 4 + k mirrors (left and right swapped) and then turns by k x 90 degrees.
    ``rotate`` gives the four turns, ``mirror`` their mirror images (without ``rotate``: the
    image and its mirror image)."""
    turns = tuple(range(4)) if rotate else (0,)
    return turns + (tuple(4 + k for k in turns) if mirror else ())


def transformed(x: np.ndarray, t: int, axes: tuple[int, int] = (1, 2)) -> np.ndarray:
    """``x`` turned or reflected by transform ``t`` (see ``transforms``) in the plane of
    ``axes`` (rows, columns): a view."""
    if t >= 4:
        x = np.flip(x, axis=axes[1])
    return np.rot90(x, t % 4, axes=axes) if t % 4 else x


def naive_dif(a: np.ndarray, b: np.ndarray, rotate: bool = True, mirror: bool = False) -> float:
    """The reference definition for one pair of S x S x 3 uint8 thumbnails."""
    if a.shape != b.shape or a.ndim != 3 or a.shape[0] != a.shape[1]:
        raise ValueError(f"thumbnails must be equal S x S x C arrays, got {a.shape} and {b.shape}")
    bi = b.astype(np.int64)
    best = min(
        int(np.sum((transformed(a, t, axes=(0, 1)).astype(np.int64) - bi) ** 2)) for t in transforms(rotate, mirror)
    )
    return float(np.float64(best) / np.float64(a.shape[0] * a.shape[1]))


def channel_sums(x: np.ndarray) -> np.ndarray:
    """Per-channel pixel sums (n x 3, int64) of an n x S x S x 3 stack of uint8 thumbnails."""
    n, rows, cols, c = x.shape
    # down the rows first (a contiguous run per row: 9x faster than one reduction over the
    # pixels, whose innermost run would be the 3 channels), then along them
    per_column = x.reshape(n, rows, cols * c).sum(axis=1, dtype=np.uint32 if rows < 2**24 else np.int64)
    return per_column.reshape(n, cols, c).sum(axis=1, dtype=np.int64)


def channel_limit(size: int, threshold: float) -> float:
    """What ``sum_c (sa_c - sb_c)^2`` may reach for a pair within ``threshold`` (see
    channel_bound_mask), with the margin that keeps rounding from dropping a match."""
    return threshold * float(size) ** 4 * (1 + 1e-9) + 1


def channel_bound_mask(sums_a: np.ndarray, sums_b: np.ndarray, size: int, threshold: float) -> np.ndarray:
    """Pairs that can lie within ``threshold`` (n x m bool).

    For each channel, Cauchy-Schwarz gives ``sum((a - b)^2) >= (sum(a) - sum(b))^2 / S^2``, so
    ``dif >= sum_c (sa_c - sb_c)^2 / S^4`` for every rotation. A pair is dropped only when that
    bound exceeds the threshold with a margin, so no true match is ever dropped.
    """
    # every term of |sa - sb|^2 is an integer below 2^53, so the product is exact
    left, right = _distance_factors(sums_a, sums_b)
    return (left @ right) <= channel_limit(size, threshold)


def _distance_factors(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``left`` (n x d+2) and ``right`` (d+2 x m), float64, with ``left @ right`` the squared
    distances ``|a_i - b_j|^2`` of the rows: ``[a, |a|^2, 1] . [-2 b, 1, |b|^2]``, one matrix
    product and no other n x m temporary."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    d = a.shape[1]
    left = np.empty((len(a), d + 2))
    left[:, :d] = a
    left[:, d] = np.einsum("ij,ij->i", a, a)
    left[:, d + 1] = 1.0
    right = np.empty((d + 2, len(b)))
    right[:d] = -2.0 * b.T
    right[d] = 1.0
    right[d + 1] = np.einsum("ij,ij->i", b, b)
    return left, right


def with_total(sums: np.ndarray) -> np.ndarray:
    """Per-channel sums (n x 3) with their total as a fourth column, as float64."""
    s = np.asarray(sums, np.float64)
    return np.concatenate([s, s.sum(axis=-1, keepdims=True)], axis=-1)


def range_bound(lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray) -> np.ndarray:
    """Lower bound of ``sum_c (sa_c - sb_c)^2`` over every pair of two groups of images, from
    the ranges (min, max) of their channel sums and of their total (last axis: 3 channels,
    then the total, as ``with_total`` gives).

    Each channel's difference is at least the gap between its two ranges, and by
    Cauchy-Schwarz ``sum_c d_c^2 >= (sum_c d_c)^2 / 3``, where the total's gap bounds
    ``|sum_c d_c|``. Images sorted by total and cut into groups have disjoint total ranges,
    so the second term prunes groups far apart in brightness whatever their colours.
    """
    gap = np.maximum(0.0, np.maximum(lo_b - hi_a, lo_a - hi_b))
    return np.maximum((gap[..., :3] ** 2).sum(axis=-1), gap[..., 3] ** 2 / 3.0)


def _flat_centred(x: np.ndarray, t: int) -> np.ndarray:
    return (transformed(x, t).reshape(len(x), -1).astype(np.float32)) - np.float32(128)


def _exact_dot(xf: np.ndarray, yf: np.ndarray) -> np.ndarray:
    out = np.zeros((len(xf), len(yf)), np.float64)
    for c in range(0, xf.shape[1], _CHUNK):
        out += xf[:, c : c + _CHUNK] @ yf[:, c : c + _CHUNK].T
    return out


def block_dif(x: np.ndarray, y: np.ndarray, rotate: bool = True, mirror: bool = False) -> np.ndarray:
    """``dif`` of every pair of ``x`` (n x S x S x 3) and ``y`` (m x S x S x 3), exactly.

    Returns an n x m float64 array equal to ``naive_dif(x[i], y[j], rotate, mirror)``
    everywhere.
    """
    _check_thumbs(x, "x")
    _check_thumbs(y, "y")
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"x and y thumbnails differ in shape: {x.shape[1:]} vs {y.shape[1:]}")
    size = x.shape[1]
    yf = _flat_centred(y, 0)
    norm_y = np.einsum("ij,ij->i", yf, yf, dtype=np.float64)
    best = _exact_dot(_flat_centred(x, 0), yf)
    for t in transforms(rotate, mirror)[1:]:
        np.maximum(best, _exact_dot(_flat_centred(x, t), yf), out=best)
    xf0 = _flat_centred(x, 0)
    norm_x = np.einsum("ij,ij->i", xf0, xf0, dtype=np.float64)
    sse = norm_x[:, None] + norm_y[None, :] - 2.0 * best
    return sse / np.float64(size * size)


def pairwise_dif(x: np.ndarray, y: np.ndarray, rotate: bool, fn: DifFunction) -> np.ndarray:
    """Apply a user difference function to every pair (no kernel, no pruning)."""
    out = np.empty((len(x), len(y)), np.float64)
    for i in range(len(x)):
        for j in range(len(y)):
            value = float(fn(x[i], y[j], rotate))
            if not value >= 0:
                raise ValueError(f"difference function {fn!r} returned {value!r}; it must be >= 0")
            out[i, j] = value
    return out


def grid_cells(size: int, wanted: int = 8) -> int:
    """Cells per side of the pruning grid: the largest divisor of S not above ``wanted``."""
    return max(g for g in range(1, min(wanted, size) + 1) if size % g == 0)


def grid_sums(x: np.ndarray, cells: int) -> np.ndarray:
    """Pixel sums over a ``cells x cells`` grid, per channel (n x cells x cells x 3, int64)."""
    n, size, c = x.shape[0], x.shape[1], x.shape[3]
    step = size // cells
    # rows of each cell first (contiguous runs), then columns; int32 where it cannot overflow
    acc = np.int32 if 255 * step * step < 2**31 else np.int64
    rows = x.reshape(n, cells, step, size * c).sum(axis=2, dtype=acc)
    # the columns of a cell slice by slice: one reduction over them would run innermost over
    # the 3 channels only, twice as slow
    per_cell = rows.reshape(n, cells, cells, step * c)
    out = per_cell[..., :c].astype(np.int64)
    for s in range(1, step):
        out += per_cell[..., s * c : (s + 1) * c]
    return out


def grid_bound_rotations(
    grid_a: np.ndarray, grid_b: np.ndarray, size: int, threshold: float, rotate: bool = True, mirror: bool = False
) -> np.ndarray:
    """The turns and reflections by which each pair can lie within ``threshold`` by the grid
    bound: an n x m uint8 array, bit t set when transform t of a (``transforms``) may match
    b (bit 0 only without ``rotate`` and ``mirror``).

    Projecting onto images that are constant on each grid cell shortens distances, so
    ``sum((a - b)^2) >= sum_cells (cellsum(a) - cellsum(b))^2 / cell_pixels`` for each
    transform, and the cell sums of a turned or mirrored image are the turned or mirrored
    cell sums (the grid is square and its cells equal). All terms are
    integers below 2^53, so the float64 products here are exact; a rotation is ruled out only
    when its bound exceeds the threshold (with a margin).
    """
    cells = grid_a.shape[1]
    cell_pixels = (size // cells) ** 2
    limit = threshold * float(size) ** 2 * cell_pixels * (1 + 1e-9) + 1
    left, right = _distance_factors(grid_a, grid_b)
    d = left.shape[1] - 2
    bits = np.zeros((len(grid_a), len(grid_b)), np.uint8)
    ok = np.empty(bits.shape, bool)
    for t in transforms(rotate, mirror):
        if t:  # a transform only permutes the cells: the norm column serves all of them
            left[:, :d] = transformed(grid_a, t).reshape(len(grid_a), -1)
        np.less_equal(left @ right, limit, out=ok)
        turned = ok.view(np.uint8)
        if t:
            np.left_shift(turned, t, out=turned)
        bits |= turned
    return bits


def grid_bound_mask(
    grid_a: np.ndarray, grid_b: np.ndarray, size: int, threshold: float, rotate: bool = True, mirror: bool = False
) -> np.ndarray:
    """Pairs that can lie within ``threshold`` by the grid bound for some turn or reflection
    (n x m bool; see ``grid_bound_rotations``)."""
    return grid_bound_rotations(grid_a, grid_b, size, threshold, rotate, mirror) != 0


def pair_dif(
    x: np.ndarray | Rows,
    y: np.ndarray | Rows,
    rows: np.ndarray,
    cols: np.ndarray,
    rotate: bool = True,
    turns: np.ndarray | None = None,
    mirror: bool = False,
) -> np.ndarray:
    """``dif`` of the pairs ``(x[rows[t]], y[cols[t]])``: for the few pairs that survive
    pruning, where a full matrix product would be wasted.

    Pairs are taken 256 at a time: the x images of a batch turned by each transform, the
    differences squared in int32 (at most 255^2) and summed in int64, so every sum is the
    exact integer and the result equals ``naive_dif`` bit for bit.

    ``turns`` (uint8 per pair, as ``grid_bound_rotations`` gives) limits each pair to the
    transforms whose bit is set. The result is then the minimum over those transforms only:
    equal to ``naive_dif`` wherever the transforms left out are proven above a threshold
    that the value itself does not exceed, which is how the compare jobs use it.
    """
    size = x.shape[1]
    wanted = transforms(rotate, mirror)
    if turns is not None:
        without = turns[(turns & sum(1 << t for t in wanted)) == 0]
        if len(without):
            raise ValueError(f"every pair needs a transform in turns, got {without[:5]}")
    best = np.full(len(rows), np.iinfo(np.int64).max, np.int64)
    for t in wanted:
        todo = np.arange(len(rows)) if turns is None else np.flatnonzero(turns & (1 << t))
        for s in range(0, len(todo), 256):
            at = todo[s : s + 256]
            xa = x[rows[at]].astype(np.int32)
            d = transformed(xa, t) - y[cols[at]].astype(np.int32)
            sse = (d * d).reshape(len(d), -1).sum(axis=1, dtype=np.int64)
            best[at] = np.minimum(best[at], sse)
    return best.astype(np.float64) / np.float64(size * size)
