"""Side-by-side pictures of matching pairs, with both paths and their difference."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import cv2
import numpy as np

from ._formats import DIF_PER_MSE
from ._paths import native
from ._queries import stored_pairs

__all__ = ["make_diff_plots"]

logger = logging.getLogger(__name__)

_HEIGHT = 256  # pixels of each image in the picture
_BAND = 66  # header with the two paths and the value


def _load(path: str) -> np.ndarray:
    """The image at ``path`` scaled to _HEIGHT rows, read as thumbnails are: never blocking,
    within the pixel and size limits, JPEGs decoded at a reduced scale where they allow it."""
    from ._decode import decode_image
    from ._errors import ImageReadError
    from ._files import read_file

    try:
        data, _ = read_file(path)
        img, _ = decode_image(data, reduce_for=_HEIGHT // 3)
    except ImageReadError as exc:
        raise ValueError(f"{path!r}: {exc}") from None
    scale = _HEIGHT / img.shape[0]
    return cv2.resize(img, (max(1, round(img.shape[1] * scale)), _HEIGHT), interpolation=cv2.INTER_AREA)


def _text(canvas: np.ndarray, text: str, y: int) -> None:
    # OpenCV's fonts are ASCII only; other characters are shown as '?'
    ascii_text = text.encode("ascii", "replace").decode()
    cv2.putText(canvas, ascii_text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)


def make_diff_plots(
    db_path: str | os.PathLike[str],
    plot_output_dir: str | os.PathLike[str],
    plot_threshold: float,
    include_hash_match: bool = True,
) -> int:
    """Write ``<key_a>_<key_b>.png`` for every stored pair with ``dif <= plot_threshold``.

    Each picture shows both images side by side under a band naming both paths and the
    ``dif``. Returns the number of pictures written.
    """
    out = Path(plot_output_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db_path)
    try:
        pairs = list(stored_pairs(con, plot_threshold, include_hash_match))
    finally:
        con.close()
    written = 0
    for key_a, key_b, dif, path_a, path_b, raw_a, raw_b in pairs:
        try:
            left, right = _load(native(path_a, raw_a)), _load(native(path_b, raw_b))
        except (ValueError, OSError) as exc:
            logger.warning("no picture for pair %d, %d: %s", key_a, key_b, exc)
            continue
        gap = np.full((_HEIGHT, 8, 3), 255, np.uint8)
        body = np.hstack([left, gap, right])
        canvas = np.full((_BAND + _HEIGHT, max(body.shape[1], 480), 3), 255, np.uint8)
        canvas[_BAND:, : body.shape[1]] = body
        _text(canvas, f"A: {path_a}", 18)
        _text(canvas, f"B: {path_b}", 38)
        _text(canvas, f"dif = {dif:.4f}  (difPy mse = {dif / DIF_PER_MSE:.4f})", 58)
        ok, buf = cv2.imencode(".png", canvas)
        if ok:
            (out / f"{key_a}_{key_b}.png").write_bytes(buf.tobytes())
            written += 1
    logger.info("%d pair pictures in %s", written, out)
    return written
