"""fast-diff against fast-diff-py 1.0.4 and difPy 4.2.1 on the same photos, in one run.

Checks that, in fast-diff-py compatible mode (cubic thumbnails, every pair compared, no hash
or aspect filter), fast-diff stores the same pairs with the same ``dif`` values as
fast-diff-py, and prints the wall time and peak memory (largest process) of each tool with
the ratios. Medians over ``--repeat`` runs.

    python bench/make_corpus.py /tmp/corpus            # in an env with scikit-image
    .venv/bin/python bench/compare_anchor.py /tmp/corpus/photos --repeat 3

The reference tools run in their own virtual environment (``--anchor-python``), set up as
in ../shared/reference/ANCHOR-TOOLS.md.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"


def measured(cmd: list[str], **kw) -> tuple[float, float, str]:
    """Run ``cmd``; return wall seconds, peak RSS (MiB) of its largest process, and stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    streams: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda n=n, f=f: streams.__setitem__(n, f.read()))
        for n, f in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for t in readers:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)  # usage covers the process and its descendants
    wall = time.perf_counter() - start
    for t in readers:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed:\n{streams['out'][-2000:]}\n{streams['err'][-4000:]}")
    return wall, usage.ru_maxrss / 1024, streams["out"]


def run_ours(photos: Path, work: Path, threshold: float, cores: int, method: str) -> tuple[float, float]:
    work.mkdir(parents=True, exist_ok=True)
    cfg = {
        "part_a": [str(photos)],
        "second_loop": {"diff_threshold": threshold},
        "first_loop": {"compute_hash": False},
        "thumbnail_method": method,
    }
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    wall, rss, _ = measured(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "workflow" / "Snakefile"),
            "--directory",
            str(work),
            "--configfile",
            str(work / "config.yaml"),
            "--cores",
            str(cores),
            "--quiet",
            "all",
        ]
    )
    return wall, rss


def pairs(db: Path) -> tuple[dict[frozenset, float], dict[str, str]]:
    con = sqlite3.connect(db)
    paths = dict(con.execute("SELECT key, path FROM directory"))
    rows = con.execute("SELECT key_a, key_b, dif, success FROM dif_table").fetchall()
    errors = {p: e for p, e in con.execute("SELECT path, error FROM directory WHERE error IS NOT NULL")}
    con.close()

    def full(p):  # fast-diff-py stores paths as given; ours are absolute
        return os.path.realpath(p)

    out = {frozenset((full(paths[a]), full(paths[b]))): dif for a, b, dif, ok in rows if ok == 1}
    return out, {full(p): e for p, e in errors.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path)
    ap.add_argument("--threshold", type=float, default=200.0)
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--anchor-python", default="/tmp/anchor-venv/bin/python")
    ap.add_argument("--skip-difpy", action="store_true")
    args = ap.parse_args()
    photos = args.photos.resolve()
    n_files = sum(1 for p in photos.rglob("*") if p.is_file())
    tmp = Path(tempfile.mkdtemp(prefix="fastdiff-bench-"))
    times: dict[str, list[float]] = {"fast-diff": [], "fast-diff-py": [], "difPy": []}
    rss: dict[str, float] = {}
    for r in range(args.repeat):
        wall, peak, out = measured(
            [
                args.anchor_python,
                str(BENCH / "run_fast_diff_py.py"),
                str(tmp / "fdp"),
                str(args.threshold),
                str(args.cores),
                str(photos),
            ]
        )
        times["fast-diff-py"].append(wall)
        rss["fast-diff-py"] = peak
        if not args.skip_difpy:
            wall, peak, out = measured(
                [
                    args.anchor_python,
                    str(BENCH / "run_difpy.py"),
                    str(tmp / "difpy_pairs.json"),
                    "similar",
                    str(args.cores),
                    str(photos),
                ],
                cwd=tmp,
            )
            times["difPy"].append(wall)
            rss["difPy"] = peak
        work = tmp / f"ours_{r}"
        wall, rss["fast-diff"] = run_ours(photos, work, args.threshold, args.cores, "compat")
        times["fast-diff"].append(wall)
    theirs, their_errors = pairs(tmp / "fdp" / "fast_diff_py.db")
    ours, our_errors = pairs(tmp / "ours_0" / "results" / "fast_diff.db")
    same = [k for k in ours if k in theirs and ours[k] == theirs[k]]
    differ = [k for k in ours if k in theirs and ours[k] != theirs[k]]
    only_theirs = [k for k in theirs if k not in ours]
    only_ours = [k for k in ours if k not in theirs]
    print(f"corpus: {photos} ({n_files} files), threshold {args.threshold}, {args.cores} cores, {args.repeat} run(s)")
    print(f"pairs stored: fast-diff-py {len(theirs)}, fast-diff {len(ours)}")
    print(f"  same pair, identical dif: {len(same)}; same pair, different dif: {len(differ)}")
    print(f"  only fast-diff-py: {len(only_theirs)}; only fast-diff: {len(only_ours)}")
    unexplained = [k for k in only_theirs if not any(p in our_errors for p in k)]
    for k in only_theirs[:10]:
        why = [f"{os.path.basename(p)}: {our_errors[p]}" for p in k if p in our_errors]
        print(
            f"    only fast-diff-py: {sorted(os.path.basename(p) for p in k)} dif={theirs[k]} "
            f"{'(fast-diff: ' + '; '.join(why) + ')' if why else ''}"
        )
    for k in (differ + only_ours)[:10]:
        print(f"    MISMATCH {sorted(os.path.basename(p) for p in k)} ours={ours[k]} theirs={theirs.get(k)}")
    print(f"undecodable files (errors in fast-diff): {len(our_errors)}")
    print("wall seconds, median (all runs) | peak RSS MiB of the largest process")
    base = statistics.median(times["fast-diff"])
    for tool, ts in times.items():
        if ts:
            med = statistics.median(ts)
            print(
                f"  {tool:13s} {med:8.2f}  ({', '.join(f'{t:.2f}' for t in ts)})"
                f"  ratio to fast-diff {med / base:6.2f}x  | {rss.get(tool, float('nan')):.0f}"
            )
    ok = not differ and not only_ours and not unexplained
    print("EXACT MATCH with fast-diff-py (apart from undecodable files)" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
