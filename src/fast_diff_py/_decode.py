"""Decoding: a file's bytes to pixels, and pixels to an S x S x 3 thumbnail."""

from __future__ import annotations

import os
from typing import Literal, NamedTuple

import cv2
import numpy as np
import simplejpeg

from ._crops import crop_thumbnails, cubic_crop_thumbnails
from ._errors import ImageReadError
from ._files import MAX_FILE_BYTES, FileIdentity, read_file

__all__ = [
    "MAX_IMAGE_PIXELS",
    "METHODS",
    "Method",
    "decode_image",
    "PREVIEW_SIDE",
    "Decoded",
    "decode_thumbnail",
    "decode_thumbnail_and_crops",
    "preview_jpeg",
    "halved",
    "header_size",
    "reduced_scale",
]

Method = Literal["compat", "area", "quality"]
METHODS = ("compat", "area", "quality")
# imread flag per decoding scale (2, 4, 8: DCT scaling in libjpeg), largest first
_DECODE_FLAG = {
    8: cv2.IMREAD_REDUCED_COLOR_8,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    1: cv2.IMREAD_COLOR,
}
# a reduced decode must keep at least this many pixels per thumbnail pixel on the short side
# (3 loses no copy that a full decode finds, 2 loses some PNG re-saves: bench/README.md)
REDUCED_MIN_RATIO = 3
# the quality method then halves the image by 2 x 2 means (OpenCV's exact SIMD path) while
# both sides are even and the halved short side keeps this many pixels per thumbnail pixel,
# so that INTER_AREA's slower general path gets a quarter or less of the pixels; the boxes of
# a rotated copy fall on the same pixels (the same copies found, in less time:
# bench/README.md)
HALVING_MIN_RATIO = 2
# both sides a multiple of the DCT block put the blocks of a rotated copy on the same pixels,
# so reduced decodes of an image and of its rotations agree; on unaligned sizes they do not
# (rotated copies of photos with unaligned sides are lost otherwise: bench/README.md)
MCU_ALIGN = 8

# the most pixels an image may have (config max_image_pixels); beyond it a file is an error row
# rather than gigabytes of memory. Pillow's MAX_IMAGE_PIXELS, about 89 million pixels (a
# 268 MB BGR image), is the same bound in the same spirit.
MAX_IMAGE_PIXELS = 89_478_485


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
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and i + 10 <= n:
            size = (int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big"))
            frame_ok = marker in _PLAIN_FRAMES and data[i + 4] == 8 and data[i + 9] in (1, 3) and min(size) > 0
        elif marker == 0xE1 and data[i + 4 : i + 8] == b"Exif":
            exif = True
        if marker == 0xDA:
            # the marker ends a whole file, or comes shortly before trailing bytes: look at the
            # tail first and scan the whole image data only when it is not there
            start = i + 2 + length
            if data.rfind(b"\xff\xd9", max(start, n - 4096)) == -1 and data.find(b"\xff\xd9", start) == -1:
                return _JpegHeader("truncated JPEG: the image data has no end-of-image marker", size, False)
            return _JpegHeader(None, size, frame_ok and not exif)
        i += 2 + length
    return _JpegHeader("truncated JPEG: the file ends inside its headers", size, False)


def header_size(data: bytes) -> tuple[int, int] | None:
    """``(height, width)`` from a PNG, JPEG, GIF, BMP, WebP, HEIF or AVIF header, None for
    other data."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")
    if data[:2] == b"\xff\xd8":
        return _jpeg_scan(data).size
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[8:10], "little"), int.from_bytes(data[6:8], "little")
    if data[:2] == b"BM" and len(data) >= 26:
        return abs(int.from_bytes(data[22:26], "little", signed=True)), int.from_bytes(data[18:22], "little")
    if data[4:8] == b"ftyp":
        return _isobmff_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        kind = data[12:16]
        if kind == b"VP8X":
            return 1 + int.from_bytes(data[27:30], "little"), 1 + int.from_bytes(data[24:27], "little")
        if kind == b"VP8 ":
            return (int.from_bytes(data[28:30], "little") & 0x3FFF, int.from_bytes(data[26:28], "little") & 0x3FFF)
        if kind == b"VP8L" and len(data) >= 25:
            bits = int.from_bytes(data[21:25], "little")
            return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    return None


# the ISO base media file brands (the `ftyp` box) of the two image formats built on it:
# AVIF, which OpenCV decodes, and HEIF/HEIC (phones' HEVC stills), which pillow-heif decodes
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
# image sizes are read from the `ispe` boxes within this many bytes of the start
_ISOBMFF_HEADER_BYTES = 1 << 16


def _brands(data: bytes) -> set[bytes]:
    """The major and compatible brands of an ISO base media file's `ftyp` box."""
    size = int.from_bytes(data[:4], "big")
    if data[4:8] != b"ftyp" or size < 16:
        return set()
    end = min(size, len(data))
    return {data[8:12]} | {data[i : i + 4] for i in range(16, end - 3, 4)}


def _isobmff_size(data: bytes) -> tuple[int, int] | None:
    """``(height, width)`` of the largest image an HEIF or AVIF file declares (the `ispe`
    property of each item: a grid's, or its tiles'), None where none is found."""
    head = data[:_ISOBMFF_HEADER_BYTES]
    sizes = []
    at = head.find(b"ispe")
    while at >= 4 and at + 16 <= len(head):
        # box: size, 'ispe', version and flags, width, height (32-bit, big-endian)
        width = int.from_bytes(head[at + 8 : at + 12], "big")
        height = int.from_bytes(head[at + 12 : at + 16], "big")
        sizes.append((height, width))
        at = head.find(b"ispe", at + 4)
    return max(sizes, key=lambda hw: hw[0] * hw[1]) if sizes else None


def _is_heif(data: bytes) -> bool:
    """Whether ``data`` is an HEIF/HEIC image (and not AVIF, which shares the container)."""
    brands = _brands(data)
    return bool(brands & _HEIF_BRANDS) and not brands & _AVIF_BRANDS


def _decode_heif(data: bytes) -> np.ndarray:
    """An HEIF/HEIC image through pillow-heif (libheif) as 3-channel uint8 BGR: its rotation
    and mirroring applied (where phones record the orientation), alpha dropped, HDR scaled
    to 8 bits."""
    try:
        import pillow_heif
    except ImportError as exc:
        raise ImageReadError("HEIF image, but pillow-heif is not installed (pip install pillow-heif)") from exc
    # a thumbnail job decodes one file per thread of its own
    pillow_heif.options.DECODE_THREADS = 1
    try:
        pixels = np.asarray(pillow_heif.open_heif(data, convert_hdr_to_8bit=True))
    except (ValueError, RuntimeError, OSError, EOFError) as exc:
        raise ImageReadError(f"cannot decode HEIF image: {exc}") from exc
    if pixels.ndim == 2 or pixels.shape[2] == 1:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGR if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR)


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
    the same libjpeg-turbo code as OpenCV with less work around it (never slower,
    bench/README.md) and gives the same pixels (tests/test_jpeg_decode.py).
    None where OpenCV must decide: sizes beyond OpenCV's limits, or any warning or error
    from libjpeg (``strict``), which OpenCV may tolerate or report in its own words."""
    if max(height, width) > 1 << 20 or height * width > _opencv_pixel_limit():
        return None
    if min(-(-height // scale), -(-width // scale)) < 3:
        return None  # outputs of 1 or 2 pixels a side: the two differ in DCT-scaled upsampling
    try:
        # the largest reduction that keeps ceil(side / scale) pixels is exactly 1 / scale
        return simplejpeg.decode_jpeg(
            data,
            colorspace="BGR",
            strict=True,
            min_factor=scale,
            min_height=-(-height // scale),
            min_width=-(-width // scale),
        )
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


def decode_image(
    data: bytes, reduce_for: int | None = None, max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[np.ndarray, int]:
    """A file's bytes decoded as ``cv2.imdecode(..., IMREAD_COLOR)`` reads them: ``(image,
    scale)``. With ``reduce_for`` (a thumbnail size), a JPEG is decoded at the DCT scale
    ``reduced_scale`` picks for it (``scale`` 2, 4 or 8); else at full size (``scale`` 1).
    A plain JPEG goes through simplejpeg, HEIF/HEIC through pillow-heif, everything else
    through OpenCV (AVIF included). An image whose header gives more than ``max_pixels``
    pixels (at the scale decoded) is refused before any decoding.

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
            raise ImageReadError(
                f"image of {size[1]} x {size[0]} pixels exceeds max_image_pixels "
                f"({max_pixels}){f' at 1/{scale} size' if scale > 1 else ''}"
            )
    if data[:2] == b"\xff\xd8" and header.plain and header.size is not None:
        img = _decode_plain_jpeg(data, header.size[0], header.size[1], scale)
    elif _is_heif(data):
        img = _decode_heif(data)
    if img is None:
        img = _decode(np.frombuffer(data, np.uint8), _DECODE_FLAG[scale])
    return img, scale


# the longer side of a gallery thumbnail (a preview), in pixels
PREVIEW_SIDE = 160


def preview_jpeg(img: np.ndarray) -> bytes | None:
    """The gallery's thumbnail of a decoded image: shrunk (2 x 2 means while PREVIEW_SIDE
    pixels remain on the short side, then bilinear, less than 2x in all but thin images) so
    that its longer side is at most PREVIEW_SIDE, as a JPEG of quality 85; None if OpenCV
    cannot encode it. Only people look at it: ``INTER_AREA``'s exact means at a fractional
    ratio would cost the thumbnail jobs several times the rest of the preview."""
    img = halved(img, PREVIEW_SIDE // 2)
    scale = PREVIEW_SIDE / max(img.shape[:2])
    if scale < 1:
        dsize = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
        img = cv2.resize(img, dsize, interpolation=cv2.INTER_LINEAR)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else None


class Decoded(NamedTuple):
    """What ``decode_thumbnail_and_crops`` makes of one file."""

    thumb: np.ndarray  # S x S x 3
    crops: np.ndarray  # V x S x S x 3, the crop thumbnails asked for
    px: int
    py: int
    preview: bytes | None  # the gallery's thumbnail (preview_jpeg), when asked for


def halved(img: np.ndarray, size: int, min_ratio: int = HALVING_MIN_RATIO) -> np.ndarray:
    """``img`` halved by 2 x 2 means while both sides are even and the halved short side
    keeps ``min_ratio`` pixels per thumbnail pixel (the quality method's step between
    decoding and ``INTER_AREA``)."""
    while not img.shape[0] % 2 and not img.shape[1] % 2 and min(img.shape[:2]) // 2 >= min_ratio * size:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return img


def decode_thumbnail(
    path: str,
    size: int,
    method: Method = "quality",
    *,
    expected: FileIdentity | None = None,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_bytes: int = MAX_FILE_BYTES,
) -> tuple[np.ndarray, int, int]:
    """Decode ``path`` and return ``(thumbnail, px, py)`` (see ``decode_thumbnail_and_crops``)."""
    made = decode_thumbnail_and_crops(path, size, method, expected=expected, max_pixels=max_pixels, max_bytes=max_bytes)
    return made.thumb, made.px, made.py


def decode_thumbnail_and_crops(
    path: str,
    size: int,
    method: Method = "quality",
    crops: tuple[float, ...] = (),
    *,
    preview: bool = False,
    expected: FileIdentity | None = None,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_bytes: int = MAX_FILE_BYTES,
) -> Decoded:
    """Decode ``path`` and return its thumbnail, crop thumbnails, ``px, py`` and, with
    ``preview``, the gallery's thumbnail (``preview_jpeg``), all from one decoding.

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

    The crop thumbnails are one per fraction of ``crops``, made as ``fast_diff_py._crops``
    defines them for the method.

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
    gallery = preview_jpeg(img) if preview else None
    # the crops (crop_tolerance): area means of the halved image, bicubic samples for compat
    if method == "compat":
        cropped = cubic_crop_thumbnails(img, size, crops)
    else:
        cropped = crop_thumbnails(img if method == "quality" or not crops else halved(img, size), size, crops)
    if img.shape[:2] != (size, size):
        interpolation = cv2.INTER_CUBIC if method == "compat" else cv2.INTER_AREA
        img = cv2.resize(img, dsize=(size, size), interpolation=interpolation)
    return Decoded(np.ascontiguousarray(img), cropped, px, py, gallery)
