"""One Snakemake run on a work folder, timed whole, with each job that ran placed on its
timeline: when it started and ended after Snakemake's own start, and the gap before it
(Snakemake's start, its walk and DAG, its scheduling). Made for reruns after a change.

    python bench/rerun_timeline.py WORKDIR                 # this checkout's workflow
    python bench/rerun_timeline.py WORKDIR --repo /tmp/before
    PYTHONPATH=/tmp/before/src python bench/rerun_timeline.py WORKDIR --repo /tmp/before

WORKDIR holds the ``config.yaml`` of an earlier run (``growing.py`` leaves one in its work
folder). A job's times come from its benchmark file (written when it ends, with its
seconds); jobs whose benchmark file is older than the run did not run. The work of a
thumbnail or compare job is the span of its log, from its first line (written once its
imports are done) to its last; their work together is what making the new files' thumbnails
and comparing them takes without Snakemake and the jobs' starts, which the total is
measured against.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--repo", type=Path, default=REPO, help="the checkout whose workflow runs")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    work = args.workdir.resolve()
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(args.repo / "workflow" / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(work / "config.yaml"),
        "--quiet",
        "all",
        "--cores",
        str(args.cores),
    ]
    t0 = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True)
    t1 = time.time()
    if done.returncode:
        sys.exit(f"snakemake failed ({done.returncode}):\n{done.stderr[-2000:]}")
    rows = []
    for bench in work.rglob("benchmarks/**/*.tsv"):
        ended = bench.stat().st_mtime
        if ended >= t0:
            seconds = float(bench.read_text().splitlines()[1].split("\t")[0])
            rows.append((ended - seconds - t0, ended - t0, bench.stem))
    rows.sort()
    last = 0.0
    new_work = 0.0
    logs = _log_dirs(work)
    for start, end, name in rows:
        spent = _log_span(logs, name) if name.startswith(("make_thumbnails", "compare_blocks")) else None
        shown = f"  work {spent:5.2f}" if spent is not None else ""
        print(f"{name:32s} start {start:6.2f}  end {end:6.2f}  (gap {start - last:5.2f}){shown}")
        last = max(last, end)
        new_work += spent or 0.0
    print(f"total {t1 - t0:.2f}  after the last job {t1 - t0 - last:.2f}")
    if new_work:
        print(
            f"thumbnails and comparisons of the new files: {new_work:.2f} s of work in their jobs' logs; "
            f"the rerun took {(t1 - t0) / new_work:.1f}x that"
        )


def _log_dirs(work: Path) -> list[Path]:
    return [p for p in work.rglob("logs") if p.is_dir()]


def _log_span(log_dirs: list[Path], name: str) -> float | None:
    """Seconds from the first to the last line of the job's log (timestamps to the ms)."""
    for folder in log_dirs:
        for log in folder.rglob(f"{name}.log"):
            stamps = [
                datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                for line in log.read_text(errors="replace").splitlines()
                if len(line) > 23 and line[4] == "-" and line[19] == ","
            ]
            if stamps:
                return (stamps[-1] - stamps[0]).total_seconds()
    return None


if __name__ == "__main__":
    main()
