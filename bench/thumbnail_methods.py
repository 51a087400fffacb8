"""Speed and per-transform recall of thumbnail methods on a corpus with known near-duplicates.

For every method: milliseconds per file (median and mean, one core, file bytes already in
memory), then every pair of the corpus compared exactly (``dif`` over the four rotations)
at difPy's ``similar`` (mse 5 = dif 15) on S = 50 thumbnails, as the ``difpy`` command runs:
precision, recall, and recall per transform. ``full decode`` is the cost of decoding alone.

    python bench/make_wallpaper_corpus.py /tmp/wall-500 --originals 500
    .venv/bin/python bench/thumbnail_methods.py /tmp/wall-500

Methods ``compat``, ``area`` and ``quality`` are the package's (``thumbnail_method``); the
others are candidates measured for comparison: reduced JPEG decoding without the alignment
rule, ``quality``'s rule with another minimum of source pixels per thumbnail pixel
(``ratio4``, ``ratio2``; ``quality`` keeps 3), a Gaussian pyramid, halving by area, and
libvips' shrink-on-load (``pyvips``, only when installed). The candidates decode bytes held
in memory; the package's methods write them to a file and read it back, inside the timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from fast_diff_py._kernel import block_dif
from fast_diff_py._thumbnails import MCU_ALIGN, ImageReadError, _jpeg_scan, decode_thumbnail

REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def _full(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def _area(img: np.ndarray, s: int) -> np.ndarray:
    return cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA)


def candidate_reduced_any(data: bytes, s: int) -> np.ndarray:
    """DCT-scaled decode whatever the size (the short side keeps >= 4 s pixels)."""
    if data[:2] == b"\xff\xd8":
        probe = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
        short = min(probe.shape[:2]) * 8
        for f, flag in REDUCED:
            if short // f >= 4 * s:
                return _area(cv2.imdecode(np.frombuffer(data, np.uint8), flag), s)
    return _area(_full(data), s)


def candidate_reduced_ratio(ratio: int):
    """The ``quality`` method with another minimum of source pixels per thumbnail pixel."""
    def run(data: bytes, s: int) -> np.ndarray:
        if data[:2] == b"\xff\xd8":
            _, dims = _jpeg_scan(data)
            if dims is not None and not (dims[0] % MCU_ALIGN or dims[1] % MCU_ALIGN):
                for f, flag in REDUCED:
                    if min(dims) // f >= ratio * s:
                        return _area(cv2.imdecode(np.frombuffer(data, np.uint8), flag), s)
        return _area(_full(data), s)
    return run


def candidate_scale_aligned(ratio: int = 3):
    """Reduced decoding wherever both sides are multiples of the scale (not of 8), keeping
    ``ratio`` source pixels per thumbnail pixel."""
    def run(data: bytes, s: int) -> np.ndarray:
        if data[:2] == b"\xff\xd8":
            _, dims = _jpeg_scan(data)
            if dims is not None:
                for f, flag in REDUCED:
                    if min(dims) // f >= ratio * s and not (dims[0] % f or dims[1] % f):
                        return _area(cv2.imdecode(np.frombuffer(data, np.uint8), flag), s)
        return _area(_full(data), s)
    return run


def candidate_pyramid(data: bytes, s: int) -> np.ndarray:
    img = _full(data)
    while min(img.shape[:2]) >= 4 * s:
        img = cv2.pyrDown(img)
    return _area(img, s)


def candidate_halving(data: bytes, s: int) -> np.ndarray:
    img = _full(data)
    while min(img.shape[:2]) >= 4 * s:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return _area(img, s)


def candidate_vips(data: bytes, s: int) -> np.ndarray:
    import pyvips

    im = pyvips.Image.thumbnail_buffer(data, s, height=s, size="force")
    a = np.ndarray(buffer=im.write_to_memory(), dtype=np.uint8, shape=(im.height, im.width, im.bands))
    a = a[..., :3] if a.shape[2] >= 3 else np.repeat(a[..., :1], 3, 2)
    return np.ascontiguousarray(a[..., ::-1])


def package_method(name: str):
    def run(data: bytes, s: int, _tmp=Path(tempfile.mkdtemp()) / "f") -> np.ndarray:
        _tmp.write_bytes(data)  # decode_thumbnail reads a path; the page cache serves it
        return decode_thumbnail(str(_tmp), s, name)[0]
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--size", type=int, default=50)
    ap.add_argument("--threshold", type=float, default=15.0)
    ap.add_argument("--methods", default="compat,area,quality,ratio4,ratio2,reduced_any,pyramid,halving,vips")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    truth = json.loads((args.corpus / "truth.json").read_text())
    broken = set(truth["broken"])
    files = sorted(str(p) for p in (args.corpus / "photos").rglob("*") if p.is_file() and str(p) not in broken)
    data = {f: Path(f).read_bytes() for f in files}
    pairs = {frozenset((p["original"], p["duplicate"])): p["transform"] for p in truth["pairs"]}
    methods = {"compat": package_method("compat"), "area": package_method("area"),
               "quality": package_method("quality"), "reduced_any": candidate_reduced_any,
               "ratio4": candidate_reduced_ratio(4), "ratio2": candidate_reduced_ratio(2),
               "scale_aligned": candidate_scale_aligned(3),
               "pyramid": candidate_pyramid, "halving": candidate_halving, "vips": candidate_vips}
    print(f"{args.corpus}: {len(files)} files, {len(pairs)} known pairs, S={args.size}, "
          f"dif <= {args.threshold}")
    decode_ms = []
    for f in files:
        t = time.perf_counter()
        _full(data[f])
        decode_ms.append(1e3 * (time.perf_counter() - t))
    print(f"{'full decode':12s} {statistics.median(decode_ms):6.2f} ms/file median "
          f"({statistics.mean(decode_ms):.2f} mean)")
    for name in args.methods.split(","):
        fn = methods[name]
        try:
            fn(data[files[0]], args.size)
        except ImportError as exc:
            print(f"{name:12s} skipped: {exc}")
            continue
        except ImageReadError:
            pass
        ms, thumbs = [], []
        for f in files:
            t = time.perf_counter()
            thumbs.append(fn(data[f], args.size))
            ms.append(1e3 * (time.perf_counter() - t))
        x = np.stack(thumbs)
        d = block_dif(x, x, True)
        rows, cols = np.nonzero(np.triu(d <= args.threshold, 1))
        found = {frozenset((files[i], files[j])) for i, j in zip(rows, cols)}
        hits = {p: p in found for p in pairs}
        tp = sum(hits.values())
        per: dict[str, list[bool]] = {}
        for p, t in pairs.items():
            per.setdefault(t, []).append(hits[p])
        precision = tp / len(found) if found else 1.0
        print(f"{name:12s} {statistics.median(ms):6.2f} ms/file median ({statistics.mean(ms):.2f} mean)"
              f"  precision {precision:.3f}  recall {tp / len(pairs):.3f}  |  "
              + "  ".join(f"{t} {sum(v) / len(v):.2f}" for t, v in per.items()), flush=True)


if __name__ == "__main__":
    main()
