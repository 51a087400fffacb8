"""The torch kernel equals the numpy kernel (and so the naive formula) bit for bit.

Runs on the CPU here; the same test runs on CUDA where a GPU is visible.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

torch = pytest.importorskip("torch")

from fast_diff_py import block_dif, naive_dif  # noqa: E402
from fast_diff_py._kernel_torch import block_dif_torch  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
pixel = st.one_of(st.sampled_from([0, 1, 127, 128, 254, 255]), st.integers(0, 255))


@st.composite
def stacks(draw):
    s = draw(st.integers(1, 8))
    # sizes around the int8 kernel's limits: more than 16 rows, multiples of 8
    n = draw(st.sampled_from([1, 3, 17, 24]))
    m = draw(st.sampled_from([1, 5, 8, 16]))
    x = draw(arrays(np.uint8, (n, s, s, 3), elements=pixel))
    y = draw(arrays(np.uint8, (m, s, s, 3), elements=pixel))
    if draw(st.booleans()):
        y[0] = np.rot90(x[0], draw(st.integers(0, 3)), axes=(0, 1))
    return x, y


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("int8", [False, True])
@settings(max_examples=60, deadline=None)
@given(xy=stacks(), rotate=st.booleans())
def test_torch_equals_numpy(device, int8, xy, rotate):
    x, y = xy
    got = block_dif_torch(x, y, rotate, device=device, int8=int8)
    assert got.dtype == np.float64
    assert np.array_equal(got, block_dif(x, y, rotate))


@pytest.mark.parametrize("device", DEVICES)
def test_extreme_values_at_full_size(device):
    rng = np.random.default_rng(3)
    x = rng.choice(np.array([0, 255], np.uint8), size=(24, 64, 64, 3))
    y = np.concatenate([255 - x[:8], x[8:16]])
    x[0], y[0] = 0, 255
    for int8 in (False, True):
        got = block_dif_torch(x, y, True, device=device, int8=int8)
        assert np.array_equal(got, block_dif(x, y, True))
    assert got[0, 0] == 3 * 255**2 and got[8, 8] == 0
    assert got[1, 1] == naive_dif(x[1], y[1])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="uint8"):
        block_dif_torch(np.zeros((1, 2, 2, 3), np.float32), np.zeros((1, 2, 2, 3), np.uint8), device="cpu")
    with pytest.raises(ValueError, match="differ in shape"):
        block_dif_torch(np.zeros((1, 2, 2, 3), np.uint8), np.zeros((1, 3, 3, 3), np.uint8), device="cpu")


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=60, deadline=None)
@given(xy=stacks(), rotate=st.booleans(), threshold=st.floats(0, 3 * 255.0**2), int8=st.booleans(), upper=st.booleans())
def test_matches_equal_thresholded_numpy(device, xy, rotate, threshold, int8, upper):
    from fast_diff_py._kernel_torch import block_matches_torch

    x, y = xy
    if upper:
        y = x
    ref = block_dif(x, y, rotate)
    mask = ref <= threshold
    if upper:
        mask = np.triu(mask, 1)
    rows, cols, dif = block_matches_torch(x, y, threshold, rotate, upper=upper, device=device, int8=int8)
    expected = sorted(zip(*np.nonzero(mask)))
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(int(i), int(j)) for i, j in expected]
    assert np.array_equal(dif, ref[rows, cols])
