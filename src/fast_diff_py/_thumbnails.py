"""Thumbnails and hashes: decode each file, shrink it to S x S x 3, hash its rotations."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._codes import FileStatus
from ._io import atomic_path
from ._plugins import resolve

__all__ = [
    "META_SCHEMA", "ImageReadError", "decode_thumbnail", "hash_thumbnail", "default_hash",
    "make_thumbnails", "rotations",
]

logger = logging.getLogger(__name__)

Interpolation = Literal["cubic", "area"]
_INTERPOLATION = {"cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}
HASH_COLUMNS = ("hash_0", "hash_90", "hash_180", "hash_270")

META_SCHEMA = pa.schema(
    [
        ("key", pa.int64()),
        ("success", pa.int8()),
        ("error", pa.string()),
        ("px", pa.int64()),
        ("py", pa.int64()),
        ("thumb_row", pa.int32()),  # row in the shard's .npy stack, -1 without thumbnail
        ("sum_0", pa.int64()),  # per-channel pixel sums of the thumbnail (pruning features)
        ("sum_1", pa.int64()),
        ("sum_2", pa.int64()),
        *[(h, pa.string()) for h in HASH_COLUMNS],
        # the smallest digest of the unshifted thumbnail's rotations: equal for images whose
        # dif is 0, which lets the planner answer diff_threshold 0 without products
        ("canonical", pa.string()),
    ]
)


class ImageReadError(Exception):
    """A file could not be turned into a thumbnail; the message is what gets recorded."""


def _jpeg_problem(data: bytes) -> str | None:
    """Why a JPEG stream is truncated, or None. libjpeg pads a cut-off stream with grey
    and reports success, so the end-of-image marker after the scan data is checked here."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None  # not a marker where one belongs: let the decoder judge
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker == 0xD9:
            return "truncated JPEG: end-of-image marker before any image data"
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA:
            if data.find(b"\xff\xd9", i + 2 + length) == -1:
                return "truncated JPEG: the image data has no end-of-image marker"
            return None
        i += 2 + length
    return "truncated JPEG: the file ends inside its headers"


def decode_thumbnail(
    path: str, size: int, interpolation: Interpolation = "cubic"
) -> tuple[np.ndarray, int, int]:
    """Decode ``path`` and return ``(thumbnail, px, py)``.

    The thumbnail is ``cv2.imdecode(..., IMREAD_COLOR)`` (3-channel uint8 BGR: grey expanded,
    alpha dropped, 16-bit scaled to 8) resized to ``size x size``; ``px, py`` are the decoded
    image's rows and columns, as fast-diff-py stores them.

    Raises
    ------
    ImageReadError
        With a message naming the problem (empty, unreadable, truncated, undecodable).
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ImageReadError(f"cannot read file: {type(exc).__name__}: {exc.strerror or exc}") from exc
    if not data:
        raise ImageReadError("empty file (0 bytes)")
    if data[:2] == b"\xff\xd8":
        problem = _jpeg_problem(data)
        if problem:
            raise ImageReadError(problem)
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageReadError(f"cannot decode image: {exc.err or exc}") from exc
    if img is None or img.size == 0:
        raise ImageReadError("cannot decode image: not an image format OpenCV reads, or corrupt data")
    px, py = int(img.shape[0]), int(img.shape[1])
    if img.shape[:2] != (size, size):
        img = cv2.resize(img, dsize=(size, size), interpolation=_INTERPOLATION[interpolation])
    return np.ascontiguousarray(img), px, py


def rotations(thumb: np.ndarray, rotate: bool = True) -> list[np.ndarray]:
    """The thumbnail turned by 0, 90, 180 and 270 degrees (only 0 without ``rotate``)."""
    return [np.rot90(thumb, k, axes=(0, 1)) for k in (range(4) if rotate else range(1))]


def default_hash(mat: np.ndarray) -> str:
    """SHA-1 of the array's shape and C-order bytes."""
    h = hashlib.sha1(repr(mat.shape).encode())
    h.update(np.ascontiguousarray(mat).tobytes())
    return h.hexdigest()


def canonical_digest(thumb: np.ndarray, rotate: bool = True) -> str:
    """The smallest BLAKE2b digest over the thumbnail's rotations (only 0 without rotate):
    thumbnails equal up to a rotation share it."""
    return min(hashlib.blake2b(np.ascontiguousarray(r).tobytes(), digest_size=16).hexdigest()
               for r in rotations(thumb, rotate))


def hash_thumbnail(
    thumb: np.ndarray,
    *,
    shift_amount: int = 0,
    rotate: bool = True,
    hash_fn: Callable[[np.ndarray], str] = default_hash,
) -> tuple[str | None, str | None, str | None, str | None]:
    """Hashes of the four rotations of ``thumb`` after shifting its values by ``shift_amount``
    bits (right when positive, left when negative). Without ``rotate`` only the first is set."""
    if not -7 <= shift_amount <= 7:
        raise ValueError(f"shift_amount must lie in [-7, 7], got {shift_amount}")
    if shift_amount > 0:
        thumb = np.right_shift(thumb, shift_amount)
    elif shift_amount < 0:
        thumb = np.left_shift(thumb, -shift_amount)
    hashes = [hash_fn(r) for r in rotations(thumb, rotate)]
    for h in hashes:
        if not isinstance(h, str):
            raise TypeError(f"hash function must return str, got {type(h).__name__}")
    return tuple(hashes + [None] * (4 - len(hashes)))  # type: ignore[return-value]


def make_thumbnails(
    index_shard: str | os.PathLike[str],
    out_thumbs: str | os.PathLike[str],
    out_meta: str | os.PathLike[str],
    *,
    size: int,
    interpolation: Interpolation = "cubic",
    compute_hash: bool = False,
    shift_amount: int = 0,
    rotate: bool = True,
    hash_fn: str | Callable[[np.ndarray], str] | None = None,
    threads: int = 1,
) -> None:
    """Thumbnail and hash every allowed file of one index shard.

    Writes ``out_thumbs`` (uint8, N x size x size x 3, one row per decoded file) and
    ``out_meta`` (one row per file of the shard, schema META_SCHEMA). Files that fail get
    ``success = 0`` and their error; disallowed files ``success = -1``.
    """
    fn = resolve(hash_fn) if hash_fn else default_hash
    index = pq.read_table(index_shard, columns=["key", "path", "allowed", "error"]).to_pylist()
    cv2.setNumThreads(1)

    def work(row: dict) -> tuple[np.ndarray | None, dict]:
        out = {"key": row["key"], "success": int(FileStatus.NOT_COMPUTED), "error": row["error"],
               "px": -1, "py": -1}
        if row["error"]:
            out["success"] = int(FileStatus.ERROR)
            return None, out
        if not row["allowed"]:
            return None, out
        try:
            thumb, out["px"], out["py"] = decode_thumbnail(row["path"], size, interpolation)
        except ImageReadError as exc:
            logger.warning("%r: %s", row["path"], exc)
            out.update(success=int(FileStatus.ERROR), error=str(exc))
            return None, out
        out["success"] = int(FileStatus.SUCCESS)
        out["canonical"] = canonical_digest(thumb, rotate)
        if compute_hash:
            out.update(zip(HASH_COLUMNS, hash_thumbnail(
                thumb, shift_amount=shift_amount, rotate=rotate, hash_fn=fn)))
        return thumb, out

    with ThreadPoolExecutor(max(1, threads)) as pool:
        results = list(pool.map(work, index))
    thumbs = [t for t, _ in results if t is not None]
    rows = [m for _, m in results]
    stack = np.stack(thumbs) if thumbs else np.zeros((0, size, size, 3), np.uint8)
    sums = stack.reshape(len(stack), -1, 3).sum(axis=1, dtype=np.int64)
    t = 0
    for thumb, meta in results:
        if thumb is None:
            meta.update(thumb_row=-1, sum_0=0, sum_1=0, sum_2=0)
        else:
            meta.update(thumb_row=t, sum_0=int(sums[t, 0]), sum_1=int(sums[t, 1]), sum_2=int(sums[t, 2]))
            t += 1
    with atomic_path(out_thumbs) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, stack)
    with atomic_path(out_meta) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=META_SCHEMA), tmp)
