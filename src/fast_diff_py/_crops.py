"""Crop tolerance: the definition of an image's crop thumbnails and of ``dif`` under it.

With ``crop_tolerance c > 0`` each decoded image also gets ``CROP_VARIANTS`` crop thumbnails:
crop k (k = 1, 2, 3) is the image's centred crop with ``k * c / 3`` of its height and of its
width cut away, half at each end, shrunk to S x S as the thumbnail method shrinks:

- ``quality`` and ``area``: by exact area averaging (each thumbnail pixel the mean of its
  rectangle of the crop, pixels cut by the rectangle's edges weighted by their share, rounded
  to the nearest integer), from the decoded image (oriented as its thumbnail is) halved by
  2 x 2 means while its short side keeps at least 2 S pixels (``_decode.halved``), so the
  cost does not grow with the photo's size;
- ``compat``: by bicubic sampling at the crop's pixel centres (OpenCV's ``warpAffine``, the
  positions ``INTER_CUBIC`` resizing samples, to 1/32 pixel), from the whole decoded image,
  as fast-diff-py's thumbnails are made.

``dif`` under crop tolerance is the least of ``dif(a, b)``, ``dif(crop_k(a), b)`` and
``dif(a, crop_k(b))`` over the crops k (each itself the minimum over the turns and
reflections asked for): a pair matches when one image, trimmed by one of those amounts on
every side, matches the other. ``naive_crop_dif`` is the reference the pruned kernels are
tested against.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ._formats import CROP_VARIANTS
from ._kernel import naive_dif

__all__ = [
    "CROP_VARIANTS",
    "MAX_CROP_TOLERANCE",
    "crop_fractions",
    "crop_thumbnails",
    "cubic_crop_thumbnails",
    "naive_crop_dif",
]

# the largest tolerance the config accepts: a quarter of each side
MAX_CROP_TOLERANCE = 0.25


def crop_fractions(tolerance: float) -> tuple[float, ...]:
    """The share of each side each crop cuts away (in total, half at each end); none at 0."""
    if not 0 <= tolerance <= MAX_CROP_TOLERANCE:
        raise ValueError(f"crop_tolerance must be between 0 and {MAX_CROP_TOLERANCE}, got {tolerance!r}")
    if tolerance == 0:
        return ()
    # a third, two thirds and all of the tolerance
    return tuple(tolerance * k / CROP_VARIANTS for k in range(1, CROP_VARIANTS + 1))


@functools.lru_cache(maxsize=256)
def _area_taps(n: int, fractions: tuple[float, ...], size: int) -> tuple[np.ndarray, np.ndarray]:
    """How each crop's ``size`` equal intervals of ``[cut, n - cut)`` (cut = n * fraction / 2)
    average ``n`` pixels: per tap t (T x V x size each), the pixel an interval reads and its
    weight, the pixel's share of the interval over the interval's length (0 where an interval
    has fewer taps)."""
    cut = n * np.asarray(fractions, np.float64)[:, None] / 2
    width = (n - 2 * cut) / size
    starts = cut + width * np.arange(size, dtype=np.float64)[None, :]
    ends = starts + width
    first = np.floor(starts).astype(np.intp)
    last = np.minimum(np.ceil(ends).astype(np.intp), n)  # one past the last pixel read
    pixel = first[None] + np.arange(int((last - first).max()))[:, None, None]
    used = pixel < last[None]
    pixel = np.where(used, pixel, 0)
    share = np.minimum(ends[None], pixel + 1) - np.maximum(starts[None], pixel)
    weight = np.where(used, np.clip(share, 0.0, None) / width[None], 0.0).astype(np.float32)
    pixel.flags.writeable = weight.flags.writeable = False  # shared by every image of this size
    return pixel, weight


def crop_thumbnails(img: np.ndarray, size: int, fractions: tuple[float, ...]) -> np.ndarray:
    """The crop thumbnails (len(fractions) x size x size x C, uint8) of ``img`` (h x w x C
    uint8, the halved decoded image): crop k cuts ``fractions[k]`` of each side, half at each
    end, and is averaged exactly over its area (in float32, rounded).

    Each pass a weighted sum of the few pixels an interval covers, for all crops at once (no
    matrix product: BLAS threads would fight the thumbnail job's own)."""
    h, w, c = img.shape
    if h < 1 or w < 1:
        raise ValueError(f"cannot crop an empty image of shape {img.shape}")
    v = len(fractions)
    if not v:
        return np.empty((0, size, size, c), np.uint8)
    # columns first, from the image turned so that a column is a contiguous run (gathers along
    # the first axis are the fast ones), for all crops at once
    across = cv2.transpose(np.ascontiguousarray(img)).reshape(w, h, c).astype(np.float32)  # w x h x c
    cols, col_weights = _area_taps(w, tuple(fractions), size)  # T x V x size
    by_cols = col_weights[0].reshape(v, size, 1, 1) * across[cols[0]]  # V x size (cols) x h x c
    for t in range(1, len(cols)):
        by_cols += col_weights[t].reshape(v, size, 1, 1) * across[cols[t]]
    # then the rows, each crop's rows of its own part of the turned-back stack
    down = np.concatenate([cv2.transpose(by_cols[k]).reshape(h, size, c) for k in range(v)])
    rows, row_weights = _area_taps(h, tuple(fractions), size)
    offset = (np.arange(v) * h)[:, None]
    shrunk = row_weights[0].reshape(v, size, 1, 1) * down[rows[0] + offset]  # V x size x size x c
    for t in range(1, len(rows)):
        shrunk += row_weights[t].reshape(v, size, 1, 1) * down[rows[t] + offset]
    return np.clip(np.rint(shrunk), 0, 255).astype(np.uint8)


def cubic_crop_thumbnails(img: np.ndarray, size: int, fractions: tuple[float, ...]) -> np.ndarray:
    """The crop thumbnails of ``img`` (the whole decoded image) for the compat method: each
    crop sampled bicubically at the centres of its S x S pixels, edges replicated."""
    h, w, c = img.shape
    out = np.empty((len(fractions), size, size, c), np.uint8)
    for k, f in enumerate(fractions):
        top, left = h * f / 2, w * f / 2
        step_y, step_x = (h - 2 * top) / size, (w - 2 * left) / size
        # thumbnail pixel (x, y) samples the crop at its centre: left + (x + 0.5) * step_x - 0.5
        where = np.array([[step_x, 0, left + 0.5 * step_x - 0.5], [0, step_y, top + 0.5 * step_y - 0.5]])
        out[k] = cv2.warpAffine(
            img,
            where,
            (size, size),
            flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        ).reshape(size, size, c)
    return out


def naive_crop_dif(
    a: np.ndarray,
    b: np.ndarray,
    crops_a: np.ndarray,
    crops_b: np.ndarray,
    rotate: bool = True,
    mirror: bool = False,
) -> float:
    """The reference definition for one pair: thumbnails ``a`` and ``b`` (S x S x 3) and their
    crop thumbnails (V x S x S x 3 each)."""
    best = naive_dif(a, b, rotate, mirror)
    for k in range(len(crops_a)):
        best = min(best, naive_dif(crops_a[k], b, rotate, mirror), naive_dif(a, crops_b[k], rotate, mirror))
    return best
