"""Thumbnails equal fast-diff-py's pixels; bad files become errors; hashes follow rotations."""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import types
import zlib
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import REPO, photo, shard_inputs, write
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fast_diff_py import FileStatus, ImageReadError, decode_thumbnail, hash_thumbnail, write_index
from fast_diff_py._decode import HALVING_MIN_RATIO, halved
from fast_diff_py._hashing import canonical_digests, default_hash, hash_stack, rotations
from fast_diff_py._kernel import naive_dif
from fast_diff_py._thumbnails import _MIN_RUN, _runs, make_digests, make_thumbnails


def reference_thumbnail(path: Path, size: int) -> np.ndarray:
    """fast-diff-py 1.0.4's load_std_image."""
    img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img.shape[:2] != (size, size):
        img = cv2.resize(img, dsize=(size, size), interpolation=cv2.INTER_CUBIC)
    return img


def palette_png(path: Path, idx: np.ndarray, palette: np.ndarray) -> Path:
    """Write an 8-bit palette PNG (colour type 3), which OpenCV can read but not write."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = idx.shape
    raw = b"".join(b"\x00" + idx[r].astype(np.uint8).tobytes() for r in range(h))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
        + chunk(b"PLTE", palette.astype(np.uint8).tobytes())
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("kind", ["jpg", "png", "grey", "rgba", "16bit", "palette", "exact_size"])
def test_pixels_equal_fast_diff_py(tmp_path, kind):
    img = photo(7, 90, 130)
    if kind == "jpg":
        path = write(tmp_path / "a.jpg", img)
    elif kind == "png":
        path = write(tmp_path / "a.png", img)
    elif kind == "grey":
        path = write(tmp_path / "a.png", cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    elif kind == "rgba":
        path = write(tmp_path / "a.png", np.dstack([img, np.full(img.shape[:2], 100, np.uint8)]))
    elif kind == "16bit":
        path = write(tmp_path / "a.png", img.astype(np.uint16) * 257 + 3)
    elif kind == "palette":
        rng = np.random.default_rng(1)
        path = palette_png(
            tmp_path / "a.png",
            rng.integers(0, 4, (30, 40)),
            np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]]),
        )
    else:
        path = write(tmp_path / "a.png", photo(3, 64, 64))
    thumb, px, py = decode_thumbnail(str(path), 64, "compat")
    ref = reference_thumbnail(path, 64)
    assert thumb.dtype == np.uint8 and thumb.shape == (64, 64, 3)
    assert np.array_equal(thumb, ref)
    decoded = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    assert (px, py) == decoded.shape[:2]  # rows, columns: as fast-diff-py stores them


def test_golden_thumbnail_of_an_example_image():
    # Pinned so that an OpenCV upgrade that changes pixels is noticed (opencv 5.0.0.93).
    thumb, px, py = decode_thumbnail(str(REPO / "examples/images/holiday/coffee.jpg"), 64, "compat")
    assert (px, py) == (213, 320)
    assert hashlib.sha1(thumb.tobytes()).hexdigest() == GOLDEN_COFFEE


# Value computed by fast-diff-py 1.0.4 load_std_image (opencv-python 5.0.0.93) on the same file.
GOLDEN_COFFEE = "d6b6227d3cfdbe6d1222c507122e3b042b2eb655"


def test_area_interpolation_is_anti_aliased(tmp_path):
    path = write(tmp_path / "a.png", photo(5, 640, 640))
    area, _, _ = decode_thumbnail(str(path), 64, "area")
    img = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(area, cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA))


def _area(img: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def _quality_resize(img: np.ndarray, size: int) -> np.ndarray:
    """The quality method after decoding, written out: 2 x 2 means rounded half up while both
    sides are even and the halved short side keeps HALVING_MIN_RATIO pixels per thumbnail
    pixel, then INTER_AREA."""
    while not img.shape[0] % 2 and not img.shape[1] % 2 and min(img.shape[:2]) // 2 >= HALVING_MIN_RATIO * size:
        x = img.astype(np.uint16)
        img = ((x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2] + 2) >> 2).astype(np.uint8)
    return _area(img, size)


@pytest.mark.parametrize("shape", [(512, 640), (515, 640), (184, 256), (130, 128), (128, 129), (4, 6), (2, 2)])
@pytest.mark.parametrize("size", [1, 2, 32])
def test_halving_is_the_mean_of_each_two_by_two(shape, size):
    img = photo(7, *shape)
    out = halved(img, size)
    ref = _quality_resize(img, size)
    assert np.array_equal(_area(out, size), ref)
    short = min(out.shape[:2])
    assert short // 2 < HALVING_MIN_RATIO * size or out.shape[0] % 2 or out.shape[1] % 2
    assert short >= min(HALVING_MIN_RATIO * size, min(shape))  # never below the ratio it keeps


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 48),
    rows=st.integers(0, 300),
    cols=st.integers(0, 300),
    k=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_halving_turns_with_the_image(size, rows, cols, k, seed):
    # a rotated copy is halved on the same 2 x 2 boxes, so the halved images are each other
    # turned exactly; INTER_AREA after it (float sums in another order) is off by 1 at most
    img = np.random.default_rng(seed).integers(0, 256, (size + rows, size + cols, 3), dtype=np.uint8)
    turned = np.ascontiguousarray(np.rot90(img, k))
    assert np.array_equal(np.rot90(halved(img, size), k), halved(turned, size))
    a = np.rot90(_area(halved(img, size), size), k).astype(int)
    assert np.abs(a - _area(halved(turned, size), size)).max() <= 1


@pytest.mark.parametrize("kind", ["png", "jpg_unaligned", "jpg_small"])
def test_quality_is_area_of_the_halved_image_where_no_reduced_decode_applies(tmp_path, kind):
    if kind == "png":
        path = write(tmp_path / "a.png", photo(5, 512, 640))
    elif kind == "jpg_unaligned":  # 515 rows: DCT blocks of a rotated copy would not line up
        path = write(tmp_path / "a.jpg", photo(5, 515, 640))
    else:  # aligned, but 1/2 size would leave fewer than 3 pixels per thumbnail pixel
        path = write(tmp_path / "a.jpg", photo(5, 184, 256))
    thumb, px, py = decode_thumbnail(str(path), 32, "quality")
    img = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(thumb, _quality_resize(img, 32))
    if kind == "jpg_unaligned":  # an odd side: nothing to halve
        assert np.array_equal(thumb, _area(img, 32))
    assert (px, py) == img.shape[:2]


@pytest.mark.parametrize(
    "rows, cols, scale",
    [(512, 640, 4), (1024, 1280, 8), (256, 320, 2), (384, 400, 4), (376, 400, 2), (1208, 1608, 8), (600, 808, 4)],
)
def test_quality_decodes_aligned_jpegs_reduced(tmp_path, rows, cols, scale):
    from fast_diff_py._decode import reduced_scale

    assert reduced_scale(rows, cols, 32) == scale
    path = write(tmp_path / "a.jpg", photo(6, rows, cols))
    thumb, px, py = decode_thumbnail(str(path), 32, "quality")
    flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[scale]
    assert np.array_equal(thumb, _quality_resize(cv2.imdecode(np.fromfile(path, np.uint8), flag), 32))
    assert (px, py) == (rows, cols)  # the file's size, not the reduced decode's


@pytest.mark.parametrize("rows, cols", [(768, 1024), (776, 1032), (771, 1029)])
def test_quality_finds_rotated_and_resaved_copies(tmp_path, rows, cols):
    """What the method is for: a JPEG, its rotations re-encoded, and a PNG of its pixels stay
    within difPy's 'similar' (dif 15) of each other, with and without reduced decoding."""
    img = photo(8, rows, cols)
    orig = write(tmp_path / "o.jpg", img)
    decoded = cv2.imread(str(orig))
    copies = [write(tmp_path / f"r{k}.jpg", np.ascontiguousarray(np.rot90(decoded, k))) for k in (1, 2, 3)]
    copies.append(write(tmp_path / "p.png", decoded))
    base, _, _ = decode_thumbnail(str(orig), 48, "quality")
    for c in copies:
        thumb, _, _ = decode_thumbnail(str(c), 48, "quality")
        assert naive_dif(base, thumb, True) <= 15, c.name


def test_unknown_method_is_refused(tmp_path):
    path = write(tmp_path / "a.png", photo(1))
    with pytest.raises(ValueError, match="'bicubic'"):
        decode_thumbnail(str(path), 16, "bicubic")


def _error_of(path: Path) -> str:
    with pytest.raises(ImageReadError) as info:
        decode_thumbnail(str(path), 32)
    return str(info.value)


@pytest.mark.parametrize("trailer", [0, 100, 10_000])
def test_jpeg_with_trailing_bytes_is_whole(tmp_path, trailer):
    # cameras and editors append data after the end-of-image marker; the truncation check
    # must find the marker however far it lies from the end of the file
    data = write(tmp_path / "good.jpg", photo(1)).read_bytes()
    path = tmp_path / "trailer.jpg"
    path.write_bytes(data + b"\0" * trailer)
    thumb, _, _ = decode_thumbnail(str(path), 32)
    assert np.array_equal(thumb, decode_thumbnail(str(tmp_path / "good.jpg"), 32)[0])
    path.write_bytes(data[:-2] + b"\0" * trailer)  # the marker itself cut off
    assert "truncated JPEG" in _error_of(path)


def test_bad_files_raise_a_named_error(tmp_path, monkeypatch):
    good = write(tmp_path / "good.jpg", photo(1))
    data = good.read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    assert "truncated JPEG" in _error_of(tmp_path / "trunc.jpg")
    (tmp_path / "head.jpg").write_bytes(data[:40])
    assert "truncated JPEG" in _error_of(tmp_path / "head.jpg")
    (tmp_path / "zero.jpg").write_bytes(b"")
    assert _error_of(tmp_path / "zero.jpg") == "empty file (0 bytes)"
    (tmp_path / "text.jpg").write_text("this is not an image\n")
    assert "cannot decode image" in _error_of(tmp_path / "text.jpg")
    png = write(tmp_path / "good.png", photo(2)).read_bytes()
    (tmp_path / "trunc.png").write_bytes(png[: len(png) // 2])
    assert "cannot decode image" in _error_of(tmp_path / "trunc.png")
    assert "FileNotFoundError" in _error_of(tmp_path / "missing.jpg")
    locked = write(tmp_path / "locked.jpg", photo(3))
    if os.geteuid() != 0:
        locked.chmod(0)
    else:  # root reads anything: make open() refuse this one file instead
        real_open = os.open

        def guarded(file, *args, **kwargs):
            if str(file) == str(locked):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr("os.open", guarded)
    assert "PermissionError" in _error_of(locked)


def _bomb_png(path: Path, width: int, height: int) -> Path:
    """A valid PNG of ``width x height`` black pixels, written row by row through zlib (a few
    MB on disk, never the image in memory)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", body)
        + chunk(b"IEND", b"")
    )
    return path


def test_images_above_the_pixel_limit_are_refused_before_decoding(tmp_path):
    import resource

    bomb = _bomb_png(tmp_path / "bomb.png", 20_000, 20_000)
    assert bomb.stat().st_size < 2_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageReadError, match=r"20000 x 20000 pixels exceeds max_image_pixels"):
        decode_thumbnail(str(bomb), 32)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB
    small = write(tmp_path / "small.png", photo(1, 100, 100))
    with pytest.raises(ImageReadError, match="100 x 100 pixels exceeds max_image_pixels \\(9999\\)"):
        decode_thumbnail(str(small), 32, max_pixels=9_999)
    assert decode_thumbnail(str(small), 32, max_pixels=10_000)[0].shape == (32, 32, 3)
    # a JPEG is judged at the scale it is decoded at
    jpg = write(tmp_path / "big.jpg", photo(2, 800, 800))
    with pytest.raises(ImageReadError, match="at 1/8 size"):
        decode_thumbnail(str(jpg), 32, max_pixels=100 * 100 - 1)
    assert decode_thumbnail(str(jpg), 32, max_pixels=100 * 100)[1:] == (800, 800)
    with pytest.raises(ImageReadError, match="800 x 800 pixels exceeds"):
        decode_thumbnail(str(jpg), 32, "area", max_pixels=100 * 100)


@pytest.mark.parametrize("fmt", [".png", ".jpg", ".gif", ".bmp", ".webp"])
def test_header_size_reads_each_format(tmp_path, fmt):
    from fast_diff_py._decode import header_size

    img = photo(3, 37, 53)
    ok, buf = cv2.imencode(fmt, img)
    if not ok:
        pytest.skip(f"OpenCV writes no {fmt}")
    assert header_size(buf.tobytes()) == (37, 53)


def test_files_above_the_size_limit_are_refused_unread(tmp_path):
    path = write(tmp_path / "a.png", photo(1))
    size = path.stat().st_size
    with pytest.raises(ImageReadError, match=f"file of {size} bytes exceeds max_file_bytes \\({size - 1}\\)"):
        decode_thumbnail(str(path), 16, max_bytes=size - 1)
    decode_thumbnail(str(path), 16, max_bytes=size)


def test_a_fifo_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match="not a regular file"):
        decode_thumbnail(str(fifo), 16)


def test_a_file_changed_since_indexing_is_refused(tmp_path):
    from fast_diff_py._files import FileIdentity

    path = write(tmp_path / "a.png", photo(1))
    indexed = FileIdentity.of(path.stat())
    decode_thumbnail(str(path), 16, expected=indexed)
    write(path, photo(2))
    os.utime(path, ns=(indexed.mtime_ns, indexed.mtime_ns + 1))
    with pytest.raises(ImageReadError, match="file changed since it was indexed .*mtime_ns"):
        decode_thumbnail(str(path), 16, expected=indexed)


def test_hashes_follow_rotation_and_shift():
    img = photo(4, 16, 16)
    h = hash_thumbnail(img, shift_amount=0)
    assert len(set(h)) == 4 and all(isinstance(x, str) for x in h)
    rotated = hash_thumbnail(np.rot90(img, 1, axes=(0, 1)).copy(), shift_amount=0)
    assert rotated[0] == h[1] and set(rotated) == set(h)
    assert hash_thumbnail(img, rotate=False, shift_amount=0) == (h[0], None, None, None)
    low_bits = img ^ np.uint8(0b0111)  # differs only in the three lowest bits
    assert hash_thumbnail(low_bits, shift_amount=0)[0] != h[0]
    assert hash_thumbnail(low_bits, shift_amount=3) == hash_thumbnail(img, shift_amount=3)
    high_bits = img ^ np.uint8(0b1000_0000)
    assert hash_thumbnail(high_bits, shift_amount=-1) == hash_thumbnail(img, shift_amount=-1)
    assert hash_thumbnail(high_bits, shift_amount=1) != hash_thumbnail(img, shift_amount=1)
    with pytest.raises(ValueError, match="got 8"):
        hash_thumbnail(img, shift_amount=8)


@pytest.mark.parametrize("shift", [0, 2, -3])
@pytest.mark.parametrize("rotate", [True, False])
@pytest.mark.parametrize("shape", [(12, 12, 3), (7, 12, 3), (9, 9, 1), (6, 10)])
def test_stack_hashes_equal_the_per_image_definition(shift, rotate, shape):
    # hash_stack turns thumbnails with OpenCV; each row must be default_hash of the shifted,
    # rotated thumbnail (np.rot90), as fast-diff-py defines it, whatever the shape
    rng = np.random.default_rng(len(shape) + shape[0])
    stack = rng.integers(0, 256, (5, *shape), dtype=np.uint8)
    for thumb, got in zip(stack, hash_stack(stack, shift_amount=shift, rotate=rotate)):
        if shift >= 0:
            shifted = thumb >> shift
        else:
            shifted = thumb << -shift
        want = [default_hash(r) for r in rotations(shifted, rotate)]
        assert list(got) == want + [None] * (4 - len(want))


def test_canonical_digest_is_shared_by_rotations_only():
    img = photo(5, 20, 20)
    turned = [np.rot90(img, k, axes=(0, 1)) for k in range(4)]
    others = [img[::-1].copy(), img ^ np.uint8(1), photo(6, 20, 20)]
    digests = canonical_digests(np.stack(turned + others))
    assert len(set(digests[:4])) == 1
    assert len(set(digests)) == 1 + len(others)  # a mirror image and small changes differ
    # the transpose is the mirror image turned by 90 degrees
    assert canonical_digests(img.transpose(1, 0, 2)[None])[0] == digests[4]
    unrotated = canonical_digests(np.stack(turned), rotate=False)
    assert len(set(unrotated)) == 4


def test_canonical_digest_is_the_least_hash_of_the_rotations():
    stack = np.stack([photo(s, 10, 10) for s in range(4)])
    for rotate in (True, False):
        hashes = hash_stack(stack, rotate=rotate)
        assert canonical_digests(stack, rotate) == [min(h for h in row if h) for row in hashes]


@pytest.mark.parametrize(
    "hashing",
    [
        dict(compute_hash=False),
        dict(compute_hash=True, shift_amount=0),
        dict(compute_hash=True, shift_amount=2),
        dict(compute_hash=True, hash_fn="thumb_test_hashes:adler32_hex"),
    ],
)
def test_make_digests_does_not_depend_on_hashing(tmp_path, hashing, monkeypatch):
    # with unshifted default hashes the digest may be taken from them; otherwise it is
    # computed from the stack: the column must come out the same either way
    monkeypatch.setitem(
        sys.modules,
        "thumb_test_hashes",
        types.SimpleNamespace(adler32_hex=lambda m: format(zlib.adler32(m.tobytes()), "08x")),
    )
    root = tmp_path / "in"
    img = photo(3, 40, 40)
    write(root / "a.png", img)
    write(root / "b.png", np.rot90(img, 1).copy())
    (root / "b_broken.png").write_bytes(b"not a png")  # no thumbnail: no digest
    write(root / "c.png", photo(4, 40, 40))
    write_index(
        tmp_path / "index",
        part_a=[str(root)],
        part_b=[],
        recursive=True,
        ignore_names=[],
        ignore_paths=[],
        allowed_file_extensions=[".png"],
        shard_size=100,
    )
    make_thumbnails(
        shard_inputs(tmp_path / "index")[0],
        tmp_path / "t.npy",
        tmp_path / "t.parquet",
        size=16,
        method="area",
        **hashing,
    )
    meta = pq.read_table(tmp_path / "t.parquet")
    decoded_rows = [i for i, r in enumerate(meta.to_pylist()) if r["thumb_row"] >= 0]
    free = hashing.get("compute_hash") and not hashing.get("shift_amount") and "hash_fn" not in hashing
    for from_hashes in (False, True) if free else (False,):
        make_digests(tmp_path / "t.npy", tmp_path / "t.parquet", tmp_path / "d.parquet", from_hashes=from_hashes)
        table = pq.read_table(tmp_path / "d.parquet")
        assert table.column("row").to_pylist() == decoded_rows
        digests = table.column("canonical").to_pylist()
        assert digests == canonical_digests(np.load(tmp_path / "t.npy"))
        assert digests[0] == digests[1] != digests[2]
    if not hashing.get("compute_hash"):
        with pytest.raises(ValueError, match="from_hashes needs"):
            make_digests(tmp_path / "t.npy", tmp_path / "t.parquet", tmp_path / "d.parquet", from_hashes=True)


def test_custom_hash_function(tmp_path):
    calls = []

    def fn(mat):
        calls.append(mat.shape)
        return f"{int(mat.sum())}"

    img = photo(4, 8, 8)
    assert hash_thumbnail(img, shift_amount=0, hash_fn=fn)[0] == str(int(img.sum()))
    assert len(calls) == 4
    with pytest.raises(TypeError, match="must return str"):
        hash_thumbnail(img, hash_fn=lambda m: 5)


@settings(max_examples=300, deadline=None)
@given(sizes=st.lists(st.integers(0, 5000), max_size=40), files=st.integers(1, 50), budget=st.integers(0, 20000))
def test_read_ahead_asks_for_each_file_once_and_within_the_limits(sizes, files, budget):
    from fast_diff_py._files import read_ahead

    plan = [list(r) for r in read_ahead(sizes, files, budget)]
    assert len(plan) == len(sizes)
    assert [j for js in plan for j in js] == list(range(len(sizes)))  # each once, in order
    asked = 0
    for i, js in enumerate(plan):
        asked += len(js)
        assert asked > i  # the current file before its turn
        assert asked - i <= files  # never more than ``files`` ahead
        assert asked - i == 1 or sum(sizes[i:asked]) <= budget


def test_make_thumbnails_asks_for_the_files_it_reads_in_order(tmp_path, monkeypatch):
    import fast_diff_py._thumbnails as thumbnails

    root = tmp_path / "in"
    for i in range(12):
        write(root / f"{i:02d}.png", photo(i, 8 + 2 * i, 20))
    (root / "07.txt").write_text("x")  # not allowed: never read, never asked for
    write_index(
        tmp_path / "index",
        part_a=[str(root)],
        part_b=[],
        recursive=True,
        ignore_names=[],
        ignore_paths=[],
        allowed_file_extensions=[".png"],
        shard_size=100,
    )
    events = []
    monkeypatch.setattr(thumbnails, "READ_AHEAD_FILES", 3)
    monkeypatch.setattr(thumbnails, "advise", lambda path: events.append(("advise", path)))
    decode = thumbnails.decode_thumbnail_and_crops
    monkeypatch.setattr(
        thumbnails,
        "decode_thumbnail_and_crops",
        lambda path, *a, **k: events.append(("decode", path)) or decode(path, *a, **k),
    )
    make_thumbnails(
        shard_inputs(tmp_path / "index")[0],
        tmp_path / "t.npy",
        tmp_path / "t.parquet",
        size=8,
        method="area",
        threads=1,
    )
    index = pq.read_table(shard_inputs(tmp_path / "index")[0]).to_pylist()
    readable = [r["path"] for r in index if r["allowed"]]
    assert len(readable) == 12 and str(root / "07.txt") not in readable
    assert [p for e, p in events if e == "decode"] == [p for e, p in events if e == "advise"] == readable
    assert events[:4] == [("advise", p) for p in readable[:3]] + [("decode", readable[0])]


@given(st.integers(0, 5000), st.integers(1, 16))
@example(0, 2)
@example(9, 2)
def test_the_runs_of_a_shard_cover_it_in_order_and_end_short(n, threads):
    runs = _runs(n, threads)
    assert [i for run in runs for i in range(n)[run]] == list(range(n))
    sizes = [run.stop - run.start for run in runs]
    if threads == 1:
        assert sizes == [n]  # one thread reads ahead over the whole shard
        return
    assert all(s >= _MIN_RUN for s in sizes[:-1])
    # each run at most a share of what is left for the threads: the last runs are short
    for i, s in enumerate(sizes):
        assert s <= max(_MIN_RUN, -(-sum(sizes[i:]) // (2 * threads)))
    assert len(sizes) <= 1 or sizes[-1] <= _MIN_RUN


def test_asking_for_a_file_ahead_never_fails_or_blocks(tmp_path):
    from fast_diff_py._files import advise

    advise(str(tmp_path / "missing.jpg"))
    advise(None)
    os.mkfifo(tmp_path / "fifo")  # opening a FIFO for reading would wait for a writer
    advise(str(tmp_path / "fifo"))
    (tmp_path / "d").mkdir()
    advise(str(tmp_path / "d"))


def test_make_thumbnails_records_every_file(tmp_path):
    root = tmp_path / "in"
    write(root / "a.jpg", photo(1))
    (root / "b.jpg").write_bytes(b"")
    (root / "c.txt").write_text("x")
    write(root / "d.png", photo(2))
    write_index(
        tmp_path / "index",
        part_a=[str(root)],
        part_b=[],
        recursive=True,
        ignore_names=[],
        ignore_paths=[],
        allowed_file_extensions=[".jpg", ".png"],
        shard_size=100,
    )
    make_thumbnails(
        shard_inputs(tmp_path / "index")[0],
        tmp_path / "t.npy",
        tmp_path / "t.parquet",
        size=16,
        method="compat",
        compute_hash=True,
        shift_amount=0,
        threads=2,
    )
    meta = pq.read_table(tmp_path / "t.parquet").to_pylist()
    stack = np.load(tmp_path / "t.npy")
    assert [m["success"] for m in meta] == [
        FileStatus.SUCCESS,
        FileStatus.ERROR,
        FileStatus.NOT_COMPUTED,
        FileStatus.SUCCESS,
    ]
    assert meta[1]["error"] == "empty file (0 bytes)" and meta[1]["thumb_row"] == -1
    assert meta[1]["hash_0"] is None and meta[2]["hash_0"] is None
    assert stack.shape == (2, 16, 16, 3)  # no made-up thumbnail for the failures
    assert np.array_equal(stack[meta[3]["thumb_row"]], reference_thumbnail(root / "d.png", 16))
    assert meta[0]["sum_0"] == int(stack[meta[0]["thumb_row"], :, :, 0].sum())
