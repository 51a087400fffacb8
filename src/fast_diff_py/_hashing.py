"""Hashes of thumbnails: of each rotation, and the canonical digest shared by rotated copies."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import cv2
import numpy as np

__all__ = ["canonical", "canonical_digests", "default_hash", "hash_stack", "hash_thumbnail", "rotations"]


def rotations(thumb: np.ndarray, rotate: bool = True) -> list[np.ndarray]:
    """The thumbnail turned by 0, 90, 180 and 270 degrees (only 0 without ``rotate``)."""
    return [np.rot90(thumb, k, axes=(0, 1)) for k in (range(4) if rotate else range(1))]


# cv2.rotate codes for np.rot90's turns by k = 1, 2, 3 (counter-clockwise)
_CV2_TURNS = (cv2.ROTATE_90_COUNTERCLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_CLOCKWISE)


def _turned(thumb: np.ndarray, rotate: bool) -> list[np.ndarray]:
    """``rotations(thumb, rotate)`` as C-contiguous copies, made by OpenCV (a fifth of the
    time numpy's strided copies take for 3-channel thumbnails)."""
    thumb = np.ascontiguousarray(thumb)
    if not rotate:
        return [thumb]
    out = [thumb]
    for k, code in enumerate(_CV2_TURNS, 1):
        shape = thumb.shape[1::-1] + thumb.shape[2:] if k % 2 else thumb.shape
        out.append(cv2.rotate(thumb, code).reshape(shape))  # a 1-channel result comes back 2-D
    return out


def default_hash(mat: np.ndarray) -> str:
    """SHA-1 of the array's shape and C-order bytes."""
    h = hashlib.sha1(repr(mat.shape).encode())
    h.update(np.ascontiguousarray(mat).tobytes())
    return h.hexdigest()


def canonical(hashes: tuple[str | None, ...]) -> str:
    return min(h for h in hashes if h is not None)


def canonical_digests(stack: np.ndarray, rotate: bool = True, mirror: bool = False) -> list[str]:
    """One digest per thumbnail of an N x S x S x 3 stack, equal for thumbnails equal up to a
    rotation (only for equal ones without ``rotate``), and with ``mirror`` up to a mirror
    image too: the least ``default_hash`` of its unshifted rotations (and those of its mirror
    image), so that with ``shift_amount`` 0 and no ``mirror`` the hashes give it for free.

    The planner groups images by it to answer ``diff_threshold == 0``; two different images
    with the same digest are only compared needlessly, never stored wrongly."""
    digests = [canonical(h) for h in hash_stack(stack, rotate=rotate)]
    if mirror:
        mirrored = hash_stack(np.ascontiguousarray(stack[:, :, ::-1]), rotate=rotate)
        digests = [min(d, canonical(h)) for d, h in zip(digests, mirrored)]
    return digests


def _shifted(thumbs: np.ndarray, shift_amount: int) -> np.ndarray:
    if not -7 <= shift_amount <= 7:
        raise ValueError(f"shift_amount must lie in [-7, 7], got {shift_amount}")
    if shift_amount > 0:
        return np.right_shift(thumbs, shift_amount)
    if shift_amount < 0:
        return np.left_shift(thumbs, -shift_amount)
    return thumbs


def hash_stack(
    stack: np.ndarray,
    *,
    shift_amount: int = 0,
    rotate: bool = True,
    hash_fn: Callable[[np.ndarray], str] = default_hash,
) -> list[tuple[str | None, str | None, str | None, str | None]]:
    """``hash_thumbnail`` of every thumbnail of an N x S x S x 3 stack."""
    shifted = _shifted(stack, shift_amount)
    prefixes = {}  # shape -> SHA-1 state after the shape's repr
    out: list[tuple[str | None, str | None, str | None, str | None]] = []
    for thumb in shifted:
        turned = _turned(thumb, rotate)
        if hash_fn is default_hash:
            row: list[str | None] = []
            for t in turned:
                if t.shape not in prefixes:
                    prefixes[t.shape] = hashlib.sha1(repr(t.shape).encode())
                state = prefixes[t.shape].copy()
                state.update(t.data)
                row.append(state.hexdigest())
        else:
            row = [hash_fn(t) for t in turned]
            for h in row:
                if not isinstance(h, str):
                    raise TypeError(f"hash function must return str, got {type(h).__name__}")
        row += [None] * (4 - len(row))
        out.append((row[0], row[1], row[2], row[3]))
    return out


def hash_thumbnail(
    thumb: np.ndarray,
    *,
    shift_amount: int = 0,
    rotate: bool = True,
    hash_fn: Callable[[np.ndarray], str] = default_hash,
) -> tuple[str | None, str | None, str | None, str | None]:
    """Hashes of the four rotations of ``thumb`` after shifting its values by ``shift_amount``
    bits (right when positive, left when negative). Without ``rotate`` only the first is set."""
    return hash_stack(thumb[None], shift_amount=shift_amount, rotate=rotate, hash_fn=hash_fn)[0]
