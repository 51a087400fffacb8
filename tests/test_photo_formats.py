"""Photos as phones and editors make them: HEIC/HEIF (through pillow-heif), AVIF, BMP, WebP,
PNG, TIFF and JPEG are decoded, every orientation tag is applied the same way whatever the
decoder, and copies in those formats are found like any re-encode."""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np
import pytest
from conftest import db_rows, photo, run_workflow, write

import fast_diff_py as fdp
from fast_diff_py._decode import decode_thumbnail
from fast_diff_py._kernel import naive_dif

pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is a dependency: pip install -e .")

LOSSLESS = [".png", ".bmp", ".tiff", ".webp"]
OPENCV_LOSSY = [".jpg", ".avif"]


def encode(img: np.ndarray, ext: str, orientation: int = 1) -> bytes:
    """``img`` (BGR) in format ``ext``, with an EXIF orientation tag where not 1."""
    if ext in (".heic", ".heif"):
        from PIL import Image

        pillow_heif.register_heif_opener()
        exif = Image.Exif()
        exif[0x0112] = orientation
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img[:, :, ::-1])).save(out, format="HEIF", quality=90, exif=exif.tobytes())
        return out.getvalue()
    if ext in (".tif", ".tiff") and orientation != 1:  # the Orientation tag of the TIFF's own IFD0
        from PIL import Image

        tiff = Image.fromarray(np.ascontiguousarray(img[:, :, ::-1]))
        tags = tiff.getexif()
        tags[0x0112] = orientation
        out = io.BytesIO()
        tiff.save(out, format="TIFF", exif=tags)
        return out.getvalue()
    params = {
        ".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95],
        ".webp": [cv2.IMWRITE_WEBP_QUALITY, 101],  # above 100: lossless
        ".avif": [cv2.IMWRITE_AVIF_QUALITY, 90],
    }.get(ext, [])
    if orientation == 1:
        ok, buf = cv2.imencode(ext, img, params)
    else:
        ok, buf = cv2.imencodeWithMetadata(ext, img, [cv2.IMAGE_METADATA_EXIF], [exif_orientation(orientation)], params)
    assert ok, ext
    return buf.tobytes()


def exif_orientation(orientation: int) -> np.ndarray:
    """A minimal EXIF block (little-endian TIFF, IFD0) holding one Orientation tag."""
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    return np.frombuffer(b"II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0), np.uint8)


# what a camera stores so that orientation tag t shows the upright image: the inverse of the
# turn or flip the tag asks a viewer to apply
STORED_FOR_TAG = {
    1: lambda x: x,
    2: lambda x: x[:, ::-1],
    3: lambda x: x[::-1, ::-1],
    4: lambda x: x[::-1],
    5: lambda x: x.transpose(1, 0, 2),
    6: lambda x: np.rot90(x, 1),
    7: lambda x: np.rot90(x, 2).transpose(1, 0, 2),
    8: lambda x: np.rot90(x, -1),
}


def upright() -> np.ndarray:
    return photo(11, h=96, w=160)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".avif", ".heic", ".tiff"])
def test_every_orientation_tag_gives_the_same_thumbnail(tmp_path, ext):
    thumbs = {}
    for tag, stored in STORED_FOR_TAG.items():
        path = tmp_path / f"tag{tag}{ext}"
        path.write_bytes(encode(np.ascontiguousarray(stored(upright())), ext, tag))
        thumbs[tag], px, py = decode_thumbnail(str(path), 32)
        assert (px, py) == (96, 160), (ext, tag, px, py)
    for tag, thumb in thumbs.items():
        if ext in (".png", ".webp", ".tiff"):  # lossless: the same pixels
            assert np.array_equal(thumb, thumbs[1]), (ext, tag)
        else:  # each file is encoded on its own: only the codec's noise differs
            assert naive_dif(thumb, thumbs[1], rotate=False) < 3, (ext, tag, naive_dif(thumb, thumbs[1], False))


@pytest.mark.parametrize("ext", [*LOSSLESS, *OPENCV_LOSSY, ".heic", ".heif"])
def test_each_format_decodes_to_the_photo(tmp_path, ext):
    path = tmp_path / f"photo{ext}"
    path.write_bytes(encode(upright(), ext))
    thumb, px, py = decode_thumbnail(str(path), 32)
    reference = cv2.resize(upright(), (32, 32), interpolation=cv2.INTER_AREA)
    assert (px, py) == (96, 160)
    assert naive_dif(thumb, reference, rotate=False) < 15, ext


def test_default_extensions_cover_phone_and_editor_formats():
    defaults = fdp.validate_config({"part_a": ["."]})["allowed_file_extensions"]
    for ext in (".heic", ".heif", ".hif", ".avif", ".bmp", ".webp", ".png", ".jpg", ".tif", ".tiff"):
        assert ext in defaults, ext


def test_a_broken_heic_is_an_error_row_naming_the_problem(tmp_path):
    data = encode(upright(), ".heic")
    (tmp_path / "cut.heic").write_bytes(data[: len(data) // 2])
    with pytest.raises(fdp.ImageReadError, match="HEIF"):
        decode_thumbnail(str(tmp_path / "cut.heic"), 32)


def test_copies_in_phone_formats_are_found_like_re_encodes(tmp_path):
    """A JPEG with its HEIC, AVIF, BMP and WebP copies, among distinct photos: every copy
    pairs with the original at difPy's `similar`, and nothing else does."""
    photos = tmp_path / "photos"
    original = photo(3, h=240, w=320)
    write(photos / "camera" / "IMG_0001.jpg", original)
    copies = ["IMG_0001.heic", "IMG_0001.avif", "IMG_0001.bmp", "IMG_0001.webp"]
    for name in copies:
        (photos / "phone" / name).parent.mkdir(parents=True, exist_ok=True)
        (photos / "phone" / name).write_bytes(encode(original, name[name.rindex(".") :]))
    for seed in range(20, 26):
        write(photos / "camera" / f"other_{seed}.jpg", photo(seed, h=240, w=320))
    similar = 5 * fdp.DIF_PER_MSE  # difPy's "similar": mse 5
    run_workflow(tmp_path / "run", {"part_a": [str(photos)], "second_loop": {"diff_threshold": similar}})
    rows = db_rows(tmp_path / "run" / "results" / "fast_diff.db")
    path_of = {key: path for key, path, *_ in rows["directory"]}
    assert all(r[4] == 1 for r in rows["directory"]), [r for r in rows["directory"] if r[4] != 1]
    pairs = {
        frozenset((path_of[a].rsplit("/", 1)[1], path_of[b].rsplit("/", 1)[1])) for _, a, b, *_ in rows["dif_table"]
    }
    group = {"IMG_0001.jpg", *copies}
    assert pairs == {frozenset((x, y)) for x in group for y in group if x < y}


@pytest.mark.parametrize("ext", [".heic", ".avif"])
def test_max_image_pixels_is_checked_before_decoding(tmp_path, ext):
    from fast_diff_py._decode import header_size

    data = encode(upright(), ext)
    assert header_size(data) == (96, 160)
    (tmp_path / f"big{ext}").write_bytes(data)
    with pytest.raises(fdp.ImageReadError, match="exceeds max_image_pixels"):
        decode_thumbnail(str(tmp_path / f"big{ext}"), 32, max_pixels=96 * 160 - 1)
