"""Small folders end to end: ``difpy`` on the example images and on a few hundred photos, in
one process (a small folder's default) and through Snakemake, against the time it takes
just to decode those photos.

    python bench/small_runs.py /tmp/wall-4000/photos --photos 500 --rounds 5
    python bench/small_runs.py /tmp/wall-4000/photos --photos 500 --width 4000   # camera-sized
    python bench/small_runs.py /tmp/wall-4000/photos --photos 500 --before /tmp/before   # and another checkout

With ``--width`` each photo is written again as a JPEG that wide (quality 90, its aspect
kept), the size a phone camera makes, instead of linked as it is.

Each round runs every case once, in turn, each with a fresh cache (``FAST_DIFF_CACHE``), so
nothing is taken from an earlier run. ``decode`` is a Python process that imports OpenCV and
decodes every photo whole with ``cv2.imread`` on as many threads as there are cores.
Prints each case's times, medians and the ratios the targets name (also as the median of
the rounds' own ratios, which the machine's drift between rounds moves less). With
``--before CHECKOUT`` the 500 photos in one process are run with that checkout's package as
well (its ``src`` first on ``PYTHONPATH``), in the same rounds.

The package is byte-compiled first, as an installed package is (``pip`` compiles what it
installs, and Python writes the bytecode of an editable checkout at its first import):
where ``PYTHONDONTWRITEBYTECODE`` is set, every start would otherwise compile it again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "images"
SAMPLE = REPO / "examples" / "sample.py"
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

DECODE = """
import sys, os, cv2
from concurrent.futures import ThreadPoolExecutor
paths = [os.path.join(d, f) for d, _, fs in os.walk(sys.argv[1]) for f in fs]
with ThreadPoolExecutor(os.cpu_count()) as pool:
    decoded = sum(img is not None for img in pool.map(cv2.imread, paths))
print(decoded)
"""


def sample(corpus: Path, count: int, into: Path, width: int | None = None) -> Path:
    """``count`` photos of ``corpus`` (hard links, in walk order) in a folder of their own;
    with ``width``, JPEGs of them that wide instead (those OpenCV can read)."""
    import cv2

    into.mkdir(parents=True)
    taken = 0
    for folder, _, files in sorted(os.walk(corpus)):
        for name in sorted(files):
            if Path(name).suffix.lower() not in EXTENSIONS or taken >= count:
                continue
            source = Path(folder, name)
            target = into / f"{taken:05d}_{name}"
            if width:
                img = cv2.imread(str(source))
                if img is None:
                    continue
                h = round(img.shape[0] * width / img.shape[1])
                big = cv2.resize(img, (width, h), interpolation=cv2.INTER_CUBIC)
                cv2.imwrite(str(target.with_suffix(".jpg")), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
            else:
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copy2(source, target)
            taken += 1
    return into


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def per_round(times: dict[str, list[float]], name: str, n: int) -> float:
    """The median over the rounds of the case ``name`` against decoding in the same round."""
    return statistics.median(t / d for t, d in zip(times[name], times[f"{n} photos, decode only"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="a folder of photos to take --photos from")
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--width", type=int, help="write each photo as a JPEG this wide")
    parser.add_argument("--before", type=Path, help="another checkout: its one-process run too")
    args = parser.parse_args()
    n = args.photos
    import fast_diff_py

    packages = [Path(fast_diff_py.__file__).parent]
    if args.before:
        packages.append(args.before.resolve() / "src" / "fast_diff_py")
    for package in packages:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    difpy = [sys.executable, "-m", "fast_diff_py.cli.difpy", "-Z", "out", "-p", "False"]
    with tempfile.TemporaryDirectory(prefix="small-runs-") as tmp:
        tmp = Path(tmp)
        photos = sample(args.corpus, n, tmp / "photos", args.width)
        cases = {
            "examples, one process": [*difpy, "-D", str(EXAMPLES), "-e", "inline"],
            "examples, Snakemake": [*difpy, "-D", str(EXAMPLES), "-e", "snakemake"],
            f"{n} photos, one process": [*difpy, "-D", str(photos), "-e", "inline"],
            f"{n} photos, Snakemake": [*difpy, "-D", str(photos), "-e", "snakemake"],
            f"{n} photos, decode only": [sys.executable, "-c", DECODE, str(photos)],
            # fast-diff-py's README script: full_index, first_loop, second_loop, commit
            "examples, API's four calls": [
                sys.executable,
                str(SAMPLE),
                str(EXAMPLES / "holiday"),
                str(EXAMPLES / "phone"),
            ],
        }
        paths: dict[str, str] = {}
        if args.before:
            before = f"{n} photos, one process, before"
            cases[before] = cases[f"{n} photos, one process"]
            paths[before] = str(args.before.resolve() / "src")
        times: dict[str, list[float]] = {name: [] for name in cases}
        for r in range(args.rounds):
            for name, cmd in cases.items():
                shutil.rmtree(tmp / "cache", ignore_errors=True)
                shutil.rmtree(tmp / "out", ignore_errors=True)
                shutil.rmtree(tmp / "results", ignore_errors=True)
                env = {**os.environ, "FAST_DIFF_CACHE": str(tmp / "cache")}
                if name in paths:
                    env["PYTHONPATH"] = os.pathsep.join(p for p in (paths[name], env.get("PYTHONPATH")) if p)
                times[name].append(timed(cmd, env, tmp))
            print(f"round {r + 1}: " + ", ".join(f"{k} {t[-1]:.2f} s" for k, t in times.items()), flush=True)
    med = {name: statistics.median(t) for name, t in times.items()}
    print()
    for name, t in times.items():
        print(f"{name:28s} median {med[name]:6.2f} s   ({' / '.join(f'{x:.2f}' for x in t)})")
    decode = med[f"{n} photos, decode only"]
    print()
    print(f"examples: one process / Snakemake     {med['examples, one process'] / med['examples, Snakemake']:.2f}x")
    print(f"{n} photos: one process / decode only {med[f'{n} photos, one process'] / decode:.2f}x", end="")
    print(f"  (median of the rounds' ratios {per_round(times, f'{n} photos, one process', n):.2f}x)")
    if args.before:
        print(f"{n} photos: before / decode only      {med[f'{n} photos, one process, before'] / decode:.2f}x", end="")
        print(f"  (median of the rounds' ratios {per_round(times, f'{n} photos, one process, before', n):.2f}x)")
    print(f"{n} photos: Snakemake / decode only   {med[f'{n} photos, Snakemake'] / decode:.2f}x")


if __name__ == "__main__":
    main()
