"""Build a corpus of real photos with known near-duplicates for benchmarks and checks.

Sources are the photographs bundled with scikit-image (public domain / CC0). Each is saved
at full size, then copies are derived from it: a JPEG quality-70 re-encode, a 90-degree
rotation, a half-size copy, a 2 % crop and a 4 % brighter copy. With ``--repeat K`` each
source is also tiled into K distinct crops so the corpus can grow to thousands of files.

Usage (needs scikit-image and opencv):  python bench/make_corpus.py OUT_DIR [--repeat K]
Writes OUT_DIR/photos/... and OUT_DIR/truth.json (the pairs that are copies of each other).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

SOURCES = [
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "cat",
    "clock",
    "horse",
    "moon",
    "page",
    "brick",
    "grass",
    "gravel",
    "colorwheel",
]


def sources() -> dict[str, np.ndarray]:
    import skimage.data as data

    out = {}
    for name in SOURCES:
        img = getattr(data, name)()
        if img.dtype != np.uint8:  # bool or float images in [0, 1]
            img = (np.asarray(img, np.float64) * 255).round().astype(np.uint8)
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
        out[name] = img
    left, _, _ = data.stereo_motorcycle()
    out["motorcycle"] = cv2.cvtColor(left, cv2.COLOR_RGB2BGR)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--repeat", type=int, default=1, help="distinct crops per source image")
    args = ap.parse_args()
    photos = args.out / "photos"
    truth = []
    rng = np.random.default_rng(0)
    for name, full in sources().items():
        h, w = full.shape[:2]
        for r in range(args.repeat):
            if r == 0:
                img = full
            else:  # a distinct random crop of at least half the size
                ch, cw = int(h * rng.uniform(0.5, 0.9)), int(w * rng.uniform(0.5, 0.9))
                y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
                img = np.ascontiguousarray(full[y : y + ch, x : x + cw])
            base = f"{name}_{r:03d}"
            orig = photos / "originals" / f"{base}.jpg"
            orig.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(orig), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            decoded = cv2.imread(str(orig))
            ih, iw = decoded.shape[:2]
            copies = {
                f"{base}_q70.jpg": (decoded, [cv2.IMWRITE_JPEG_QUALITY, 70]),
                f"{base}_rot90.png": (np.rot90(decoded).copy(), []),
                f"{base}_half.jpg": (
                    cv2.resize(decoded, (iw // 2, ih // 2), interpolation=cv2.INTER_AREA),
                    [cv2.IMWRITE_JPEG_QUALITY, 92],
                ),
                f"{base}_crop2.jpg": (
                    decoded[ih // 100 : ih - ih // 100, iw // 100 : iw - iw // 100],
                    [cv2.IMWRITE_JPEG_QUALITY, 92],
                ),
                f"{base}_bright4.jpg": (
                    np.clip(decoded.astype(int) * 1.04, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 92],
                ),
            }
            for fname, (copy, params) in copies.items():
                dest = photos / "copies" / fname
                dest.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(dest), copy, params)
                truth.append([str(orig.relative_to(args.out)), str(dest.relative_to(args.out))])
    (args.out / "truth.json").write_text(json.dumps(truth, indent=1))
    print(f"{len(list(photos.rglob('*.*')))} files, {len(truth)} known copy pairs in {photos}")


if __name__ == "__main__":
    main()
