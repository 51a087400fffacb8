"""What the gallery costs: a whole run with and without it, and the gallery of a rerun.

    python bench/gallery_cost.py share /tmp/wall-4000 --rounds 10
    python bench/gallery_cost.py pages WORKDIR --before /tmp/before --rounds 6

``share`` runs ``run_bench.py CORPUS --modes difpy --skip difpy,fast-diff-py,decode`` of this
checkout and of a copy of it with the gallery taken out (made in a temporary folder: the
thumbnail jobs make no previews, the merge job writes an empty ``index.html`` in place of the
gallery), alternating, and prints each round's seconds, the medians, their ratio and the median
of the rounds' ratios.

``pages`` calls ``make_report`` on the database of an earlier run in WORKDIR (a work folder
of ``growing.py``: ``results/fast_diff.db`` and the thumbnail jobs' previews), with this
checkout and with the checkout ``--before``, alternating, each in a fresh process and into its
own gallery folder (so that each finds its own last gallery), and prints the seconds of each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# the gallery taken out: (file, text, replacement); each text must be found once
WITHOUT_GALLERY = [
    ("src/fast_diff_py/_thumbnails.py", "preview=out_previews is not None,", "preview=False,"),
    (
        "src/fast_diff_py/_report.py",
        "    index = make_report(db_path, out_dir, threshold, threads=threads, previews=previews, storage=storage)\n",
        "    Path(out_dir).mkdir(parents=True, exist_ok=True)\n"
        "    index = Path(out_dir) / REPORT_INDEX\n"
        "    index.write_text('')\n",
    ),
]

PAGES = """
import glob, sys, time
from fast_diff_py._report import make_report
previews = sorted(glob.glob("results/work/thumbnails/*.previews.parquet"))
started = time.perf_counter()
make_report("results/fast_diff.db", sys.argv[1], float(sys.argv[2]), threads=2, previews=previews)
print(time.perf_counter() - started)
"""


def without_gallery(into: Path) -> Path:
    """A copy of this checkout's package, workflow and bench with the gallery taken out."""
    for part in ("src", "workflow", "bench", "config"):
        shutil.copytree(REPO / part, into / part, ignore=shutil.ignore_patterns("__pycache__"))
    for name, text, replacement in WITHOUT_GALLERY:
        path = into / name
        source = path.read_text()
        if source.count(text) != 1:
            sys.exit(f"{name}: the text to replace is not there once; update WITHOUT_GALLERY")
        path.write_text(source.replace(text, replacement))
    return into


def run_seconds(checkout: Path, corpus: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(checkout / "src")
    cmd = [sys.executable, str(checkout / "bench" / "run_bench.py"), str(corpus)]
    cmd += ["--modes", "difpy", "--skip", "difpy,fast-diff-py,decode"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("fast-diff difpy "))
    return float(line.split()[2])


def share(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="fastdiff-nogallery-") as tmp:
        other = without_gallery(Path(tmp))
        rounds = []
        for n in range(args.rounds):
            with_it, without = run_seconds(REPO, args.corpus), run_seconds(other, args.corpus)
            rounds.append((with_it, without))
            print(f"round {n + 1}: with the gallery {with_it:.2f} s, without {without:.2f} s", flush=True)
    a, b = (statistics.median(c) for c in zip(*rounds))
    ratios = statistics.median(x / y for x, y in rounds)
    print(f"medians: with {a:.2f} s, without {b:.2f} s, ratio {a / b:.3f}; median of the rounds' ratios {ratios:.3f}")


def pages(args: argparse.Namespace) -> None:
    times: dict[str, list[float]] = {"before": [], "this": []}
    trees = {"before": args.before, "this": REPO}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": str(tree / "src")}
            gallery = Path(tempfile.gettempdir()) / f"fastdiff-gallery-{name}"
            out = subprocess.run(
                [sys.executable, "-c", PAGES, str(gallery), str(args.threshold)],
                cwd=args.workdir,
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
            times[name].append(float(out.split()[-1]))
    for name, values in times.items():
        shown = " / ".join(f"{v:.2f}" for v in values)
        print(f"{name:7s}{shown} s   median {statistics.median(values):.2f} s")
    print("(a gallery folder of its own for each: a first call finds no last gallery to take pages from)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("share")
    s.add_argument("corpus", type=Path)
    s.add_argument("--rounds", type=int, default=10)
    p = sub.add_parser("pages")
    p.add_argument("workdir", type=Path)
    p.add_argument("--before", type=Path, required=True, help="another checkout (its src is put first)")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--threshold", type=float, default=15.0)
    args = parser.parse_args()
    share(args) if args.what == "share" else pages(args)


if __name__ == "__main__":
    main()
