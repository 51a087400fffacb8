"""A user difference function, imported by name ("tests.diffs:mean_abs") in the tests."""

import numpy as np


def mean_abs(a: np.ndarray, b: np.ndarray, rotate: bool) -> float:
    """Mean absolute difference, smallest over rotations."""
    ks = range(4) if rotate else range(1)
    return min(float(np.abs(np.rot90(a, k).astype(int) - b).mean()) for k in ks)


def coarse_hash(mat: np.ndarray) -> str:
    """A deliberately coarse hash: the mean value in steps of 16."""
    return f"m{int(mat.mean()) // 16}"


def coarse_gpu(a: np.ndarray, b: np.ndarray, rotate: bool) -> float:
    """Stands in for a GPU difference function: a constant, so its use is visible."""
    return 7.0


def broken_diff(a: np.ndarray, b: np.ndarray, rotate: bool) -> float:
    """A user function that fails, as a buggy one would."""
    raise ZeroDivisionError("the user's function failed")
