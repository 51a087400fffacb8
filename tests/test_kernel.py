"""The kernel and the pruning bounds give exactly the naive values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fast_diff_py import block_dif, naive_dif
from fast_diff_py._kernel import channel_bound_mask, channel_sums, pairwise_dif

pixel = st.one_of(st.sampled_from([0, 1, 127, 128, 254, 255]), st.integers(0, 255))


@st.composite
def stacks(draw, max_n=5):
    s = draw(st.integers(1, 9))
    n, m = draw(st.integers(1, max_n)), draw(st.integers(1, max_n))
    x = draw(arrays(np.uint8, (n, s, s, 3), elements=pixel))
    y = draw(arrays(np.uint8, (m, s, s, 3), elements=pixel))
    # plant rotated and near copies so that small values occur
    if draw(st.booleans()):
        y[0] = np.rot90(x[0], draw(st.integers(0, 3)), axes=(0, 1))
    return x, y


def naive_matrix(x, y, rotate):
    return np.array([[naive_dif(a, b, rotate) for b in y] for a in x])


@settings(max_examples=150, deadline=None)
@given(stacks(), st.booleans())
def test_block_dif_equals_naive_bit_for_bit(xy, rotate):
    x, y = xy
    got = block_dif(x, y, rotate)
    assert got.dtype == np.float64
    assert np.array_equal(got, naive_matrix(x, y, rotate))


@pytest.mark.parametrize("rotate", [True, False])
def test_extreme_values_at_full_size(rotate):
    # 0 against 255 everywhere at S = 64: the largest sums the kernel ever meets
    rng = np.random.default_rng(0)
    x = rng.choice(np.array([0, 255], np.uint8), size=(3, 64, 64, 3))
    y = np.concatenate([255 - x, x[::-1]])
    x[0] = 0
    y[0] = 255
    assert np.array_equal(block_dif(x, y, rotate), naive_matrix(x, y, rotate))
    assert block_dif(x[:1], y[:1], rotate)[0, 0] == 3 * 255**2


def test_naive_dif_definition():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0] = [3, 4, 0]  # squared error 25 over 4 pixels
    assert naive_dif(a, b) == 25 / 4
    # uint8 must not wrap: 0 - 255 squared is 65025
    b[0, 0] = [255, 0, 0]
    assert naive_dif(a, b) == 65025 / 4
    c = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert naive_dif(np.rot90(c, 1, axes=(0, 1)), c, rotate=True) == 0
    assert naive_dif(np.rot90(c, 1, axes=(0, 1)), c, rotate=False) > 0


def test_naive_dif_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(2, 2, 3\) and \(3, 3, 3\)"):
        naive_dif(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        block_dif(np.zeros((1, 2, 2, 3), np.float32), np.zeros((1, 2, 2, 3), np.uint8))


@settings(max_examples=150, deadline=None)
@given(stacks(), st.booleans(), st.floats(0, 3 * 255**2))
def test_channel_bound_never_drops_a_match(xy, rotate, threshold):
    x, y = xy
    size = x.shape[1]
    keep = channel_bound_mask(channel_sums(x), channel_sums(y), size, threshold)
    truth = naive_matrix(x, y, rotate) <= threshold
    assert not (truth & ~keep).any()


def test_pairwise_dif_uses_the_user_function_and_checks_it():
    x = np.zeros((2, 2, 2, 3), np.uint8)
    y = np.ones((3, 2, 2, 3), np.uint8)
    got = pairwise_dif(x, y, True, lambda a, b, r: float(a.sum() + b.sum() + r))
    assert got.shape == (2, 3) and (got == 13).all()
    with pytest.raises(ValueError, match="returned -1.0"):
        pairwise_dif(x, y, True, lambda a, b, r: -1.0)


@settings(max_examples=150, deadline=None)
@given(stacks(), st.booleans(), st.floats(0, 3 * 255**2), st.integers(1, 8))
def test_grid_bound_never_drops_a_match(xy, rotate, threshold, wanted):
    from fast_diff_py._kernel import grid_bound_mask, grid_cells, grid_sums

    x, y = xy
    size = x.shape[1]
    cells = grid_cells(size, wanted)
    assert size % cells == 0
    keep = grid_bound_mask(grid_sums(x, cells), grid_sums(y, cells), size, threshold, rotate)
    truth = naive_matrix(x, y, rotate) <= threshold
    assert not (truth & ~keep).any()


def test_grid_bound_is_tight_for_copies_and_prunes_strangers():
    from fast_diff_py._kernel import grid_bound_mask, grid_sums

    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    y = np.stack([np.rot90(x[0], 3, axes=(0, 1)), x[1] // 2, 255 - x[2]])
    keep = grid_bound_mask(grid_sums(x, 8), grid_sums(y, 8), 64, 10.0, rotate=True)
    assert keep[0, 0] and not keep[1, 1] and not keep[2, 2]
    assert (
        not grid_bound_mask(grid_sums(x, 8), grid_sums(y, 8), 64, 10.0, rotate=False)[0, 0]
        or naive_dif(x[0], y[0], False) <= 10
    )


@settings(max_examples=100, deadline=None)
@given(stacks(), st.booleans(), st.data())
def test_pair_dif_equals_naive(xy, rotate, data):
    from fast_diff_py._kernel import pair_dif

    x, y = xy
    rows = np.array(data.draw(st.lists(st.integers(0, len(x) - 1), min_size=1, max_size=12)))
    cols = np.array(data.draw(st.lists(st.integers(0, len(y) - 1), min_size=len(rows), max_size=len(rows))))
    got = pair_dif(x, y, rows, cols, rotate)
    assert np.array_equal(got, np.array([naive_dif(x[i], y[j], rotate) for i, j in zip(rows, cols)]))


@settings(max_examples=150, deadline=None)
@given(stacks(), st.booleans(), st.floats(0, 3 * 255**2), st.integers(1, 8))
def test_grid_bound_rotations_keep_every_matching_rotation(xy, rotate, threshold, wanted):
    """A rotation whose exact difference is within the threshold is never ruled out, and
    pair_dif over the rotations left gives the naive value for every pair within it."""
    from fast_diff_py._kernel import grid_bound_rotations, grid_cells, grid_sums, pair_dif

    x, y = xy
    size = x.shape[1]
    cells = grid_cells(size, wanted)
    turns = grid_bound_rotations(grid_sums(x, cells), grid_sums(y, cells), size, threshold, rotate)
    for k in range(4) if rotate else range(1):
        for i, a in enumerate(x):
            for j, b in enumerate(y):
                turned = np.rot90(a, k, axes=(0, 1))
                if naive_dif(np.ascontiguousarray(turned), b, False) <= threshold:
                    assert turns[i, j] >> k & 1
    if not rotate:
        assert not (turns & 0b1110).any()
    r, c = np.nonzero(turns)
    got = pair_dif(x, y, r, c, rotate, turns[r, c])
    naive = np.array([naive_dif(x[i], y[j], rotate) for i, j in zip(r, c)])
    within = naive <= threshold
    assert np.array_equal(got[within], naive[within])
    assert (got[~within] > threshold).all()  # rotations left out never make a pair match


def test_grid_bound_rotations_name_the_turn_of_a_rotated_copy():
    from fast_diff_py._kernel import grid_bound_rotations, grid_sums, pair_dif

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    y = np.concatenate([np.rot90(x, k, axes=(1, 2)) for k in range(4)])
    turns = grid_bound_rotations(grid_sums(x, 4), grid_sums(y, 4), 8, 1.0)
    assert turns.tolist() == [[0b0001, 0b0010, 0b0100, 0b1000]]
    assert (pair_dif(x, y, np.zeros(4, int), np.arange(4), True, turns[0]) == 0).all()
    assert grid_bound_rotations(grid_sums(x, 4), grid_sums(y, 4), 8, 1.0, rotate=False).tolist() == [[1, 0, 0, 0]]


def test_pair_dif_refuses_a_pair_without_rotations():
    from fast_diff_py._kernel import pair_dif

    x = np.zeros((1, 2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="needs a transform"):
        pair_dif(x, x, np.array([0]), np.array([0]), True, np.array([0], np.uint8))
    with pytest.raises(ValueError, match="needs a transform"):
        pair_dif(x, x, np.array([0]), np.array([0]), False, np.array([0b10], np.uint8))


@settings(max_examples=200, deadline=None)
@given(
    sums=arrays(np.int64, (9, 3), elements=st.integers(0, 255 * 64 * 64)),
    split=st.integers(1, 8),
    shift=st.integers(-3 * 255 * 64 * 64, 3 * 255 * 64 * 64),
)
def test_range_bound_is_a_lower_bound(sums, split, shift):
    """No pair of two groups differs less (sum over channels of squared sum differences) than
    range_bound says; a uniform shift of every channel makes the total's term exact."""
    from fast_diff_py._kernel import range_bound, with_total

    a, b = sums[:split], sums[split:] + shift // 3
    fa, fb = with_total(a), with_total(b)
    bound = range_bound(fa.min(0), fa.max(0), fb.min(0), fb.max(0))
    least = min(float(((x - y).astype(np.float64) ** 2).sum()) for x in a for y in b)
    assert bound <= least
    one = with_total(a[:1])[0]
    moved = one + np.array([shift // 3] * 3 + [3 * (shift // 3)])
    assert range_bound(one, one, moved, moved) == 3 * float(shift // 3) ** 2


@settings(max_examples=60, deadline=None)
@given(data=stacks())
def test_channel_sums_are_the_per_image_sums(data):
    x, _ = data
    expected = np.array([[int(img[..., c].astype(np.int64).sum()) for c in range(3)] for img in x])
    got = channel_sums(x)
    assert got.dtype == np.int64 and np.array_equal(got, expected)


def test_channel_sums_do_not_overflow():
    x = np.full((2, 512, 512, 3), 255, np.uint8)  # per-column sums beyond uint16, totals beyond 2^25
    assert channel_sums(x).tolist() == [[255 * 512 * 512] * 3] * 2


@settings(max_examples=60, deadline=None)
@given(data=stacks(), wanted=st.integers(1, 9))
def test_grid_sums_are_the_cell_sums(data, wanted):
    from fast_diff_py._kernel import grid_cells, grid_sums

    x, _ = data
    cells = grid_cells(x.shape[1], wanted)
    step = x.shape[1] // cells
    expected = np.array(
        [
            [
                [
                    [
                        int(img[r * step : (r + 1) * step, q * step : (q + 1) * step, ch].astype(np.int64).sum())
                        for ch in range(3)
                    ]
                    for q in range(cells)
                ]
                for r in range(cells)
            ]
            for img in x
        ]
    )
    got = grid_sums(x, cells)
    assert got.dtype == np.int64 and np.array_equal(got, expected)
