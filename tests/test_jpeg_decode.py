"""Plain JPEGs decoded through simplejpeg give OpenCV's pixels; every other JPEG, and every
JPEG libjpeg warns about, is left to OpenCV."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest
from conftest import photo, write
from hypothesis import given, settings
from hypothesis import strategies as st

from fast_diff_py import _decode
from fast_diff_py._decode import _decode_plain_jpeg, _jpeg_scan, decode_thumbnail, halved

SAMPLING = [
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_411,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
]


def encode(
    img: np.ndarray, quality: int = 90, sampling: int | None = None, progressive: bool = False, restart: int = 0
) -> bytes:
    params = [
        cv2.IMWRITE_JPEG_QUALITY,
        quality,
        cv2.IMWRITE_JPEG_PROGRESSIVE,
        int(progressive),
        cv2.IMWRITE_JPEG_RST_INTERVAL,
        restart,
    ]
    if sampling is not None:
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling]
    ok, buf = cv2.imencode(".jpg", img, params)
    assert ok
    return buf.tobytes()


def opencv(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def with_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """``data`` with one more marker segment right after its start-of-image marker."""
    return data[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def exif(orientation: int) -> bytes:
    """An Exif payload whose first image directory holds just the orientation tag."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    return b"Exif\0\0" + b"II" + struct.pack("<HI", 42, 8) + ifd


REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


@settings(max_examples=80, deadline=None)
@given(
    rows=st.integers(1, 160),
    cols=st.integers(1, 160),
    quality=st.integers(20, 100),
    sampling=st.sampled_from(SAMPLING),
    progressive=st.booleans(),
    grey=st.booleans(),
    restart=st.sampled_from([0, 1, 3]),
    scale=st.sampled_from([1, 2, 4, 8]),
    seed=st.integers(0, 2**16),
)
def test_plain_jpegs_decode_to_opencvs_pixels(rows, cols, quality, sampling, progressive, grey, restart, scale, seed):
    img = photo(seed, rows, cols)
    if grey:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    data = encode(img, quality, None if grey else sampling, progressive, restart)
    header = _jpeg_scan(data)
    assert header.plain and header.size == (rows, cols)
    fast = _decode_plain_jpeg(data, rows, cols, scale)
    if min(-(-rows // scale), -(-cols // scale)) < 3:
        assert fast is None  # left to OpenCV: the two upsample outputs this small differently
        return
    assert fast is not None
    ref = cv2.imdecode(np.frombuffer(data, np.uint8), REDUCED[scale])
    assert fast.dtype == ref.dtype and fast.shape == ref.shape == (-(-rows // scale), -(-cols // scale), 3)
    assert np.array_equal(fast, ref)


@pytest.fixture
def calls(monkeypatch):
    """The sizes _decode_plain_jpeg is asked to decode, in order."""
    seen = []
    real = _decode._decode_plain_jpeg

    def spy(data, height, width, scale=1):
        seen.append((height, width, scale))
        return real(data, height, width, scale)

    monkeypatch.setattr(_decode, "_decode_plain_jpeg", spy)
    return seen


@pytest.mark.parametrize("method", ["compat", "area", "quality"])
def test_full_size_decodes_take_the_plain_path(tmp_path, calls, method):
    path = write(tmp_path / "a.jpg", photo(3, 75, 101))
    thumb, px, py = decode_thumbnail(str(path), 32, method)
    assert calls == [(75, 101, 1)]
    img = opencv(path.read_bytes())
    interpolation = cv2.INTER_CUBIC if method == "compat" else cv2.INTER_AREA
    assert np.array_equal(thumb, cv2.resize(img, (32, 32), interpolation=interpolation))
    assert (px, py) == (75, 101)


def test_reduced_decodes_take_the_plain_path(tmp_path, calls):
    path = write(tmp_path / "a.jpg", photo(3, 512, 640))
    thumb, px, py = decode_thumbnail(str(path), 32, "quality")
    assert calls == [(512, 640, 4)]
    reduced = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_REDUCED_COLOR_4)
    assert np.array_equal(thumb, cv2.resize(halved(reduced, 32), (32, 32), interpolation=cv2.INTER_AREA))
    assert (px, py) == (512, 640)
    decode_thumbnail(str(path), 32, "area")
    assert calls[1:] == [(512, 640, 1)]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_jpegs_keep_opencvs_orientation(tmp_path, calls, orientation):
    img = photo(4, 40, 70)
    data = with_segment(encode(img), 0xE1, exif(orientation))
    assert not _jpeg_scan(data).plain
    path = tmp_path / "exif.jpg"
    path.write_bytes(data)
    thumb, px, py = decode_thumbnail(str(path), 16, "area")
    assert calls == []
    ref = opencv(data)  # OpenCV turns the image as the Exif orientation says
    assert (px, py) == ref.shape[:2] == ((70, 40) if orientation >= 5 else (40, 70))
    assert np.array_equal(thumb, cv2.resize(ref, (16, 16), interpolation=cv2.INTER_AREA))


def test_other_app_segments_stay_plain():
    data = encode(photo(5, 30, 30))
    xmp = with_segment(data, 0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>")
    comment = with_segment(data, 0xFE, b"a comment")
    # Adobe's segment in place of JFIF's: transform 0 makes libjpeg read the three channels as
    # RGB, 1 as YCbCr
    assert data[2:4] == b"\xff\xe0"
    no_jfif = data[:2] + data[4 + int.from_bytes(data[4:6], "big") :]
    adobe = [with_segment(no_jfif, 0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, t)) for t in (0, 1)]
    assert not np.array_equal(opencv(adobe[0]), opencv(adobe[1]))
    for d in (xmp, comment, *adobe):
        assert _jpeg_scan(d).plain
        assert np.array_equal(_decode_plain_jpeg(d, 30, 30), opencv(d))


def _patched_frame(data: bytes, offset: int, value: int) -> bytes:
    sof = data.index(b"\xff\xc0")
    return data[: sof + offset] + bytes([value]) + data[sof + offset + 1 :]


@pytest.mark.parametrize(
    "offset, value, why",
    [(1, 0xC3, "lossless frame"), (1, 0xC9, "arithmetic coding"), (4, 12, "12-bit samples"), (9, 4, "four components")],
)
def test_frames_outside_the_plain_set_go_to_opencv(offset, value, why):
    data = _patched_frame(encode(photo(6, 24, 24)), offset, value)
    assert not _jpeg_scan(data).plain, why


def test_warnings_hand_the_file_to_opencv(tmp_path, calls):
    data = encode(photo(7, 64, 64))
    # image data cut short before an end-of-image marker: libjpeg warns and pads with grey
    warned = data[: len(data) * 2 // 3] + b"\xff\xd9"
    assert _jpeg_scan(warned).plain
    assert _decode_plain_jpeg(warned, 64, 64) is None
    path = tmp_path / "warned.jpg"
    path.write_bytes(warned)
    thumb, _, _ = decode_thumbnail(str(path), 16, "area")
    assert calls == [(64, 64, 1)]  # tried, refused, then OpenCV
    assert np.array_equal(thumb, cv2.resize(opencv(warned), (16, 16), interpolation=cv2.INTER_AREA))


def test_corrupt_image_data_gives_opencvs_result(tmp_path):
    data = bytearray(encode(photo(8, 96, 96), quality=95))
    start = data.index(b"\xff\xda") + 20
    for k in range(start, len(data) - 2, 97):
        if data[k] != 0xFF and data[k - 1] != 0xFF:
            data[k] ^= 0x5A
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(data))
    ref = opencv(bytes(data))
    if ref is None:
        with pytest.raises(_decode.ImageReadError):
            decode_thumbnail(str(path), 16, "area")
    else:
        thumb, _, _ = decode_thumbnail(str(path), 16, "area")
        assert np.array_equal(thumb, cv2.resize(ref, (16, 16), interpolation=cv2.INTER_AREA))


def test_sizes_beyond_opencvs_limit_go_to_opencv(monkeypatch):
    data = encode(photo(9, 20, 20))
    assert _decode_plain_jpeg(data, 20, 20) is not None
    monkeypatch.setenv("OPENCV_IO_MAX_IMAGE_PIXELS", "399")
    assert _decode_plain_jpeg(data, 20, 20) is None
    assert _decode_plain_jpeg(data, 1 << 21, 1) is None
