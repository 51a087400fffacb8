"""A folder that grows past what runs in one process: ``difpy`` on N photos (in one process),
then on N + M (through Snakemake), then on N again (in one process), a fresh cache for each
series; prints each run's seconds and what its thumbnail jobs took from earlier runs.

    python bench/engine_switch.py /tmp/wall-4000/photos --photos 1950 --add 150 --rounds 3
    PYTHONPATH=/tmp/before/src python bench/engine_switch.py ...   # another checkout's code
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def photos(corpus: Path, count: int) -> list[Path]:
    found = sorted(p for p in corpus.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    if len(found) < count:
        raise SystemExit(f"{corpus} holds {len(found)} photos, fewer than {count}")
    return found[:count]


def taken(cache: Path, since: float) -> str:
    """What the thumbnail jobs that ran after ``since`` took from earlier runs."""
    a = b = 0
    for log in cache.rglob("make_thumbnails_*.log"):
        if log.stat().st_mtime >= since:
            for x, y in re.findall(r"(\d+) of (\d+) files taken from the last run", log.read_text()):
                a, b = a + int(x), b + int(y)
    return f"{a} of {b} taken"


def run(folder: Path, cache: Path, out: Path) -> tuple[float, str]:
    env = {**os.environ, "FAST_DIFF_CACHE": str(cache)}
    since = time.time()
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "fast_diff_py.cli.difpy", "-D", str(folder), "-Z", str(out), "-s", "similar"]
    subprocess.run([*cmd, "-p", "False"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, taken(cache, since)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--photos", type=int, default=1950)
    ap.add_argument("--add", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import fast_diff_py

    print(f"fast_diff_py from {os.path.dirname(fast_diff_py.__file__)}")
    chosen = photos(args.corpus, args.photos + args.add)
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="engine-switch-") as tmp:
            tmp = Path(tmp)
            folder = tmp / "photos"
            folder.mkdir()
            for i, p in enumerate(chosen[: args.photos]):
                os.link(p, folder / f"{i:05d}{p.suffix}")
            lines = [f"{args.photos} files %.2f s (%s)" % run(folder, tmp / "cache", tmp / "out")]
            for i, p in enumerate(chosen[args.photos :], args.photos):
                os.link(p, folder / f"{i:05d}{p.suffix}")
            lines.append(f"{args.photos + args.add} files %.2f s (%s)" % run(folder, tmp / "cache", tmp / "out"))
            for i in range(args.photos, args.photos + args.add):
                os.remove(folder / f"{i:05d}{chosen[i].suffix}")
            lines.append(f"{args.photos} again %.2f s (%s)" % run(folder, tmp / "cache", tmp / "out"))
            shutil.rmtree(tmp / "cache")
        print(f"round {r + 1}: " + "; ".join(lines), flush=True)


if __name__ == "__main__":
    main()
