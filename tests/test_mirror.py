"""``mirror``: dif is the minimum over the eight turns and reflections of a square, and the
kernel, both prunings, the torch kernel and the digest of threshold 0 keep to that exactly."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import db_rows, photo, run_workflow, write
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernel import stacks

import fast_diff_py as fdp
from fast_diff_py import block_dif, naive_dif
from fast_diff_py._hashing import canonical_digests
from fast_diff_py._kernel import (
    channel_bound_mask,
    channel_sums,
    grid_bound_rotations,
    grid_cells,
    grid_sums,
    pair_dif,
    transforms,
)


def dihedral(a: np.ndarray, rotate: bool, mirror: bool) -> list[np.ndarray]:
    """The images dif compares with, written independently of the package: the four turns
    of ``a`` and of its left-right mirror image (which also gives the up-down mirror, the
    transpose and the anti-transpose)."""
    turns = range(4) if rotate else range(1)
    out = [np.rot90(a, k) for k in turns]
    if mirror:
        out += [np.rot90(np.fliplr(a), k) for k in turns]
    return out


def reference(a: np.ndarray, b: np.ndarray, rotate: bool, mirror: bool) -> float:
    sse = min(int(((t.astype(np.int64) - b.astype(np.int64)) ** 2).sum()) for t in dihedral(a, rotate, mirror))
    return sse / (a.shape[0] * a.shape[1])


@st.composite
def mirrored_stacks(draw):
    x, y = draw(stacks())
    if draw(st.booleans()):  # plant a reflected copy
        y[0] = draw(st.sampled_from([np.fliplr, np.flipud, lambda a: a.transpose(1, 0, 2)]))(x[0])
    return x, y


def test_transforms():
    assert transforms(False, False) == (0,)
    assert transforms(True, False) == (0, 1, 2, 3)
    assert transforms(False, True) == (0, 4)
    assert transforms(True, True) == tuple(range(8))


@settings(max_examples=150, deadline=None)
@given(mirrored_stacks(), st.booleans(), st.booleans())
def test_naive_and_block_dif_equal_the_definition(xy, rotate, mirror):
    x, y = xy
    expected = np.array([[reference(a, b, rotate, mirror) for b in y] for a in x])
    naive = np.array([[naive_dif(a, b, rotate, mirror) for b in y] for a in x])
    assert np.array_equal(naive, expected)
    assert np.array_equal(block_dif(x, y, rotate, mirror), expected)


def test_every_reflection_of_a_photo_is_dif_zero_with_mirror():
    a = photo(1, 32, 32)
    for copy in (np.fliplr(a), np.flipud(a), a.transpose(1, 0, 2), np.rot90(a, 1).transpose(1, 0, 2)):
        copy = np.ascontiguousarray(copy)
        assert naive_dif(copy, a, True, True) == 0
        assert naive_dif(copy, a, True, False) > 0
    assert naive_dif(np.ascontiguousarray(np.fliplr(a)), a, False, True) == 0


@settings(max_examples=150, deadline=None)
@given(mirrored_stacks(), st.booleans(), st.floats(0, 3 * 255**2), st.integers(1, 8))
def test_both_prunings_keep_every_match_and_pair_dif_is_exact(xy, rotate, threshold, wanted):
    x, y = xy
    size = x.shape[1]
    truth = np.array([[reference(a, b, rotate, True) for b in y] for a in x]) <= threshold
    assert not (truth & ~channel_bound_mask(channel_sums(x), channel_sums(y), size, threshold)).any()
    cells = grid_cells(size, wanted)
    turns = grid_bound_rotations(grid_sums(x, cells), grid_sums(y, cells), size, threshold, rotate, mirror=True)
    assert not (truth & (turns == 0)).any()
    # every single transform within the threshold keeps its bit
    for bit, t in enumerate(transforms(True, True)):
        if t not in transforms(rotate, True):
            assert not (turns >> bit & 1).any()
            continue
        for i, a in enumerate(x):
            for j, b in enumerate(y):
                image = np.rot90(np.fliplr(a) if t >= 4 else a, t % 4)
                if reference(np.ascontiguousarray(image), b, False, False) <= threshold:
                    assert turns[i, j] >> t & 1
    r, c = np.nonzero(turns)
    got = pair_dif(x, y, r, c, rotate, turns[r, c], mirror=True)
    exact = np.array([reference(x[i], y[j], rotate, True) for i, j in zip(r, c)])
    within = exact <= threshold
    assert np.array_equal(got[within], exact[within])
    assert (got[~within] > threshold).all()


@settings(max_examples=60, deadline=None)
@given(mirrored_stacks(), st.booleans(), st.booleans())
def test_torch_kernel_with_mirror_equals_numpy(xy, rotate, int8):
    pytest.importorskip("torch")
    from fast_diff_py._kernel_torch import block_dif_torch, block_matches_torch

    x, y = xy
    expected = block_dif(x, y, rotate, mirror=True)
    assert np.array_equal(block_dif_torch(x, y, rotate, device="cpu", int8=int8, mirror=True), expected)
    rows, cols, dif = block_matches_torch(x, y, 15.0, rotate, device="cpu", int8=int8, mirror=True)
    r, c = np.nonzero(expected <= 15.0)
    assert sorted(zip(rows.tolist(), cols.tolist(), dif.tolist())) == sorted(
        zip(r.tolist(), c.tolist(), expected[r, c].tolist())
    )


def test_digest_is_shared_by_mirrored_copies_only_with_mirror():
    a = photo(4, 16, 16)
    stack = np.stack([a, np.fliplr(a), np.flipud(np.rot90(a)), photo(5, 16, 16)])
    plain, mirrored = canonical_digests(stack, True), canonical_digests(stack, True, mirror=True)
    # the two reflections are turns of each other, and neither is a turn of the photo
    assert plain[1] == plain[2] != plain[0]
    assert len(set(mirrored[:3])) == 1 and mirrored[3] != mirrored[0]
    assert canonical_digests(stack[:1], True, mirror=True)[0] == mirrored[0]


def test_mirror_is_refused_with_a_user_difference():
    with pytest.raises(fdp.ConfigError, match="mirror"):
        fdp.validate_config(
            {"part_a": ["."], "mirror": True, "cpu_diff": "x:y"}, check_paths=False, check_plugins=False
        )


@pytest.mark.parametrize("threshold", [0.0, 15.0])
def test_workflow_finds_mirrored_copies_only_with_mirror(tmp_path, threshold):
    photos = tmp_path / "photos"
    original = photo(8, 96, 128)
    write(photos / "IMG_1.png", original)
    write(photos / "selfie_flipped.png", np.ascontiguousarray(original[:, ::-1]))
    write(photos / "upside_down_flipped.png", np.ascontiguousarray(original[::-1]))
    for seed in (30, 31, 32):
        write(photos / f"other_{seed}.png", photo(seed, 96, 128))

    def names(mirror: bool) -> set[frozenset[str]]:
        work = tmp_path / f"run_{mirror}"
        config = {"part_a": [str(photos)], "mirror": mirror, "second_loop": {"diff_threshold": threshold}}
        run_workflow(work, config)
        rows = db_rows(work / "results" / "fast_diff.db")
        name = {key: path.rsplit("/", 1)[1] for key, path, *_ in rows["directory"]}
        return {frozenset((name[a], name[b])) for _, a, b, *_ in rows["dif_table"]}

    group = ["IMG_1.png", "selfie_flipped.png", "upside_down_flipped.png"]
    assert names(True) == {frozenset((a, b)) for a in group for b in group if a < b}
    # without mirror only the two reflections pair: each is the other turned by 180 degrees
    assert names(False) == {frozenset(("selfie_flipped.png", "upside_down_flipped.png"))}


def test_command_lines_set_mirror(tmp_path):
    from fast_diff_py.cli import difpy, fastdiffpy

    args = difpy.build_parser().parse_args(["-D", str(tmp_path), "-mi", "True"])
    assert difpy.run_config(args, tmp_path / "progress").to_workflow()["mirror"] is True
    plain = difpy.build_parser().parse_args(["-D", str(tmp_path)])
    assert difpy.run_config(plain, tmp_path / "progress").to_workflow()["mirror"] is False
    assert difpy.progress_dir(args) != difpy.progress_dir(plain)
    args = fastdiffpy.build_parser().parse_args(["-a", str(tmp_path), "--mirror"])
    assert fastdiffpy.config_from_args(args).to_workflow()["mirror"] is True
    assert fdp.Config(part_a=[str(tmp_path)]).to_workflow()["mirror"] is False
