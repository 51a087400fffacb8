"""The block kernel in torch, for CUDA jobs; same signature and bit-identical results as
:func:`fast_diff_py._kernel.block_dif`.

Pixels are centred to [-128, 127]. On CUDA the dot products are int8 matrix products with
int32 accumulation, exact while ``3 S^2 * 2^14 < 2^31`` (S up to 208); elsewhere, or when
the shapes do not suit the int8 kernel, float32 products over chunks of 1024 entries, each
exact below 2^24, summed in float64. TF32 and other reduced
precision paths are switched off for the duration of the call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from ._kernel import transforms

__all__ = ["block_dif_torch", "block_matches_torch", "default_device"]

_CHUNK = 1024


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def _full_precision() -> Iterator[None]:
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.get_float32_matmul_precision(),
    )
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
        torch.set_float32_matmul_precision(saved[2])


def _int8_fits(n: int, m: int, d: int) -> bool:
    # torch._int_mm wants more than 16 rows and inner and outer sizes that are multiples of 8;
    # int32 accumulation is exact while d * 128^2 < 2^31
    return n > 16 and m % 8 == 0 and d % 8 == 0 and d * 128 * 128 < 2**31


def _dots(xc: torch.Tensor, yc: torch.Tensor, use_int8: bool) -> torch.Tensor:
    """Exact ``xc @ yc.T`` (centred values) as float64."""
    if use_int8:
        return torch._int_mm(xc.to(torch.int8), yc.to(torch.int8).T.contiguous()).to(torch.float64)
    xf, yf = xc.to(torch.float32), yc.to(torch.float32)
    out = torch.zeros((xf.shape[0], yf.shape[0]), dtype=torch.float64, device=xf.device)
    for c in range(0, xf.shape[1], _CHUNK):
        out += (xf[:, c : c + _CHUNK] @ yf[:, c : c + _CHUNK].T).to(torch.float64)
    return out


def _prepare(x, y, device):
    dev = torch.device(device) if device is not None else default_device()
    xt = torch.as_tensor(x).to(dev)
    yt = torch.as_tensor(y).to(dev)
    for name, t in (("x", xt), ("y", yt)):
        if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[1] != t.shape[2] or t.shape[3] != 3:
            raise ValueError(f"{name} must be uint8 of shape (n, S, S, 3), got {t.dtype} {tuple(t.shape)}")
    if xt.shape[1:] != yt.shape[1:]:
        raise ValueError(f"x and y thumbnails differ in shape: {tuple(xt.shape[1:])} vs {tuple(yt.shape[1:])}")
    return dev, xt, yt


def _transformed(xc: torch.Tensor, t: int) -> torch.Tensor:
    """``_kernel.transformed`` for a stack on the device."""
    if t >= 4:
        xc = torch.flip(xc, dims=(2,))
    return torch.rot90(xc, t % 4, dims=(1, 2)) if t % 4 else xc


def _sse(xt: torch.Tensor, yt: torch.Tensor, rotate: bool, use_int8: bool | None, mirror: bool = False) -> torch.Tensor:
    """Exact minimum over the turns (and with ``mirror`` reflections) of the sums of squared
    differences (n x m, int64 or float64 holding integers)."""
    n, size, m = xt.shape[0], xt.shape[1], yt.shape[0]
    d = 3 * size * size
    xc = xt.to(torch.int16) - 128
    yc = (yt.to(torch.int16) - 128).reshape(m, d)
    wanted = xt.device.type == "cuda" if use_int8 is None else use_int8
    int8 = wanted and _int8_fits(n, m, d)
    acc = torch.int64 if int8 else torch.float64
    norm_x = (xc.reshape(n, d).to(torch.int64) ** 2).sum(1).to(acc)
    norm_y = (yc.to(torch.int64) ** 2).sum(1).to(acc)
    best: torch.Tensor | None = None
    for t in transforms(rotate, mirror):
        xk = _transformed(xc, t).reshape(n, d) if t else xc.reshape(n, d)
        if int8:
            dots = torch._int_mm(xk.to(torch.int8), yc.to(torch.int8).T.contiguous())
        else:
            dots = _dots(xk, yc, False)
        best = dots if best is None else torch.maximum(best, dots)
    assert best is not None
    return norm_x[:, None] + norm_y[None, :] - 2 * best.to(acc)


def block_dif_torch(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    rotate: bool = True,
    device: torch.device | str | None = None,
    int8: bool | None = None,
    mirror: bool = False,
) -> np.ndarray:
    """``dif`` of every pair of ``x`` (n x S x S x 3 uint8) and ``y`` (m x S x S x 3), exactly.

    Returns an n x m float64 numpy array equal to :func:`fast_diff_py._kernel.block_dif`.
    ``int8``: use the int8 products (None: on CUDA only); either way only where the shapes fit.
    """
    dev, xt, yt = _prepare(x, y, device)
    size = xt.shape[1]
    with _full_precision(), torch.no_grad():
        sse = _sse(xt, yt, rotate, int8, mirror)
    # divided on the host: CUDA divides by a scalar through its reciprocal, which is not
    # correctly rounded unless S^2 is a power of two
    return sse.cpu().numpy().astype(np.float64) / np.float64(size * size)


def block_matches_torch(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    threshold: float,
    rotate: bool = True,
    *,
    upper: bool = False,
    device: torch.device | str | None = None,
    int8: bool | None = None,
    mirror: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, cols, dif)`` of the pairs with ``dif <= threshold``, computed on the device;
    only the matches travel back. ``upper`` keeps ``col > row`` only (a block with itself).

    The values equal :func:`fast_diff_py._kernel.block_dif`'s bit for bit.
    """
    dev, xt, yt = _prepare(x, y, device)
    size = xt.shape[1]
    with _full_precision(), torch.no_grad():
        sse = _sse(xt, yt, rotate, int8, mirror)
        # a superset by integers, then the float64 test the numpy kernel applies
        mask = sse <= int(threshold * size * size * (1 + 1e-12)) + 1
        if upper:
            mask = torch.triu(mask, diagonal=1)
        found_rows, found_cols = torch.nonzero(mask, as_tuple=True)
        picked = sse[found_rows, found_cols].cpu().numpy()
        rows, cols = found_rows.cpu().numpy(), found_cols.cpu().numpy()
    dif = picked.astype(np.float64) / np.float64(size * size)  # on the host, see block_dif_torch
    keep = dif <= threshold
    return rows[keep], cols[keep], dif[keep]
