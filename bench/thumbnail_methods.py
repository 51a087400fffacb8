"""Speed and per-transform recall of thumbnail methods on a corpus with known near-duplicates.

For every method: milliseconds per file (median and mean, one core, file bytes already in
memory, the methods taking turns on runs of 50 files), then every pair of the corpus
compared exactly (``dif`` over the four rotations) at difPy's ``similar`` (mse 5 = dif 15)
on S = 50 thumbnails, as the ``difpy`` command runs:
precision, recall, and recall per transform. ``full decode`` is the cost of decoding alone
with OpenCV, ``decode_image`` with the package's full-size decoding (simplejpeg for plain
JPEGs).

    python bench/make_wallpaper_corpus.py /tmp/wall-500 --originals 500
    .venv/bin/python bench/thumbnail_methods.py /tmp/wall-500

Methods ``compat``, ``area`` and ``quality`` are the package's (``thumbnail_method``); the
others are candidates measured for comparison: reduced JPEG decoding without the alignment
rule, ``quality``'s rule with another minimum of source pixels per thumbnail pixel
(``ratio4``, ``ratio2``; ``quality`` keeps 3), ``quality`` halving down to 3 or 1 pixels
per thumbnail pixel instead of 2 (``halve3``, ``halve1``; ``halve2`` is ``quality`` in
memory) or not at all (``no_halving``), ``quality`` with simplejpeg's fast chroma upsampling
or fast IDCT (``fastupsample``, ``fastdct``, ``fast_both``), a Gaussian
pyramid, halving by area after a full decode, and
libvips' shrink-on-load (``pyvips``, only when installed), and ``area`` with every file
decoded by OpenCV (``area_opencv``). The candidates decode bytes held in memory; the
package's methods write them to a file and read it back, inside the timing.
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
import simplejpeg

from fast_diff_py import ImageReadError
from fast_diff_py._decode import (
    HALVING_MIN_RATIO,
    MCU_ALIGN,
    _jpeg_scan,
    decode_image,
    decode_thumbnail,
    halved,
    reduced_scale,
)
from fast_diff_py._kernel import block_dif

CHUNK = 50  # files each method decodes in its turn
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
            dims = _jpeg_scan(data).size
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
            dims = _jpeg_scan(data).size
            if dims is not None:
                for f, flag in REDUCED:
                    if min(dims) // f >= ratio * s and not (dims[0] % f or dims[1] % f):
                        return _area(cv2.imdecode(np.frombuffer(data, np.uint8), flag), s)
        return _area(_full(data), s)

    return run


def candidate_area_opencv(data: bytes, s: int) -> np.ndarray:
    """``area`` with every file decoded by OpenCV (``area`` before plain JPEGs went through
    simplejpeg)."""
    return _area(_full(data), s)


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


def candidate_quality_halving(min_ratio: int):
    """``quality`` with another ``HALVING_MIN_RATIO`` (``no_halving``: the method before it
    halved), the file's bytes decoded in memory."""

    def run(data: bytes, s: int) -> np.ndarray:
        return _area(halved(decode_image(data, s)[0], s, min_ratio), s)

    return run


def candidate_fast_jpeg(**options):
    """``quality`` with simplejpeg's faster, less exact options for plain JPEGs
    (``fastupsample``: chroma doubled by copying instead of libjpeg's triangle filter;
    ``fastdct``: the fast integer IDCT), the file's bytes decoded in memory."""

    def run(data: bytes, s: int) -> np.ndarray:
        img = None
        if data[:2] == b"\xff\xd8":
            header = _jpeg_scan(data)
            if header.plain and not header.problem:
                f = reduced_scale(*header.size, s)
                img = simplejpeg.decode_jpeg(
                    data,
                    colorspace="BGR",
                    min_factor=f,
                    min_height=-(-header.size[0] // f),
                    min_width=-(-header.size[1] // f),
                    **options,
                )
        if img is None:
            img = decode_image(data, s)[0]
        return _area(halved(img, s), s)

    return run


def candidate_vips(data: bytes, s: int) -> np.ndarray:
    import pyvips

    im = pyvips.Image.thumbnail_buffer(data, s, height=s, size="force")
    a = np.ndarray(buffer=im.write_to_memory(), dtype=np.uint8, shape=(im.height, im.width, im.bands))
    a = a[..., :3] if a.shape[2] >= 3 else np.repeat(a[..., :1], 3, 2)
    return np.ascontiguousarray(a[..., ::-1])


def package_method(name: str):
    tmp = Path(tempfile.mkdtemp()) / "f"

    def run(data: bytes, s: int) -> np.ndarray:
        tmp.write_bytes(data)  # decode_thumbnail reads a path; the page cache serves it
        return decode_thumbnail(str(tmp), s, name)[0]

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
    methods = {
        "compat": package_method("compat"),
        "area": package_method("area"),
        "quality": package_method("quality"),
        "reduced_any": candidate_reduced_any,
        "ratio4": candidate_reduced_ratio(4),
        "ratio2": candidate_reduced_ratio(2),
        "scale_aligned": candidate_scale_aligned(3),
        "area_opencv": candidate_area_opencv,
        "pyramid": candidate_pyramid,
        "halving": candidate_halving,
        "vips": candidate_vips,
        "halve3": candidate_quality_halving(3),
        "halve1": candidate_quality_halving(1),
        "halve2": candidate_quality_halving(HALVING_MIN_RATIO),
        "no_halving": candidate_quality_halving(1 << 30),
        "fastupsample": candidate_fast_jpeg(fastupsample=True),
        "fastdct": candidate_fast_jpeg(fastdct=True),
        "fast_both": candidate_fast_jpeg(fastupsample=True, fastdct=True),
    }
    print(f"{args.corpus}: {len(files)} files, {len(pairs)} known pairs, S={args.size}, dif <= {args.threshold}")
    decoders = {"full decode": lambda d, s: _full(d), "decode_image": lambda d, s: decode_image(d)[0]}
    names = [*decoders, *args.methods.split(",")]
    fns = {**decoders, **{n: methods[n] for n in names[len(decoders) :]}}
    for name in names[len(decoders) :]:
        try:
            fns[name](data[files[0]], args.size)
        except ImportError as exc:
            print(f"{name:12s} skipped: {exc}")
            names.remove(name)
        except ImageReadError:
            pass
    # the methods take turns on each run of CHUNK files, so that a slower stretch of a shared
    # machine weighs on all of them alike
    ms = {n: {} for n in names}
    results = {n: {} for n in names}
    for c, start in enumerate(range(0, len(files), CHUNK)):
        chunk = files[start : start + CHUNK]
        for name in names[c % len(names) :] + names[: c % len(names)]:
            for f in chunk:
                t = time.perf_counter()
                out = fns[name](data[f], args.size)
                ms[name][f] = 1e3 * (time.perf_counter() - t)
                if name not in decoders:
                    results[name][f] = out
    for name in names:
        times = list(ms[name].values())
        line = f"{name:12s} {statistics.median(times):6.2f} ms/file median ({statistics.mean(times):.2f} mean)"
        if name in decoders:
            print(line)
            continue
        thumbs = [results[name][f] for f in files]
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
        print(
            f"{line}  precision {precision:.3f}  recall {tp / len(pairs):.3f}  |  "
            + "  ".join(f"{t} {sum(v) / len(v):.2f}" for t, v in per.items()),
            flush=True,
        )


if __name__ == "__main__":
    main()
