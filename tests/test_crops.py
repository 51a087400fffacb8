"""``crop_tolerance``: each image's centred crops, averaged exactly over their area, and dif
as the least over the thumbnails and each image's crops against the other's thumbnail, found
exactly by the pruned workflow (the staged test in test_pipeline.py draws it too)."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import db_rows, photo, run_workflow, write
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fast_diff_py as fdp
from fast_diff_py import crop_thumbnails, decode_thumbnail, decode_thumbnail_and_crops, naive_crop_dif, naive_dif
from fast_diff_py._crops import CROP_VARIANTS, crop_fractions, cubic_crop_thumbnails
from fast_diff_py._plan import assign_blocks


def area_mean(img: np.ndarray, fraction: float, size: int) -> np.ndarray:
    """The definition, written independently with exact fractions: pixel (i, j) of the crop
    is the mean of the image over the rectangle ``[top + i*hstep, top + (i+1)*hstep) x
    [left + j*wstep, ...)`` of the centred crop, each pixel weighted by its covered area."""
    h, w = img.shape[:2]
    f = Fraction(fraction)
    top, left = Fraction(h) * f / 2, Fraction(w) * f / 2
    hstep, wstep = (h - 2 * top) / size, (w - 2 * left) / size

    def weights(n, start, step):
        out = np.zeros((size, n))
        for i in range(size):
            a, b = start + i * step, start + (i + 1) * step
            for p in range(n):
                share = min(b, p + 1) - max(a, p)
                if share > 0:
                    out[i, p] = float(share / step)
        return out

    rows, cols = weights(h, top, hstep), weights(w, left, wstep)
    return np.einsum("ih,hwc,jw->ijc", rows, img.astype(np.float64), cols)


def test_fractions_are_thirds_of_the_tolerance():
    assert crop_fractions(0) == ()
    assert crop_fractions(0.03) == pytest.approx((0.01, 0.02, 0.03))
    assert len(crop_fractions(0.25)) == CROP_VARIANTS
    for bad in (-0.01, 0.3, float("nan")):
        with pytest.raises(ValueError, match="crop_tolerance"):
            crop_fractions(bad)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 30).flatmap(
        lambda h: st.integers(2, 30).flatmap(lambda w: arrays(np.uint8, (h, w, 3), elements=st.integers(0, 255)))
    ),
    st.integers(1, 8),
    st.floats(0, 0.25),
)
def test_crops_are_exact_area_means(img, size, fraction):
    got = crop_thumbnails(img, size, (fraction,))[0]
    exact = area_mean(img, fraction, size)
    # float32 products round the exact mean to the nearest integer, except within a hair of .5
    tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-3
    assert np.array_equal(got[~tie], np.rint(exact)[~tie].astype(np.uint8))
    assert (np.abs(got.astype(int) - exact) <= 0.5 + 1e-3).all()


def test_compat_crop_of_nothing_is_the_compat_thumbnail():
    img = photo(6, 96, 128)
    plain = cv2.resize(img, (16, 16), interpolation=cv2.INTER_CUBIC)
    assert np.abs(cubic_crop_thumbnails(img, 16, (0.0,))[0].astype(int) - plain).max() <= 1


def test_crops_turn_with_the_image():
    img = photo(3, 90, 120)
    fractions = crop_fractions(0.09)
    crops = crop_thumbnails(img, 16, fractions)
    for k in (1, 2, 3):
        turned = crop_thumbnails(np.ascontiguousarray(np.rot90(img, k)), 16, fractions)
        assert np.abs(turned.astype(int) - np.rot90(crops, k, axes=(1, 2))).max() <= 1


def test_a_trimmed_photo_matches_its_crop(tmp_path):
    original = photo(5, 480, 640)
    trimmed = original[5:-5, 6:-6]  # about 1 % off each end: a 2 % crop
    a, b = write(tmp_path / "a.png", original), write(tmp_path / "b.png", trimmed)
    for method in ("quality", "area", "compat"):
        ta, ca, *_ = decode_thumbnail_and_crops(str(a), 50, method, crop_fractions(0.03))
        tb, cb, *_ = decode_thumbnail_and_crops(str(b), 50, method, crop_fractions(0.03))
        assert ca.shape == (CROP_VARIANTS, 50, 50, 3)
        # the thumbnail is the one decode_thumbnail makes, crops or not
        assert np.array_equal(ta, decode_thumbnail(str(a), 50, method)[0])
        plain = naive_dif(ta, tb)
        assert naive_dif(ca[1], tb) < plain / 10  # the crop of two thirds of 3 % is the trim
        assert naive_crop_dif(ta, tb, ca, cb) == min(
            plain, *(naive_dif(c, tb) for c in ca), *(naive_dif(ta, c) for c in cb)
        )


def test_block_ranges_cover_the_crops():
    """A block's range of sums spans its images' crops, so that the plan keeps a block pair
    whose thumbnails are far apart but whose crop and thumbnail are not."""
    features = np.array([[10.0, 10, 10, 30], [50, 50, 50, 150]])
    low = np.array([[10.0, 10, 10, 30], [20, 20, 20, 60]])
    high = np.array([[12.0, 12, 12, 36], [50, 50, 50, 150]])
    keys = np.arange(2)
    _, _, lo, hi = assign_blocks(features[:, 3], np.zeros(2, np.int8), keys, features, 1)
    _, _, lo2, hi2 = assign_blocks(features[:, 3], np.zeros(2, np.int8), keys, features, 1, (low, high))
    assert lo[1, 0] == 50 and lo2[1, 0] == 20 and hi2[0, 0] == 12


def trimmed_folder(root):
    photos = root / "photos"
    for seed in range(4):
        original = photo(40 + seed, 240, 320)
        write(photos / f"IMG_{seed}.jpg", original, quality=92)
        h, w = original.shape[:2]
        if seed < 2:  # trimmed by 2 % of each side (1 % at each end), as an editor's crop
            write(photos / f"IMG_{seed}_trim.jpg", original[h // 100 : h - h // 100, w // 100 : w - w // 100])
    return photos


def pairs_of(db) -> set[frozenset[str]]:
    rows = db_rows(db)
    name = {key: path.rsplit("/", 1)[1] for key, path, *_ in rows["directory"]}
    return {frozenset((name[a], name[b])) for _, a, b, *_ in rows["dif_table"]}


def test_workflow_finds_trimmed_copies_only_with_crop_tolerance(tmp_path):
    photos = trimmed_folder(tmp_path)
    found = {}
    for tolerance in (0, 0.03):
        work = tmp_path / f"run_{tolerance}"
        # difPy's similar (mse 5) on difPy's 50 x 50 thumbnails
        config = {
            "part_a": [str(photos)],
            "crop_tolerance": tolerance,
            "compression_target": 50,
            "second_loop": {"diff_threshold": 15},
        }
        run_workflow(work, config)
        found[tolerance] = pairs_of(work / "results" / "fast_diff.db")
        crops = sorted((work / "results" / "work" / "thumbnails").glob("*.crops.*"))
        assert len(crops) == (2 if tolerance else 0)
        if tolerance:
            sums = pq.read_table([c for c in crops if c.suffix == ".parquet"][0])
            assert sums.num_rows == 6
    trims = {frozenset((f"IMG_{s}.jpg", f"IMG_{s}_trim.jpg")) for s in range(2)}
    assert found[0.03] == trims
    assert not found[0] & trims


def test_crop_tolerance_is_refused_with_a_user_difference_and_out_of_range():
    with pytest.raises(fdp.ConfigError, match="crop_tolerance"):
        fdp.validate_config(
            {"part_a": ["."], "crop_tolerance": 0.03, "cpu_diff": "x:y"}, check_paths=False, check_plugins=False
        )
    with pytest.raises(fdp.ConfigError, match="crop_tolerance"):
        fdp.validate_config({"part_a": ["."], "crop_tolerance": 0.5}, check_paths=False, check_plugins=False)


def test_command_lines_set_crop_tolerance(tmp_path, capsys):
    from fast_diff_py.cli import difpy, fastdiffpy

    args = difpy.build_parser().parse_args(["-D", str(tmp_path), "-ct", "0.03"])
    assert difpy.run_config(args, tmp_path / "progress").to_workflow()["crop_tolerance"] == 0.03
    plain = difpy.build_parser().parse_args(["-D", str(tmp_path)])
    assert difpy.run_config(plain, tmp_path / "progress").to_workflow()["crop_tolerance"] == 0
    assert difpy.progress_dir(args) != difpy.progress_dir(plain)
    with pytest.raises(SystemExit):
        difpy.build_parser().parse_args(["-D", str(tmp_path), "-ct", "0.5"])
    assert "between 0 and 0.25" in capsys.readouterr().err
    args = fastdiffpy.build_parser().parse_args(["-a", str(tmp_path), "--crop-tolerance", "0.02"])
    assert fastdiffpy.config_from_args(args).to_workflow()["crop_tolerance"] == 0.02
    assert fdp.Config(part_a=[str(tmp_path)]).to_workflow()["crop_tolerance"] == 0
