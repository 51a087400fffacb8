"""Reruns after removals, replacements and additions, this checkout against another, in turn.

Each side gets a copy of the corpus of its own (real copies, not hard links: a hard link
changes every linked file's inode change time, and so the version of every file the other
side has indexed) and runs once from scratch; then in each round, for each side (which side
goes first alternating), 640 files (``--count``) are removed, 640 replaced by other photos
and 640 added (a third named to sort first, a tenth exact copies), each followed by a plain
rerun. Prints each rerun's seconds, then the medians of each change and their ratio.

    python bench/growing_pair.py /tmp/wall-64k --before /tmp/beforeK --rounds 4

The copies and work folders stay in ``--out`` (each about the corpus' size), and a later call
with the same ``--out`` goes on from them without a run from scratch.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from growing import new_photo  # noqa: E402
from run_bench import Corpus, workflow_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHANGES = ("removed", "replaced", "added")


def run(repo: Path, work: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    snakefile = str(repo / "workflow" / "Snakefile")
    config = str(work / "config.yaml")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", snakefile, "--directory", str(work)]
    cmd += ["--configfile", config]
    started = time.perf_counter()
    subprocess.run([*cmd, "--quiet", "all", "--cores", "2"], check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def images(base: Path) -> list[Path]:
    return sorted(p for f in (base / "photos").iterdir() for p in f.iterdir() if p.suffix.lower() in (".jpg", ".png"))


def change(base: Path, what: str, count: int, seed: int) -> None:
    rng = random.Random(seed)
    present = images(base)
    if what == "removed":
        for path in rng.sample(present, count):
            path.unlink()
    elif what == "replaced":
        for path in rng.sample(present, count):
            new_photo(rng.choice(present), path, rng.randrange(1000))
    else:
        for i in range(count):
            source = rng.choice(present)
            target = source.parent / f"{'000_' if i % 3 == 0 else ''}r{seed}_new_{i:05d}{source.suffix}"
            if i % 10 == 0:
                shutil.copyfile(source, target)
            else:
                new_photo(source, target, i)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--before", type=Path, required=True, help="the other checkout (its workflow and package)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--count", type=int, default=640)
    ap.add_argument("--out", type=Path, default=Path("/tmp/growing-pair"))
    args = ap.parse_args()
    sides = {"before": args.before.resolve(), "after": REPO}
    corpus = Corpus(args.corpus)
    for side, repo in sides.items():
        base = args.out / side
        if (base / "work" / "results").exists():
            continue
        shutil.rmtree(base, ignore_errors=True)
        for folder in corpus.folders:
            shutil.copytree(folder, base / "photos" / folder.name)
        grown = Corpus.__new__(Corpus)
        grown.folders = [base / "photos" / f.name for f in corpus.folders]
        grown.two = corpus.two
        (base / "work").mkdir(parents=True)
        (base / "work" / "config.yaml").write_text(yaml.safe_dump(workflow_config(grown, "difpy", 200.0, {})))
        print(f"{side:6s} from scratch {run(repo, base / 'work'):7.2f} s", flush=True)
    seconds: dict[tuple[str, str], list[float]] = {}
    for r in range(1, args.rounds + 1):
        order = list(sides) if r % 2 else list(reversed(sides))
        for side in order:
            base = args.out / side
            for what in CHANGES:
                change(base, what, args.count, seed=r * 1000 + CHANGES.index(what))
                secs = run(sides[side], base / "work")
                seconds.setdefault((what, side), []).append(secs)
                print(f"round {r} {side:6s} {what:8s} {secs:6.2f} s", flush=True)
    for what in CHANGES:
        before, after = statistics.median(seconds[(what, "before")]), statistics.median(seconds[(what, "after")])
        print(f"{what:8s} before {before:6.2f} s  after {after:6.2f} s  {after / before:.2f}x")


if __name__ == "__main__":
    main()
