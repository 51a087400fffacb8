"""Reruns after the collection changed, against a run from scratch, on one corpus.

On a copy of a corpus made of hard links (the corpus itself is never written), with the
configuration of ``difpy -s similar``: a run from scratch; a rerun with nothing changed;
one new file that sorts first; then in turn 1 % new files (spread over the folders, a third
of them named to sort first, a tenth exact copies of photos there, the rest new photos:
mirrored and brightened copies, which match nothing at ``similar``), 1 % of the files
removed, and 1 % replaced by other photos (a new file under the old name), each followed
by a plain rerun. Printed: seconds, the ratio to the run from scratch, the thumbnail jobs
that ran and the files they decoded, the compare jobs that ran and the pairs taken from the
last run, and, with ``--check``, whether the database equals one
made from scratch over the same files.

    .venv/bin/python bench/growing.py /tmp/wall-64k --check
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import Corpus, snakemake_command, workflow_config  # noqa: E402


def run(work: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            *snakemake_command(work),
            "--quiet",
            "all",
            "--cores",
            str(os.cpu_count()),
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def decoded_again(work: Path, results: str, since: float) -> tuple[int, int, int, int]:
    """Files decoded by the thumbnail jobs that ran after ``since`` (not taken from kept
    thumbnails), of all their files; those jobs, of all shards."""
    decoded = total = jobs = 0
    logs = list((work / results / "logs" / "thumbnails").glob("make_thumbnails_*.log"))
    for log in logs:
        if log.stat().st_mtime < since:
            continue
        jobs += 1
        for a, b in re.findall(r"(\d+) of (\d+) files taken from the last run", log.read_text()):
            decoded, total = decoded + int(b) - int(a), total + int(b)
    return decoded, total, jobs, len(logs)


def compare_work(work: Path, results: str, since: float) -> str:
    """The compare jobs that ran after ``since``, and the pairs the plan took from the last
    run instead (fast_diff_py._carry)."""
    logs = work / results / "logs" / "compare"
    jobs = sum(1 for log in logs.glob("compare_blocks_*.log") if log.stat().st_mtime >= since)
    plan = logs / "plan_blocks.log"
    found = None
    if plan.exists() and plan.stat().st_mtime >= since:
        found = re.search(
            r"(\d+) of (\d+) decoded files unchanged since the kept run: (\d+) of their pairs", plan.read_text()
        )
    carried = f", {found[3]} pairs of {found[1]} unchanged files taken again" if found else ""
    return f"{jobs} compare jobs{carried}"


def stage_seconds(work: Path, results: str, since: float) -> str:
    """The seconds of the jobs that ran after ``since`` (their benchmark files), per stage;
    the rest of a run is Snakemake's start, its DAG and the jobs' starts."""
    per: dict[str, list[float]] = {}
    for bench in sorted((work / results / "benchmarks").rglob("*.tsv")):
        if bench.stat().st_mtime >= since:
            seconds = float(bench.read_text().splitlines()[1].split("\t")[0])
            per.setdefault(bench.stem.rstrip("_0123456789"), []).append(seconds)
    return ", ".join(f"{name} {sum(s):.2f}" + (f" ({len(s)} jobs)" if len(s) > 1 else "") for name, s in per.items())


def rows(db: Path) -> list:
    con = sqlite3.connect(db)
    try:
        return [con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ("directory", "dif_table")]
    finally:
        con.close()


def new_photo(source: Path, target: Path, seed: int) -> None:
    img = cv2.imread(str(source), cv2.IMREAD_COLOR)
    if img is None:  # a file of the corpus that is no photo (cut short, empty, text)
        img = cv2.resize(np.random.default_rng(seed).integers(0, 256, (6, 8, 3), np.uint8), (400, 300))
    img = cv2.flip(img, 1)
    img = cv2.convertScaleAbs(img, alpha=1.0, beta=20 + seed % 30)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(cv2.imencode(target.suffix, img)[1].tobytes())
    os.replace(tmp, target)  # a new file: never written through a link into the corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--check", action="store_true", help="compare each database with one from scratch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--spread-names",
        action="store_true",
        help="name each new file after the photo it is made from (IMG_1234_new.jpg), so that new files "
        "sort among the old ones in every shard, instead of new_00001.jpg, ... (together)",
    )
    ap.add_argument("--stages", action="store_true", help="print each run's seconds per stage (its summary.json)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    corpus = Corpus(args.corpus)
    tmp = Path(tempfile.mkdtemp(prefix="fastdiff-growing-"))
    photos = tmp / "photos"
    for folder in corpus.folders:  # hard links: the corpus is only read
        shutil.copytree(folder, photos / folder.name, copy_function=os.link)
    grown = Corpus.__new__(Corpus)
    grown.folders = [photos / f.name for f in corpus.folders]
    grown.two = corpus.two
    cfg = workflow_config(grown, "difpy", 200.0, {})
    work = tmp / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    results = cfg["results_dir"]

    def images() -> list[Path]:
        return sorted(p for f in grown.folders for p in f.iterdir() if p.suffix.lower() in (".jpg", ".png"))

    def step(name: str, base: float | None) -> float:
        since = time.time()
        secs = run(work)
        again, total, jobs, shards = decoded_again(work, results, since)
        line = f"{name:28s} {secs:7.2f} s"
        if base:
            line += f"  {secs / base:6.3f} of scratch"
        line += (
            f"  {jobs} of {shards} thumbnail jobs, decoded {again} of their {total} files; "
            f"{compare_work(work, results, since)}"
        )
        if args.stages:
            line += f"\n{'':28s} stages (job s): {stage_seconds(work, results, since)}"
        if args.check and base:
            fresh = tmp / "fresh"
            shutil.rmtree(fresh, ignore_errors=True)
            fresh.mkdir()
            (fresh / "config.yaml").write_text(yaml.safe_dump(cfg))
            run(fresh)
            same = rows(work / cfg["db_path"]) == rows(fresh / cfg["db_path"])
            line += f"  database {'equals' if same else 'DIFFERS from'} a run from scratch"
        print(line, flush=True)
        return secs

    n = len(images())
    k = max(1, round(n * args.fraction))
    print(f"{n} images in {len(grown.folders)} folders; {k} files per change ({args.fraction:.0%})")
    scratch = step("from scratch", None)
    step("nothing changed", scratch)
    # one new file that sorts first: every key shifts
    first = next(p for p in images() if cv2.imread(str(p), cv2.IMREAD_COLOR) is not None)
    new_photo(first, first.parent / f"000_first{first.suffix}", 7)
    step("1 file added, sorting first", scratch)
    # 1 % new: a third sorting first, a tenth exact copies
    present = images()
    for i in range(k):
        source = rng.choice(present)
        if args.spread_names:
            name = f"{'000_' if i % 3 == 0 else ''}{source.stem}_new{i}{source.suffix}"
        else:
            name = f"{'000_' if i % 3 == 0 else ''}new_{i:05d}{source.suffix}"
        target = source.parent / name
        if i % 10 == 0:
            shutil.copyfile(source, target)
        else:
            new_photo(source, target, i)
    step(f"{k} files added", scratch)
    for path in rng.sample(images(), k):
        path.unlink()
    step(f"{k} files removed", scratch)
    present = images()
    for path in rng.sample(present, k):
        new_photo(rng.choice(present), path, rng.randrange(1000))
    step(f"{k} files replaced", scratch)
    print(f"work folder: {tmp}")


if __name__ == "__main__":
    main()
