"""Thumbnails and hashes: decode each file, shrink it to S x S x 3, hash its rotations."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, NamedTuple

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import simplejpeg

from ._errors import ImageReadError
from ._formats import DIGEST_SCHEMA, HASH_COLUMNS, META_SCHEMA, FileStatus
from ._io import atomic_path, read_parquet
from ._kernel import channel_sums
from ._paths import native
from ._plugins import resolve

__all__ = [
    "MAX_FILE_BYTES", "MAX_IMAGE_PIXELS", "FileIdentity",
    "ImageReadError", "header_size", "read_file", "canonical_digests", "decode_image",
    "decode_thumbnail", "default_hash", "halved", "hash_stack", "hash_thumbnail", "make_digests",
    "make_thumbnails", "rotations",
]

logger = logging.getLogger(__name__)

Method = Literal["compat", "area", "quality"]
METHODS = ("compat", "area", "quality")
# imread flag per decoding scale (2, 4, 8: DCT scaling in libjpeg), largest first
_DECODE_FLAG = {8: cv2.IMREAD_REDUCED_COLOR_8, 4: cv2.IMREAD_REDUCED_COLOR_4,
                2: cv2.IMREAD_REDUCED_COLOR_2, 1: cv2.IMREAD_COLOR}
# a reduced decode must keep at least this many pixels per thumbnail pixel on the short side
# (bench/README.md: 3 loses no copy, re-encode, resize, rotation or re-save that a full
# decode finds; 2 loses a few PNG re-saves)
REDUCED_MIN_RATIO = 3
# the quality method then halves the image by 2 x 2 means (OpenCV's exact SIMD path) while
# both sides are even and the halved short side keeps this many pixels per thumbnail pixel,
# so that INTER_AREA's slower general path gets a quarter or less of the pixels; the boxes of
# a rotated copy fall on the same pixels (bench/README.md: the same copies found on every
# corpus, 1.43 -> 1.23 ms a 640 x 480 photo at S = 50)
HALVING_MIN_RATIO = 2
# both sides a multiple of the DCT block put the blocks of a rotated copy on the same pixels,
# so reduced decodes of an image and of its rotations agree; on unaligned sizes they do not
# (measured in bench/README.md: rotated copies of 1603 x 1201 photos lost, 1608 x 1208 kept)
MCU_ALIGN = 8

# how far ahead of its decoding a thread asks the kernel to read files, so that waiting on
# storage overlaps decoding: up to this many files and, beyond the next one, this many bytes
# (bench/README.md: 32 files were too few on a cold page cache)
READ_AHEAD_FILES = 512
READ_AHEAD_BYTES = 64 << 20

class _JpegHeader(NamedTuple):
    """What ``_jpeg_scan`` learns from a JPEG's markers before its image data."""

    problem: str | None  # why the stream is truncated, or None
    size: tuple[int, int] | None  # (height, width) from the frame header, when one was read
    plain: bool  # 8-bit Huffman (baseline, extended or progressive), grey or 3-channel, no Exif


# frame markers whose image data libjpeg-turbo decodes to the same pixels through simplejpeg
# as through OpenCV: baseline, extended and progressive Huffman coding
_PLAIN_FRAMES = (0xC0, 0xC1, 0xC2)


def _jpeg_scan(data: bytes) -> _JpegHeader:
    """Walk a JPEG's markers up to its image data.

    ``problem`` says why the stream is truncated (libjpeg pads a cut-off stream with grey and
    reports success, so the end-of-image marker after the scan data is checked here). ``plain``
    is True only for a frame decoders agree on and no Exif segment (whose orientation OpenCV
    applies by rules of its own), and only once the walk reached the image data."""
    i, n = 2, len(data)
    size = None
    frame_ok = False
    exif = False
    while i + 4 <= n:
        if data[i] != 0xFF:
            return _JpegHeader(None, size, False)  # not a marker where one belongs: let the decoder judge
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker == 0xD9:
            return _JpegHeader("truncated JPEG: end-of-image marker before any image data", size, False)
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and i + 10 <= n:
            size = (int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big"))
            frame_ok = (marker in _PLAIN_FRAMES and data[i + 4] == 8 and data[i + 9] in (1, 3)
                        and min(size) > 0)
        elif marker == 0xE1 and data[i + 4:i + 8] == b"Exif":
            exif = True
        if marker == 0xDA:
            # the marker ends a whole file, or comes shortly before trailing bytes: look at the
            # tail first and scan the whole image data only when it is not there
            start = i + 2 + length
            if (data.rfind(b"\xff\xd9", max(start, n - 4096)) == -1
                    and data.find(b"\xff\xd9", start) == -1):
                return _JpegHeader("truncated JPEG: the image data has no end-of-image marker", size, False)
            return _JpegHeader(None, size, frame_ok and not exif)
        i += 2 + length
    return _JpegHeader("truncated JPEG: the file ends inside its headers", size, False)


# the most pixels an image may have (config max_image_pixels); beyond it a file is an error row
# rather than gigabytes of memory. Pillow's MAX_IMAGE_PIXELS, about 89 million pixels (a
# 268 MB BGR image), is the same bound in the same spirit.
MAX_IMAGE_PIXELS = 89_478_485
# the largest file read (config max_file_bytes)
MAX_FILE_BYTES = 512 << 20


class FileIdentity(NamedTuple):
    """What names one version of a file: where it lives, and its size and time."""

    dev: int
    inode: int
    file_size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def differences(self, other: FileIdentity) -> list[str]:
        """The fields that differ, as ``name a -> b``."""
        return [f"{name} {a} -> {b}" for name, a, b in zip(self._fields, self, other) if a != b]


def read_file(path: str, expected: FileIdentity | None = None,
              max_bytes: int = MAX_FILE_BYTES) -> tuple[bytes, FileIdentity]:
    """The bytes of the regular file ``path`` and the identity they were read under.

    Never blocks (a FIFO or device is refused after a non-blocking open) and never reads
    more than ``max_bytes``. With ``expected``, a file that is no longer that version is
    refused.

    Raises
    ------
    ImageReadError
        Naming what is wrong: unreadable, not a regular file, changed, too large, or a size
        that changed while it was read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ImageReadError(f"cannot read file: {type(exc).__name__}: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageReadError(f"not a regular file (mode {stat.filemode(st.st_mode)})")
        found = FileIdentity.of(st)
        if expected is not None and found != expected:
            raise ImageReadError("file changed since it was indexed ("
                                 + ", ".join(expected.differences(found))
                                 + "); run again to index it anew")
        if st.st_size > max_bytes:
            raise ImageReadError(f"file of {st.st_size} bytes exceeds max_file_bytes ({max_bytes})")
        # one read of the whole file in the common case (no copy); one byte more than its
        # size tells a file that grew meanwhile
        chunks, got = [], 0
        while got <= st.st_size:
            chunk = os.read(fd, st.st_size + 1 - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got != st.st_size:
            raise ImageReadError(f"file size changed while it was read ({st.st_size} -> {got} bytes or more)")
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return data, found
    except OSError as exc:
        raise ImageReadError(f"cannot read file: {type(exc).__name__}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def header_size(data: bytes) -> tuple[int, int] | None:
    """``(height, width)`` from a PNG, JPEG, GIF, BMP or WebP header, None for other data."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")
    if data[:2] == b"\xff\xd8":
        return _jpeg_scan(data).size
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[8:10], "little"), int.from_bytes(data[6:8], "little")
    if data[:2] == b"BM" and len(data) >= 26:
        return abs(int.from_bytes(data[22:26], "little", signed=True)), int.from_bytes(data[18:22], "little")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        kind = data[12:16]
        if kind == b"VP8X":
            return 1 + int.from_bytes(data[27:30], "little"), 1 + int.from_bytes(data[24:27], "little")
        if kind == b"VP8 ":
            return (int.from_bytes(data[28:30], "little") & 0x3FFF,
                    int.from_bytes(data[26:28], "little") & 0x3FFF)
        if kind == b"VP8L" and len(data) >= 25:
            bits = int.from_bytes(data[21:25], "little")
            return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    return None


def reduced_scale(height: int, width: int, size: int) -> int:
    """The DCT scale (1, 2, 4 or 8) the quality method decodes a JPEG of this size at: the
    largest that keeps REDUCED_MIN_RATIO pixels per thumbnail pixel on the short side, and 1
    unless both sides are multiples of MCU_ALIGN."""
    if height % MCU_ALIGN or width % MCU_ALIGN:
        return 1
    return next(s for s in _DECODE_FLAG if min(height, width) // s >= REDUCED_MIN_RATIO * size or s == 1)


def _opencv_pixel_limit() -> int:
    """The most pixels OpenCV decodes (its default, or OPENCV_IO_MAX_IMAGE_PIXELS)."""
    try:
        return int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", 1 << 30))
    except ValueError:
        return 0  # an unreadable setting: let OpenCV itself judge every file


def _decode_plain_jpeg(data: bytes, height: int, width: int, scale: int = 1) -> np.ndarray | None:
    """A plain JPEG (``_JpegHeader.plain``) through simplejpeg, at full size or, with
    ``scale`` 2, 4 or 8, DCT-scaled as ``IMREAD_REDUCED_COLOR_<scale>`` does. simplejpeg calls
    the same libjpeg-turbo code as OpenCV with less work around it (never slower, up to a
    third less time, bench/README.md) and gives the same pixels (tests/test_jpeg_decode.py).
    None where OpenCV must decide: sizes beyond OpenCV's limits, or any warning or error
    from libjpeg (``strict``), which OpenCV may tolerate or report in its own words."""
    if max(height, width) > 1 << 20 or height * width > _opencv_pixel_limit():
        return None
    if min(-(-height // scale), -(-width // scale)) < 3:
        return None  # outputs of 1 or 2 pixels a side: the two differ in DCT-scaled upsampling
    try:
        # the largest reduction that keeps ceil(side / scale) pixels is exactly 1 / scale
        return simplejpeg.decode_jpeg(data, colorspace="BGR", strict=True, min_factor=scale,
                                      min_height=-(-height // scale), min_width=-(-width // scale))
    except ValueError:
        return None


def _decode(buf: np.ndarray, flag: int) -> np.ndarray:
    try:
        img = cv2.imdecode(buf, flag)
    except cv2.error as exc:
        raise ImageReadError(f"cannot decode image: {exc.err or exc}") from exc
    if img is None or img.size == 0:
        raise ImageReadError("cannot decode image: not an image format OpenCV reads, or corrupt data")
    return img


def decode_image(data: bytes, reduce_for: int | None = None,
                 max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[np.ndarray, int]:
    """A file's bytes decoded as ``cv2.imdecode(..., IMREAD_COLOR)`` reads them: ``(image,
    scale)``. With ``reduce_for`` (a thumbnail size), a JPEG is decoded at the DCT scale
    ``reduced_scale`` picks for it (``scale`` 2, 4 or 8); else at full size (``scale`` 1).
    A plain JPEG goes through simplejpeg, everything else through OpenCV. An image whose
    header gives more than ``max_pixels`` pixels (at the scale decoded) is refused before
    any decoding.

    Raises
    ------
    ImageReadError
        For a truncated JPEG, an image above ``max_pixels``, or data OpenCV cannot decode.
    """
    scale = 1
    img = None
    size = header_size(data)
    if data[:2] == b"\xff\xd8":
        header = _jpeg_scan(data)
        if header.problem:
            raise ImageReadError(header.problem)
        if reduce_for is not None and header.size is not None:
            scale = reduced_scale(*header.size, reduce_for)
    if size is not None:
        pixels = -(-size[0] // scale) * -(-size[1] // scale)
        if pixels > max_pixels:
            raise ImageReadError(f"image of {size[1]} x {size[0]} pixels exceeds max_image_pixels "
                                 f"({max_pixels}){' at 1/%d size' % scale if scale > 1 else ''}")
    if data[:2] == b"\xff\xd8" and header.plain:
        img = _decode_plain_jpeg(data, *header.size, scale)
    if img is None:
        img = _decode(np.frombuffer(data, np.uint8), _DECODE_FLAG[scale])
    return img, scale


def halved(img: np.ndarray, size: int, min_ratio: int = HALVING_MIN_RATIO) -> np.ndarray:
    """``img`` halved by 2 x 2 means while both sides are even and the halved short side
    keeps ``min_ratio`` pixels per thumbnail pixel (the quality method's step between
    decoding and ``INTER_AREA``)."""
    while (not img.shape[0] % 2 and not img.shape[1] % 2
           and min(img.shape[:2]) // 2 >= min_ratio * size):
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return img


def decode_thumbnail(path: str, size: int, method: Method = "quality", *,
                     expected: FileIdentity | None = None, max_pixels: int = MAX_IMAGE_PIXELS,
                     max_bytes: int = MAX_FILE_BYTES) -> tuple[np.ndarray, int, int]:
    """Decode ``path`` and return ``(thumbnail, px, py)``.

    The thumbnail is the image as ``cv2.imdecode(..., IMREAD_COLOR)`` reads it (3-channel
    uint8 BGR: grey expanded, alpha dropped, 16-bit scaled to 8, EXIF orientation applied)
    shrunk to ``size x size``; ``px, py`` are the decoded image's rows and columns, as
    fast-diff-py stores them. Methods:

    - ``compat``: full decode, ``INTER_CUBIC`` (fast-diff-py's pixels, aliased when shrinking);
    - ``area``: full decode, ``INTER_AREA`` (each thumbnail pixel the mean of its source area);
    - ``quality``: like ``area``, but a JPEG whose sides are multiples of 8 is decoded at
      1/2, 1/4 or 1/8 size by DCT scaling first (see ``reduced_scale``), and the image is
      halved by 2 x 2 means while it stays large enough (``halved``) before ``INTER_AREA``:
      a fraction of the cost, and the same copies found.

    The decoding is ``decode_image``'s: OpenCV's pixels, through simplejpeg for plain JPEGs.
    The file is read by ``read_file`` (``expected`` and ``max_bytes`` are its checks).

    Raises
    ------
    ImageReadError
        With a message naming the problem (empty, unreadable, truncated, undecodable).
    """
    if method not in METHODS:
        raise ValueError(f"thumbnail method must be one of {METHODS}, got {method!r}")
    data, _ = read_file(path, expected, max_bytes)
    if not data:
        raise ImageReadError("empty file (0 bytes)")
    img, scale = decode_image(data, size if method == "quality" else None, max_pixels)
    px, py = int(img.shape[0]) * scale, int(img.shape[1]) * scale
    if method == "quality":
        img = halved(img, size)
    if img.shape[:2] != (size, size):
        interpolation = cv2.INTER_CUBIC if method == "compat" else cv2.INTER_AREA
        img = cv2.resize(img, dsize=(size, size), interpolation=interpolation)
    return np.ascontiguousarray(img), px, py


def _advise(path: str | None) -> None:
    """Ask the kernel to start reading ``path`` into its page cache and return at once
    (``posix_fadvise(WILLNEED)``; nothing where the platform has none). Errors are left to
    the file's own read, which reports them."""
    if path is None or not hasattr(os, "posix_fadvise"):
        return
    try:
        # O_NONBLOCK: a FIFO among the files must not block here (it changes nothing for a file)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_ahead(sizes: list[int], files: int, budget: int) -> Iterator[range]:
    """For each of a run of files (``sizes`` in bytes), the files to ask for before working on
    it: every file once, before its turn, never ``files`` or more ahead of the current one,
    and the files asked for and not yet worked on within ``budget`` bytes beyond the next."""
    ahead = window = 0  # files [i, ahead) have been asked for, ``window`` bytes of them
    for i in range(len(sizes)):
        start = ahead
        while ahead < len(sizes) and ahead - i < files and (ahead == i or window + sizes[ahead] <= budget):
            window += sizes[ahead]
            ahead += 1
        yield range(start, ahead)
        window -= sizes[i]


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


def _canonical(hashes: tuple[str | None, ...]) -> str:
    return min(h for h in hashes if h is not None)


def canonical_digests(stack: np.ndarray, rotate: bool = True) -> list[str]:
    """One digest per thumbnail of an N x S x S x 3 stack, equal for thumbnails equal up to a
    rotation (only for equal ones without ``rotate``): the least ``default_hash`` of its
    unshifted rotations, so that with ``shift_amount`` 0 the hashes give it for free.

    The planner groups images by it to answer ``diff_threshold == 0``; two different images
    with the same digest are only compared needlessly, never stored wrongly."""
    return [_canonical(h) for h in hash_stack(stack, rotate=rotate)]


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
            row = []
            for t in turned:
                if t.shape not in prefixes:
                    prefixes[t.shape] = hashlib.sha1(repr(t.shape).encode())
                h = prefixes[t.shape].copy()
                h.update(t)
                row.append(h.hexdigest())
        else:
            row = [hash_fn(t) for t in turned]
            for h in row:
                if not isinstance(h, str):
                    raise TypeError(f"hash function must return str, got {type(h).__name__}")
        out.append((*row, *[None] * (4 - len(row))))
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


def make_thumbnails(
    index_shard: str | os.PathLike[str],
    out_thumbs: str | os.PathLike[str],
    out_meta: str | os.PathLike[str],
    *,
    size: int,
    method: Method = "quality",
    compute_hash: bool = False,
    shift_amount: int = 0,
    rotate: bool = True,
    hash_fn: str | Callable[[np.ndarray], str] | None = None,
    threads: int = 1,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> None:
    """Thumbnail and hash every allowed file of one index shard.

    Writes ``out_thumbs`` (uint8, N x size x size x 3, one row per decoded file) and
    ``out_meta`` (one row per file of the shard, schema META_SCHEMA). Files that fail get
    ``success = 0`` and their error (a file no longer the version indexed among them);
    disallowed files and second names of a file (``same_as``) ``success = -1``.
    """
    fn = resolve(hash_fn) if hash_fn else default_hash
    index = read_parquet(index_shard, columns=[
        "key", "path", "path_bytes", "file_size", "allowed", "error", "same_as", "dev", "inode",
        "mtime_ns"]).to_pylist()
    cv2.setNumThreads(1)
    # OpenCV's own bound for the formats whose headers header_size does not read (it is read
    # once per process, at the first decode)
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(max_image_pixels))

    def work(row: dict) -> tuple[np.ndarray | None, dict]:
        out = {"key": row["key"], "success": int(FileStatus.NOT_COMPUTED), "error": row["error"],
               "px": -1, "py": -1, "dev": -1, "inode": 0, "file_size": -1, "mtime_ns": -1}
        if row["same_as"] is not None:  # another name of a file that is read under its own
            return None, out
        if row["error"]:
            out["success"] = int(FileStatus.ERROR)
            return None, out
        if not row["allowed"]:
            return None, out
        expected = FileIdentity(row["dev"], row["inode"], row["file_size"], row["mtime_ns"])
        try:
            thumb, out["px"], out["py"] = decode_thumbnail(
                native(row["path"], row["path_bytes"]), size, method, expected=expected,
                max_pixels=max_image_pixels, max_bytes=max_file_bytes)
        except ImageReadError as exc:
            logger.warning("%r: %s", row["path"], exc)
            out.update(success=int(FileStatus.ERROR), error=str(exc))
            return None, out
        except Exception as exc:  # a decoder's own failure is this file's error, not the job's
            logger.exception("%r: unexpected error while decoding", row["path"])
            out.update(success=int(FileStatus.ERROR), error=f"cannot decode image: {type(exc).__name__}: {exc}")
            return None, out
        out.update(success=int(FileStatus.SUCCESS), **expected._asdict())
        return thumb, out

    # one row per file of the shard, allocated but untouched (no memory) until a thumbnail
    # is written into it; the decoded rows are then moved together
    buf = np.empty((len(index), size, size, 3), np.uint8)

    def work_run(first: int, rows: list[dict]) -> list[tuple[bool, dict]]:
        # the kernel reads ahead while this thread decodes (no reader thread: handing the GIL
        # back and forth per file cost more than the reads)
        read = [bool(r["allowed"]) and not r["error"] and r["same_as"] is None for r in rows]
        sizes = [max(0, r["file_size"] or 0) if ok else 0 for r, ok in zip(rows, read)]
        out = []
        for i, (row, ahead) in enumerate(zip(rows, read_ahead(sizes, READ_AHEAD_FILES, READ_AHEAD_BYTES))):
            for j in ahead:
                if read[j]:
                    _advise(native(rows[j]["path"], rows[j]["path_bytes"]))
            thumb, meta = work(row)
            if thumb is not None:
                buf[first + i] = thumb
            out.append((thumb is not None, meta))
        return out

    # decoding releases the GIL; threads take contiguous runs of files (one task per file
    # would spend more on the executor than on a small JPEG), each asking for its files ahead
    n_threads = max(1, threads)
    step = max(1, -(-len(index) // (4 * n_threads)))
    starts = list(range(0, len(index), step))

    with ThreadPoolExecutor(n_threads) as pool:
        results = [r for run in pool.map(lambda i: work_run(i, index[i:i + step]), starts) for r in run]
    decoded = np.fromiter((ok for ok, _ in results), bool, len(results))
    for target, source in enumerate(np.flatnonzero(decoded).tolist()):
        if target != source:
            buf[target] = buf[source]
    stack = buf[:int(decoded.sum())]
    # hashing is a Python loop over the thumbnails (OpenCV turns them, hashlib hashes them):
    # more threads would only take turns at the GIL
    hashes = hash_stack(stack, shift_amount=shift_amount, rotate=rotate, hash_fn=fn) if compute_hash else []
    thumb_row = np.full(len(results), -1, np.int32)
    thumb_row[decoded] = np.arange(len(stack), dtype=np.int32)
    sums = np.zeros((len(results), 3), np.int64)
    sums[decoded] = channel_sums(stack)

    def per_file(values: list) -> list:  # values of the decoded files, None for the others
        out = [None] * len(results)
        for row, value in zip(np.flatnonzero(decoded).tolist(), values):
            out[row] = value
        return out

    columns = {name: [m[name] for _, m in results]
               for name in ("key", "success", "error", "px", "py", *FileIdentity._fields)}
    columns.update(thumb_row=thumb_row, sum_0=sums[:, 0], sum_1=sums[:, 1], sum_2=sums[:, 2])
    for c, name in enumerate(HASH_COLUMNS):
        columns[name] = per_file([h[c] for h in hashes]) if compute_hash else [None] * len(results)
    with atomic_path(out_thumbs) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, stack)
    with atomic_path(out_meta) as tmp:
        pq.write_table(pa.table(columns, schema=META_SCHEMA), tmp)


def make_digests(
    thumbs: str | os.PathLike[str],
    meta: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    rotate: bool = True,
    from_hashes: bool = False,
) -> None:
    """The canonical digest (``canonical_digests``) of every decoded file of one shard of
    ``make_thumbnails``' output, written to ``out`` (schema DIGEST_SCHEMA).

    Only the plan for ``diff_threshold == 0`` needs them, so they are a step of their own and
    the thumbnails stay the same whatever the threshold. ``from_hashes`` takes them from the
    shard's hash columns, which hold them already when the hashes were made unshifted by
    ``default_hash`` (with the same ``rotate``); otherwise they are computed from the stack.
    """
    table = read_parquet(meta, columns=["key", "thumb_row", *HASH_COLUMNS])
    rows = table.column("thumb_row").to_numpy()
    decoded = np.flatnonzero(rows >= 0)
    keys = table.column("key").to_numpy()[decoded]
    if from_hashes:
        if table.column(HASH_COLUMNS[0]).null_count > (rows < 0).sum():
            raise ValueError(f"{os.fspath(meta)!r}: decoded files without hashes; from_hashes needs "
                             "a shard made with compute_hash")
        hashes = zip(*(table.column(h).to_pylist() for h in HASH_COLUMNS))
        digests = [_canonical(h) for h, row in zip(hashes, rows.tolist()) if row >= 0]
    else:
        # hashed row by row straight from the mapped file, no copy of the stack
        every = canonical_digests(np.load(thumbs, mmap_mode="r"), rotate)
        digests = [every[r] for r in rows[decoded].tolist()]
    with atomic_path(out) as tmp:
        pq.write_table(pa.table({"key": keys, "canonical": digests}, schema=DIGEST_SCHEMA), tmp)
