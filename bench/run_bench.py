"""fast-diff against difPy 4.2.1 and fast-diff-py 1.0.4 on one corpus, in one run.

For each tool: wall seconds, pairs per second, peak memory of the whole process tree (sum of
the resident sizes of every process, sampled every 50 ms: an upper bound, shared pages count
once per process) and, where the tool reports pairs, precision and recall against the
corpus's known near-duplicates (per transform for fast-diff). Ratios are against fast-diff.

- fast-diff, ``difpy`` mode: the workflow with the configuration the ``difpy`` command builds
  (``similar``: dif <= 15, S = 50, default ``thumbnail_method``), one Snakemake run; stage
  times from the jobs' benchmark files (wall span of each stage, job count).
- fast-diff, ``compat`` mode: fast-diff-py's pixels and threshold (``--fdp-threshold``), every
  pair; its compare stage's pairs per second is the one to set against fast-diff-py's.
- difPy ``similar`` with its defaults; above ``--difpy-max`` files it runs on a subset and its
  time is extrapolated (build linear, search quadratic in the files).
- fast-diff-py every pair; above ``--fdp-max`` files it runs on a subset and is extrapolated
  the same way (its comparison is quadratic).
- decode only: every file decoded at full size with OpenCV by a pool of ``--cores``
  processes, the floor for any tool that looks at every pixel.
- decode simplejpeg: the same with fast-diff's own full-size decoding (``decode_image``:
  simplejpeg for plain JPEGs, OpenCV for the rest), the floor for fast-diff's ``area`` method.

    python bench/make_wallpaper_corpus.py /tmp/wall-4000 --originals 4000 --dup-fraction 0.3
    .venv/bin/python bench/run_bench.py /tmp/wall-4000 --repeat 3
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
STAGES = {
    "index_files": "index",
    "make_thumbnails": "thumbnails",
    "plan_blocks": "plan",
    "match_hashes": "compare",
    "compare_blocks": "compare",
    "compare_blocks_gpu": "compare",
    "merge_database": "merge",
    "difpy": "merge",
}


def measured(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; return wall seconds, peak RSS (MiB) summed over its process tree, stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, total)
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}")
    return wall, peak / 2**20, out


# ---------------------------------------------------------------- the corpus and its truth


class Corpus:
    def __init__(self, root: Path):
        self.root = root
        self.truth = json.loads((root / "truth.json").read_text())
        photos = root / "photos"
        self.two = self.truth.get("partitions", 1) == 2
        self.folders = [photos / "a", photos / "b"] if self.two else [photos]
        self.files = sorted(str(p) for f in self.folders for p in f.rglob("*") if p.is_file())
        self.broken = set(self.truth["broken"])
        self.pairs = {frozenset((p["original"], p["duplicate"])): p["transform"] for p in self.truth["pairs"]}

    def candidate_pairs(self, n_ok: int | None = None) -> int:
        """Pairs a tool comparing everything must look at (decodable files only)."""
        if self.two:
            a = sum(1 for f in self.files if f.startswith(str(self.folders[0]) + "/") and f not in self.broken)
            return a * (len(self.files) - len(self.broken) - a)
        n = n_ok if n_ok is not None else len(self.files) - len(self.broken)
        return n * (n - 1) // 2

    def score(self, found: set[frozenset]) -> dict:
        hits = {p: p in found for p in self.pairs}
        tp = sum(hits.values())
        per: dict[str, list[bool]] = {}
        for p, t in self.pairs.items():
            per.setdefault(t, []).append(hits[p])
        return {
            "precision": tp / len(found) if found else 1.0,
            "recall": tp / len(self.pairs),
            "found": len(found),
            "per_transform": {t: sum(v) / len(v) for t, v in per.items()},
            # distinct framings of one scene (make_wallpaper_corpus --transforms lookalike)
            "lookalike_found": sum(1 for p in found if any("_lookalike_" in f for f in p)),
            "lookalikes": sum(1 for f in self.files if "_lookalike_" in f),
        }

    def subset(self, m: int, where: Path) -> tuple[list[Path], int]:
        """Hard links to the first ``m`` files (per partition), for extrapolated runs."""
        shutil.rmtree(where, ignore_errors=True)
        out = []
        for i, folder in enumerate(self.folders):
            dest = where / f"p{i}"
            dest.mkdir(parents=True)
            files = [f for f in self.files if f.startswith(str(folder) + "/") and f not in self.broken]
            for f in files[: m // len(self.folders)]:
                os.link(f, dest / Path(f).name)
            out.append(dest)
        return out, sum(1 for d in out for _ in d.iterdir())


# ---------------------------------------------------------------- fast-diff


def workflow_config(corpus: Corpus, mode: str, fdp_threshold: float, overrides: dict) -> dict:
    from fast_diff_py.cli.difpy import build_parser
    from fast_diff_py.cli.difpy import workflow_config as difpy_config

    if mode == "difpy":
        args = build_parser().parse_args(["-D", *map(str, corpus.folders), "-s", "similar"])
        cfg = difpy_config(args, Path("progress"))
        cfg.pop("exclude_paths")
    else:
        cfg = {
            "part_a": [str(corpus.folders[0])],
            "thumbnail_method": "compat",
            "first_loop": {"compute_hash": False},
            "second_loop": {"diff_threshold": fdp_threshold},
        }
    if corpus.two:
        cfg["part_a"], cfg["part_b"] = [str(corpus.folders[0])], [str(corpus.folders[1])]
    cfg["db_path"], cfg["results_dir"] = "results/fast_diff.db", "results/work"
    cfg.update(overrides)
    return cfg


def stage_times(work: Path) -> dict[str, dict]:
    """Wall span, job count and peak job RSS of each stage from Snakemake's benchmark files."""
    spans: dict[str, list] = {}
    for tsv in (work / "results" / "work" / "benchmarks").rglob("*.tsv"):
        rule = next((r for r in sorted(STAGES, key=len, reverse=True) if tsv.stem.startswith(r)), None)
        if rule is None:
            continue
        with open(tsv) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        end = tsv.stat().st_mtime
        secs = float(row["s"])
        rss = float(row["max_rss"]) if row.get("max_rss") not in (None, "", "NA", "-") else 0.0
        spans.setdefault(STAGES[rule], []).append((end - secs, end, secs, rss))
    return {
        stage: {
            "span": max(e for _, e, _, _ in v) - min(s for s, _, _, _ in v),
            "jobs": len(v),
            "job_seconds": sum(x for _, _, x, _ in v),
            "max_job_rss": max(r for *_, r in v),
        }
        for stage, v in spans.items()
    }


def snakemake_command(work: Path) -> list[str]:
    """Snakemake on this checkout's workflow, in ``work`` with its ``config.yaml``."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "workflow" / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(work / "config.yaml"),
    ]


def run_fast_diff(corpus: Corpus, mode: str, cores: int, fdp_threshold: float, tmp: Path, overrides: dict) -> dict:
    work = tmp / f"fast-diff-{mode}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cfg = workflow_config(corpus, mode, fdp_threshold, overrides)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    wall, peak, _ = measured(
        [
            *snakemake_command(work),
            "--quiet",
            "all",
            "--cores",
            str(cores),
            "all",
        ]
    )
    con = sqlite3.connect(work / cfg["db_path"])
    paths = dict(con.execute("SELECT key, path FROM directory"))
    n_ok = con.execute("SELECT count(*) FROM directory WHERE success = 1").fetchone()[0]
    found = {
        frozenset((os.path.realpath(paths[a]), os.path.realpath(paths[b])))
        for a, b in con.execute("SELECT key_a, key_b FROM dif_table WHERE success = 1")
    }
    con.close()
    stages = stage_times(work)
    compare = stages.get("compare", {}).get("span", 0.0) + stages.get("plan", {}).get("span", 0.0)
    pairs = corpus.candidate_pairs(n_ok)
    return {
        "wall": wall,
        "peak_mib": peak,
        "stages": stages,
        "pairs": pairs,
        "compare_pairs_per_s": pairs / compare if compare else math.nan,
        "pairs_per_s": pairs / wall,
        **corpus.score(found),
    }


# ---------------------------------------------------------------- the reference tools


def extrapolate(
    measured_parts: dict, linear: list[str], quadratic: list[str], m: int, n: int, pairs_m: int, pairs_n: int
) -> float:
    return sum(measured_parts[k] for k in linear) * n / m + sum(measured_parts[k] for k in quadratic) * pairs_n / max(
        pairs_m, 1
    )


def run_difpy(corpus: Corpus, cores: int, tmp: Path, anchor: str, limit: int) -> dict:
    n = len(corpus.files) - len(corpus.broken)
    full = n <= limit
    folders, m = (corpus.folders, n) if full else corpus.subset(limit, tmp / "difpy-subset")
    out = tmp / "difpy_pairs.json"
    wall, peak, stdout = measured(
        [anchor, str(BENCH / "run_difpy.py"), str(out), "similar", str(cores), *map(str, folders)], cwd=tmp
    )
    parts = json.loads(stdout.strip().splitlines()[-1])
    res = {"peak_mib": peak, "extrapolated_from": None if full else m}
    if full:
        found = {frozenset(p) for p in json.loads(out.read_text())}
        res.update(wall=wall, pairs_per_s=corpus.candidate_pairs() / wall, **corpus.score(found))
    else:
        est = (
            wall
            - parts["build"]
            - parts["search"]
            + extrapolate(parts, ["build"], ["search"], m, n, m * (m - 1) // 2, corpus.candidate_pairs())
        )
        res.update(wall=est, pairs_per_s=corpus.candidate_pairs() / est)
    return res


def run_fast_diff_py(corpus: Corpus, cores: int, threshold: float, tmp: Path, anchor: str, limit: int) -> dict:
    n = len(corpus.files) - len(corpus.broken)
    full = n <= limit
    folders, m = (corpus.folders, n) if full else corpus.subset(limit, tmp / "fdp-subset")
    work = tmp / "fdp"
    wall, peak, stdout = measured(
        [anchor, str(BENCH / "run_fast_diff_py.py"), str(work), str(threshold), str(cores), *map(str, folders)]
    )
    parts = json.loads(stdout.strip().splitlines()[-1])
    if corpus.two:
        half = m // 2
        pairs_m = half * (m - half)
    else:
        pairs_m = m * (m - 1) // 2
    res = {
        "peak_mib": peak,
        "extrapolated_from": None if full else m,
        "compare_pairs_per_s": pairs_m / parts["second_loop"],
    }
    if full:
        con = sqlite3.connect(work / "fast_diff_py.db")
        paths = dict(con.execute("SELECT key, path FROM directory"))
        found = {
            frozenset((os.path.realpath(paths[a]), os.path.realpath(paths[b])))
            for a, b in con.execute("SELECT key_a, key_b FROM dif_table WHERE success = 1")
        }
        con.close()
        res.update(wall=wall, pairs_per_s=corpus.candidate_pairs() / wall, **corpus.score(found))
    else:
        est = (
            wall
            - sum(parts.values())
            + extrapolate(parts, ["index", "first_loop"], ["second_loop"], m, n, pairs_m, corpus.candidate_pairs())
        )
        res.update(wall=est, pairs_per_s=corpus.candidate_pairs() / est)
    return res


def _decode(path: str) -> bool:
    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    with open(path, "rb") as fh:
        data = fh.read()
    return data != b"" and cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None


def _decode_ours(path: str) -> bool:
    import cv2

    from fast_diff_py import ImageReadError, decode_image

    cv2.setNumThreads(1)
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        decode_image(data)  # raises for anything it cannot decode, an empty file included
    except ImageReadError:
        return False
    return True


def decode_only(corpus: Corpus, cores: int, decode=_decode) -> float:
    files = [f for f in corpus.files if f not in corpus.broken]
    start = time.perf_counter()
    with ProcessPoolExecutor(cores) as pool:
        ok = sum(pool.map(decode, files, chunksize=64))
    assert ok == len(files), f"{len(files) - ok} files failed to decode"
    return time.perf_counter() - start


# ---------------------------------------------------------------- report


def fmt_rate(x: float) -> str:
    return "-" if not x == x else (f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k" if x >= 1e3 else f"{x:.0f} ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool; medians are printed")
    ap.add_argument("--modes", default="difpy,compat", help="fast-diff modes to run")
    ap.add_argument("--fdp-threshold", type=float, default=200.0)
    ap.add_argument("--difpy-max", type=int, default=6000, help="above this many files difPy is extrapolated")
    ap.add_argument("--fdp-max", type=int, default=300, help="above this many files fast-diff-py is extrapolated")
    ap.add_argument("--skip", default="", help="comma list of tools to skip: difpy, fast-diff-py, decode")
    ap.add_argument("--anchor-python", default="/tmp/anchor-venv/bin/python")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=YAML",
        help="override a top-level key of fast-diff's configuration, e.g. block_size=4096",
    )
    ap.add_argument("--keep", action="store_true", help="keep the work folders (printed at the end)")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    args = ap.parse_args()
    corpus = Corpus(args.corpus.resolve())
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    skip = set(filter(None, args.skip.split(",")))
    if corpus.two:
        skip.add("difpy")  # difPy has no partitions
    tmp = Path(tempfile.mkdtemp(prefix="fastdiff-bench-"))
    runs: dict[str, list[dict]] = {}
    for _ in range(args.repeat):
        for mode in args.modes.split(","):
            runs.setdefault(f"fast-diff {mode}", []).append(
                run_fast_diff(corpus, mode, args.cores, args.fdp_threshold, tmp, overrides)
            )
        if "difpy" not in skip:
            runs.setdefault("difPy similar", []).append(
                run_difpy(corpus, args.cores, tmp, args.anchor_python, args.difpy_max)
            )
        if "fast-diff-py" not in skip:
            runs.setdefault("fast-diff-py", []).append(
                run_fast_diff_py(corpus, args.cores, args.fdp_threshold, tmp, args.anchor_python, args.fdp_max)
            )
        if "decode" not in skip:
            runs.setdefault("decode only", []).append({"wall": decode_only(corpus, args.cores)})
            runs.setdefault("decode simplejpeg", []).append({"wall": decode_only(corpus, args.cores, _decode_ours)})

    def med(tool: str, key: str) -> float:
        vals = [r[key] for r in runs[tool] if key in r and r[key] is not None]
        return statistics.median(vals) if vals else math.nan

    n = len(corpus.files)
    print(
        f"corpus {corpus.root}: {n} files ({len(corpus.broken)} broken), {len(corpus.pairs)} known pairs, "
        f"{'two partitions, ' if corpus.two else ''}{corpus.candidate_pairs():,} candidate pairs; "
        f"{args.cores} cores, {args.repeat} run(s), medians"
    )
    ours = "fast-diff difpy" if "fast-diff difpy" in runs else next(iter(runs))
    base = med(ours, "wall")
    print(
        f"{'tool':18s} {'seconds':>9s} {'x ' + ours:>18s} {'pairs/s':>10s} {'peak MiB':>9s} "
        f"{'precision':>9s} {'recall':>7s}"
    )
    for tool, rs in runs.items():
        extra = rs[0].get("extrapolated_from")
        note = f"  (extrapolated from {extra} files)" if extra else ""
        print(
            f"{tool:18s} {med(tool, 'wall'):9.2f} {med(tool, 'wall') / base:17.2f}x "
            f"{fmt_rate(med(tool, 'pairs_per_s')):>10s} {med(tool, 'peak_mib'):9.0f} "
            f"{med(tool, 'precision'):9.3f} {med(tool, 'recall'):7.3f}{note}"
        )
    for tool, rs in runs.items():
        if "stages" in rs[0]:
            st = rs[len(rs) // 2]["stages"]
            print(
                f"  {tool} stages (wall span s / jobs): "
                + ", ".join(f"{k} {v['span']:.2f}/{v['jobs']}" for k, v in st.items())
                + f"; compare stage {fmt_rate(med(tool, 'compare_pairs_per_s'))}pairs/s"
            )
        if "per_transform" in rs[0]:
            print(
                f"  {tool} recall per transform: "
                + ", ".join(f"{t} {v:.2f}" for t, v in rs[0]["per_transform"].items())
            )
        if rs[0].get("lookalikes"):
            print(
                f"  {tool}: {rs[0]['lookalike_found']} pairs found with one of the {rs[0]['lookalikes']} "
                "look-alike framings (distinct photos: each one is a false match)"
            )
    if "fast-diff compat" in runs and "fast-diff-py" in runs:
        r = med("fast-diff compat", "compare_pairs_per_s") / med("fast-diff-py", "compare_pairs_per_s")
        print(
            f"compare stage, compat mode: fast-diff {fmt_rate(med('fast-diff compat', 'compare_pairs_per_s'))}"
            f"pairs/s vs fast-diff-py {fmt_rate(med('fast-diff-py', 'compare_pairs_per_s'))}pairs/s = {r:,.0f}x"
        )
    if "decode only" in runs:
        print(
            f"{ours} end to end / decode only: {base / med('decode only', 'wall'):.2f}x, "
            f"/ decode simplejpeg: {base / med('decode simplejpeg', 'wall'):.2f}x"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"corpus": str(corpus.root), "files": n, "cores": args.cores, "runs": runs}, indent=1, default=str
            )
        )
    if args.keep:
        print(f"work folders kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
