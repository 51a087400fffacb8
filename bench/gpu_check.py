"""GPU check of the torch kernel: parity with numpy on real thumbnails, and throughput.

Builds thumbnails of real photographs (scikit-image's bundled photos, cut into distinct crops,
plus near-duplicate copies so that small differences occur), then
  1. checks that block_dif_torch on the device (int8 and float32 paths) equals the numpy
     kernel bit for bit, with and without rotation;
  2. times pairs per second of the numpy kernel (CPU, all cores) and of the torch kernel on
     the device for several block sizes (medians; host-to-device copies included).

    python bench/gpu_check.py [--device cuda] [--images 2048] [--blocks 2048 8192] [--out F]
Needs numpy, opencv, scikit-image and torch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_corpus import sources  # noqa: E402

from fast_diff_py._kernel import block_dif  # noqa: E402
from fast_diff_py._kernel_torch import _full_precision, _sse, block_dif_torch, block_matches_torch  # noqa: E402


def thumbnails(count: int, size: int, seed: int = 0) -> np.ndarray:
    """``count`` thumbnails: random crops of real photos, every fourth a JPEG-70 copy or a
    rotation of the one before."""
    rng = np.random.default_rng(seed)
    photos = list(sources().values())
    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        if i % 4 == 3:
            prev = out[i - 1]
            if i % 8 == 3:
                ok, buf = cv2.imencode(".jpg", prev, [cv2.IMWRITE_JPEG_QUALITY, 70])
                out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            else:
                out[i] = np.rot90(prev, 1, axes=(0, 1))
            continue
        img = photos[rng.integers(len(photos))]
        h, w = img.shape[:2]
        ch, cw = int(h * rng.uniform(0.3, 0.9)), int(w * rng.uniform(0.3, 0.9))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        out[i] = cv2.resize(img[y : y + ch, x : x + cw], (size, size), interpolation=cv2.INTER_CUBIC)
    return out


def timed(fn, repeat: int, sync: bool) -> float:
    times = []
    for _ in range(repeat):
        if sync:
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--images", type=int, default=2048, help="thumbnails for the parity check")
    ap.add_argument("--blocks", type=int, nargs="+", default=[2048, 8192, 16384])
    ap.add_argument("--cpu-block", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    dev = torch.device(args.device)
    report: dict = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "size": args.size,
    }
    t = time.perf_counter()
    thumbs = thumbnails(max(args.images, max(args.blocks)), args.size)
    report["thumbnail_seconds"] = round(time.perf_counter() - t, 2)

    # 1. parity on real thumbnails
    x, y = thumbs[: args.images // 2], thumbs[args.images // 2 : args.images]
    parity = {}
    for rotate in (True, False):
        ref = block_dif(x, y, rotate)
        for int8 in (True, False):
            got = block_dif_torch(x, y, rotate, device=dev, int8=int8)
            key = f"rotate={rotate},int8={int8}"
            parity[key] = {
                "identical": bool(np.array_equal(got, ref)),
                "pairs": int(ref.size),
                "pairs_under_200": int((ref <= 200).sum()),
                "max_abs_diff": float(np.abs(got - ref).max()),
            }
    # the diagonal block (x with itself) holds the planted copies
    ref = block_dif(x, x, True)
    got = block_dif_torch(x, x, True, device=dev, int8=True)
    upper = np.triu_indices(len(x), 1)
    parity["self,rotate=True,int8=True"] = {
        "identical": bool(np.array_equal(got, ref)),
        "pairs": int(len(upper[0])),
        "pairs_under_200": int((ref[upper] <= 200).sum()),
    }
    report["parity"] = parity
    report["all_identical"] = all(v["identical"] for v in parity.values())

    # 2. throughput
    cb = args.cpu_block
    sec = timed(lambda: block_dif(thumbs[:cb], thumbs[-cb:], True), max(1, args.repeat // 2), False)
    report["numpy_cpu"] = {"block": cb, "seconds": round(sec, 4), "pairs_per_s": round(cb * cb / sec)}
    rows = []
    sync = dev.type == "cuda"
    base = report["numpy_cpu"]["pairs_per_s"]
    for b in args.blocks:
        xa, ya = thumbs[:b], thumbs[-b:]
        xd, yd = torch.as_tensor(xa).to(dev), torch.as_tensor(ya).to(dev)
        for int8 in (True, False):
            block_matches_torch(xa[:64], ya[:64], 200.0, device=dev, int8=int8)  # warm-up

            def gemm_only(xd=xd, yd=yd, int8=int8):
                with _full_precision(), torch.no_grad():
                    _sse(xd, yd, True, int8)

            timings = {
                "matches_from_host": partial(block_matches_torch, xa, ya, 200.0, True, device=dev, int8=int8),
                "matches_on_device": partial(block_matches_torch, xd, yd, 200.0, True, device=dev, int8=int8),
                "sse_only_on_device": gemm_only,
            }
            if b <= 8192:
                timings["full_matrix_to_host"] = partial(block_dif_torch, xa, ya, True, device=dev, int8=int8)
            for name, fn in timings.items():
                sec = timed(fn, args.repeat, sync)
                rows.append(
                    {
                        "block": b,
                        "int8": int8,
                        "what": name,
                        "seconds": round(sec, 4),
                        "pairs_per_s": round(b * b / sec),
                        "vs_numpy_cpu": round(b * b / sec / base, 1),
                    }
                )
                print(rows[-1], flush=True)
        del xd, yd
        torch.cuda.empty_cache() if sync else None
    report["torch"] = rows
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
