"""What any rerun through Snakemake costs before it does any work of its own, on this machine.

Two figures, medians of ``--rounds`` runs, each in a fresh Snakemake process:

- ``empty chain of K``: a workflow of K rules one after another, each a ``script:`` that
  only writes its output, run after its first input got new contents (so all K run); K = 0 is
  Snakemake's start, its DAG and its end with nothing to run. The difference per job is what
  Snakemake spends on one job: its Python start, the script's preamble, the scheduling and
  the job's metadata.
- with WORKDIR (a finished run's work folder, as ``growing.py`` leaves one): this workflow's
  rerun with nothing changed, which adds the stat walk of the folders to Snakemake's start.

The floor of a rerun that runs this workflow's five stages one after another (index,
thumbnails, plan, compare, merge) is the empty chain of five plus what the rerun with nothing
changed spends over the empty workflow (the walk), before the jobs do anything. With
``--scratch S`` (a run from scratch of the same corpus, in seconds) and ``--new-work W`` (the
new files' thumbnails and comparisons, as ``rerun_timeline.py`` prints them), it is set
against a tenth of S and twice W.

    .venv/bin/python bench/rerun_floor.py [WORKDIR] [--scratch S] [--new-work W]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import snakemake_command  # noqa: E402

STAGES = 5  # index_files, make_thumbnails, plan_blocks, compare_blocks, merge_database

SCRIPT = """\
from pathlib import Path

Path(snakemake.output[0]).write_text("done\\n")
"""


# as the workflow does once a run is over (fast_diff_py._jobs.cancel_pending_timers): the
# scheduler's one-second timer would otherwise hold the finished process
ON_SUCCESS = """\
onsuccess:
    import threading
    for timer in threading.enumerate():
        if isinstance(timer, threading.Timer):
            timer.cancel()
"""


def chain_snakefile(k: int) -> str:
    rules = [ON_SUCCESS, "rule all:", f'    input: "j{k}.txt"', ""]
    for i in range(1, k + 1):
        rules += [
            f"rule job_{i}:",
            f'    input: "j{i - 1}.txt"',
            f'    output: "j{i}.txt"',
            '    script: "job.py"',
            "",
        ]
    return "\n".join(rules)


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    return seconds


def chain(k: int, rounds: int) -> float:
    with tempfile.TemporaryDirectory(prefix="rerun-floor-") as tmp:
        folder = Path(tmp)
        (folder / "Snakefile").write_text(chain_snakefile(k))
        (folder / "job.py").write_text(SCRIPT)
        cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--quiet", "all"]
        (folder / "j0.txt").write_text("0\n")
        timed(cmd, folder)  # the first run: Snakemake's own folders, bytecode
        times = []
        for i in range(rounds):
            # new contents (Snakemake passes over a newer input of the same checksum): the
            # whole chain runs again
            (folder / "j0.txt").write_text(f"{i + 1}\n")
            times.append(timed(cmd, folder))
        return statistics.median(times)


def no_change(work: Path, rounds: int) -> float:
    cmd = [*snakemake_command(work), "--cores", "2", "--quiet", "all"]
    timed(cmd)
    return statistics.median(timed(cmd) for _ in range(rounds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdir", type=Path, nargs="?", help="a finished run's work folder (with config.yaml)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scratch", type=float, help="seconds of a run from scratch of the same corpus")
    ap.add_argument("--new-work", type=float, help="seconds of the new files' own work in a rerun")
    args = ap.parse_args()

    empty = {k: chain(k, args.rounds) for k in (0, 1, STAGES)}
    per_job = (empty[STAGES] - empty[1]) / (STAGES - 1)
    print(f"empty chain of 0 jobs: {empty[0]:.2f} s (Snakemake's start, DAG and end, nothing to run)")
    print(f"empty chain of 1 job:  {empty[1]:.2f} s")
    print(f"empty chain of {STAGES} jobs: {empty[STAGES]:.2f} s ({per_job:.2f} s a job after the first)")
    if args.workdir is None:
        return
    still = no_change(args.workdir.resolve(), args.rounds)
    walk = still - empty[0]
    floor = empty[STAGES] + walk
    print(f"this workflow, nothing changed: {still:.2f} s ({walk:.2f} s more than the empty workflow: the walk)")
    print(f"floor of a rerun of {STAGES} stages, before their work: {floor:.2f} s")
    if args.scratch:
        print(f"a tenth of the run from scratch: {args.scratch / 10:.2f} s (floor {floor / args.scratch:.3f} of it)")
    if args.new_work:
        print(f"twice the new files' own work: {2 * args.new_work:.2f} s (floor {floor / args.new_work:.1f}x it)")


if __name__ == "__main__":
    main()
