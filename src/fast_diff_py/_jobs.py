"""What every workflow job does before its stage (log to its log file, keep pyarrow from
importing pandas), how many threads a job gets, and what the Snakemake process does when
the run is over."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterable, Sequence

__all__ = ["LOG_FORMAT", "cancel_pending_timers", "outdated_jobs", "start_job", "threads_per_job"]

# a job log's lines (start_job; a run in one process writes the same: _inline)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _pyarrow_without_pandas() -> None:
    """Let pyarrow look for pandas once while the import is refused.

    pyarrow asks whether pandas is installed at its first array, and importing pandas costs
    every job start-up time (bench/README.md) that no stage needs. Refused once, pyarrow stops asking for its implicit
    checks; whatever really needs pandas later (``to_pandas``, a user's plug-in) imports it
    as usual, because pyarrow retries the import then and the refusal is lifted here.
    """
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    refuse = _RefusePandas()
    sys.meta_path.insert(0, refuse)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(refuse)


class _RefusePandas:
    """An import finder that fails the import of pandas."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] == "pandas":
            raise ImportError("pandas is not imported by fast-diff's jobs")
        return None


def start_job(log_path: str) -> None:
    """Route the package's logging to the job's log file, a failure's traceback included
    (the terminal gets one line naming the error and the log), and prepare pyarrow."""
    logging.basicConfig(filename=log_path, level=logging.INFO, format=LOG_FORMAT)

    def log_failure(kind, exc, tb):
        logging.getLogger("fast_diff_py").error("%s: %s", kind.__name__, exc, exc_info=(kind, exc, tb))
        print(f"fast-diff: {kind.__name__}: {exc} (traceback in {log_path})", file=sys.stderr)

    sys.excepthook = log_failure
    _pyarrow_without_pandas()


def threads_per_job(cores: int | None, jobs: int, most: int) -> int:
    """Threads for each of ``jobs`` jobs of one stage that can run side by side on ``cores``.

    The cores are shared out among the jobs (at least 1 thread, at most ``most``): several
    one-thread jobs keep every core busy through each other's start-up and writing, which a
    job's own threads cannot (bench/README.md, the section of the default install). ``most``
    where the cores are not known (a cluster run without ``--cores``).
    """
    if not cores:
        return most
    return max(1, min(most, cores // max(1, jobs)))


def outdated_jobs(jobs: Iterable[tuple[str, Sequence[str]]]) -> int:
    """How many of ``jobs`` (each its input and its outputs) Snakemake runs by the files'
    times: those with an output missing or older than the input. Jobs it runs for other
    reasons (changed parameters, ``--forcerun``) are not seen here."""
    count = 0
    for source, outputs in jobs:
        try:
            made = os.stat(source).st_mtime
        except OSError:
            count += 1
            continue
        for output in outputs:
            try:
                stale = os.stat(output).st_mtime < made
            except OSError:
                stale = True
            if stale:
                count += 1
                break
    return count


def cancel_pending_timers() -> int:
    """Cancel the ``threading.Timer`` threads still waiting in this process; return how many.

    Snakemake's scheduler arms a one-second timer (the re-check of its job rate limiter) after
    every round, and the interpreter waits for it before exiting, so a finished run sat idle
    for up to a second. The workflow calls this once the run is over (``onsuccess``,
    ``onerror``), when nothing waits on those timers any more.
    """
    timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()]
    for timer in timers:
        timer.cancel()
    return len(timers)
