"""Running the Snakemake workflow from Python, for the API and the command lines (which run a
small collection's stages in one process instead: ``_inline``, the same stage functions)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._config import validate_config
from ._errors import RunError, WorkflowError
from ._io import process_running
from ._progress import StageProgress
from ._summary import PRINT_ENV

__all__ = [
    "SNAKEFILE",
    "RunError",
    "WorkflowError",
    "keep_run_log",
    "latest_snakemake_log",
    "run_workflow",
    "snakemake_command",
    "stage_targets",
]

logger = logging.getLogger(__name__)


def _find_snakefile() -> Path:
    """The workflow this package runs: inside the installed package (a wheel), or at the top
    of the checkout it was installed from in editable mode."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "workflow" / "Snakefile", here.parents[1] / "workflow" / "Snakefile"):
        if candidate.is_file():
            return candidate
    return here / "workflow" / "Snakefile"


SNAKEFILE = _find_snakefile()


def stage_targets(config: dict[str, Any], stage: str) -> list[str]:
    """Snakemake targets that complete one stage: index, thumbnails, compare or merge."""
    from ._formats import DB_RECEIPT, INDEX_DIR, REPORT_RECEIPT, SUMMARY_RECEIPT

    results = config["results_dir"]
    targets = {
        "index": [f"{results}/{INDEX_DIR}"],
        "thumbnails": ["make_all_thumbnails"],
        "compare": ["compare_all_blocks"],
        "merge": [f"{results}/{DB_RECEIPT}", f"{results}/{REPORT_RECEIPT}", f"{results}/{SUMMARY_RECEIPT}"],
    }
    if stage not in targets:
        raise ValueError(f"unknown stage {stage!r}; expected one of {sorted(targets)}")
    return targets[stage]


# how long an interrupted Snakemake may take to stop its jobs before it is killed
STOP_WAIT = 60


def snakemake_command(workdir: str | os.PathLike[str], config_file: str | os.PathLike[str]) -> list[str]:
    """The command that runs this package's workflow in ``workdir`` with ``config_file``
    (options and targets follow it)."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        os.fspath(workdir),
        "--configfile",
        os.fspath(config_file),
    ]


def run_workflow(
    config: dict[str, Any],
    workdir: str | os.PathLike[str],
    targets: Sequence[str] = (),
    *,
    cores: int | None = None,
    extra_args: Sequence[str] = (),
    verbose: bool = False,
    progress: bool = False,
) -> None:
    """Validate ``config``, write it to ``workdir/config.yaml`` and run snakemake there.

    Finished jobs are kept between calls, so a call after an interruption resumes. A lock
    left by a process that no longer runs (a killed earlier call) is removed first.
    ``verbose`` shows Snakemake's own output; else, with ``progress``, one line per stage
    goes to standard error (``StageProgress``). Snakemake's whole output is always in its log
    (``workdir/.snakemake/log/``).
    """
    if not SNAKEFILE.is_file():
        raise RunError(
            f"the workflow is not at {SNAKEFILE}: this installation of fast-diff is incomplete; "
            "reinstall it (pip install --force-reinstall fast-diff)"
        )
    import yaml  # here: a run in one process never loads it

    config = validate_config(dict(config))
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    cfg_path = workdir / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(config, allow_unicode=True))
    base = snakemake_command(workdir, cfg_path)
    _clear_stale_lock(workdir, base)
    # options with a variable number of values come first; --cores (one value) ends them
    cmd = [
        *base,
        "--rerun-incomplete",
        *extra_args,
        "--cores",
        str(cores or os.cpu_count() or 1),
        *targets,
    ]
    logger.debug("running %s", " ".join(cmd))
    pid_file = workdir / ".fast_diff.pid"
    pid_file.write_text(str(os.getpid()))
    started = time.time()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            # the callers show the run's summary themselves
            env={**os.environ, PRINT_ENV: "0"},
            text=True,
            stdout=None if verbose else subprocess.PIPE,
            stderr=None if verbose else subprocess.STDOUT,
        )
        try:
            if verbose:
                output = ""
                proc.wait()
            else:
                output = _read_output(proc, StageProgress() if progress else None)
        except KeyboardInterrupt:
            # Snakemake got the same Ctrl-C: let it stop its jobs and release its lock
            try:
                proc.communicate(timeout=STOP_WAIT)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                proc.kill()
                proc.wait()
            raise
    finally:
        pid_file.unlink(missing_ok=True)
    if proc.returncode != 0:
        tail = "" if verbose else "\n" + "\n".join((output or "").splitlines()[-40:])
        raise RunError(
            f"snakemake failed with exit code {proc.returncode} in {workdir}"
            f"{_job_errors(workdir / config['results_dir'] / 'logs', started)}{tail}"
        )


def latest_snakemake_log(workdir: str | os.PathLike[str]) -> Path | None:
    """The log Snakemake wrote of the latest run in ``workdir`` (its whole output)."""
    logs = sorted(Path(workdir, ".snakemake", "log").glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


# the first line of a run's log kept by keep_run_log: only a file that starts with it (or with
# the mark of earlier versions) is replaced
RUN_LOG_MARK = "# fast-diff: the log of one run"
_EARLIER_MARKS = ("# fast-diff: Snakemake's output of one run",)


def keep_run_log(source: str | os.PathLike[str] | None, dest: str | os.PathLike[str]) -> Path | None:
    """Copy a run's log ``source`` (Snakemake's whole output, ``latest_snakemake_log``, or
    that of a run in one process) to ``dest`` (it outlives the working folder), marked as
    fast-diff's; a file at ``dest`` that fast-diff did not write is left alone (a warning
    names it). Returns the path written, or None."""
    dest = Path(dest)
    if source is None or not os.path.isfile(source):
        return None
    if os.path.lexists(dest):
        try:
            with open(dest, encoding="utf-8", errors="replace") as fh:
                marked = fh.readline().startswith((RUN_LOG_MARK, *_EARLIER_MARKS))
            ours = marked and dest.is_file() and not dest.is_symlink()
        except OSError:
            ours = False
        if not ours:
            logger.warning("left %s alone (not a log fast-diff wrote); the run's log is not kept", dest)
            return None
    text = Path(source).read_text(encoding="utf-8", errors="replace")
    dest.write_text(f"{RUN_LOG_MARK} (from {source})\n{text}", encoding="utf-8")
    return dest


def _read_output(proc: subprocess.Popen, stages: StageProgress | None) -> str:
    """Snakemake's output, read line by line as it comes (fed to ``stages`` when given)."""
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if stages is not None:
                stages.feed(line)
        proc.wait()
    finally:
        if stages is not None:
            stages.close()
    return "".join(lines)


def _job_errors(logs: Path, since: float) -> str:
    """The last error line of each job log written since ``since`` that ends in an error,
    with the log's path."""
    found = []
    for log in sorted(logs.rglob("*.log")):
        try:
            if log.stat().st_mtime < since - 1:
                continue
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        errors = [
            line
            for line in lines
            if line and not line[0].isspace() and ("Error" in line.split(":", 1)[0] or " ERROR " in line)
        ]
        if errors:
            found.append(f"\n  {errors[-1]}\n  (full log: {log})")
    return "".join(found[:5])


def _clear_stale_lock(workdir: Path, base: list[str]) -> None:
    """Unlock ``workdir`` when its lock belongs to a run that is gone."""
    locks = workdir / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()):
        return
    pid_file = workdir / ".fast_diff.pid"
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            pid = None
        if pid is not None and pid != os.getpid() and process_running(pid):
            raise RunError(f"another fast-diff run (pid {pid}) is using {workdir}; wait for it to end, or stop it")
    logger.warning("removing the lock a killed run left in %s", workdir)
    subprocess.run([*base, "--unlock"], cwd=workdir, capture_output=True, check=True)
