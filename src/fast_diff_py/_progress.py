"""Progress: of a long job, logged at a steady interval (done, rate and time left); and of a
whole run, one line per stage, read from Snakemake's output for the command lines."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from typing import TextIO

__all__ = ["INTERVAL", "STAGE_OF_RULE", "Progress", "StageProgress", "stage_line"]

# seconds between two progress lines of one job
INTERVAL = 10.0


class Progress:
    """Counts the units a job has done (from any of its threads) and logs, at most every
    ``interval`` seconds, how many of ``total``, how fast and about how long is left."""

    def __init__(
        self, total: int, unit: str, logger: logging.Logger, interval: float = INTERVAL, clock=time.monotonic
    ) -> None:
        self.total, self.unit, self.logger, self.interval, self.clock = total, unit, logger, interval, clock
        self.done = 0
        self.start = self.last = clock()
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            now = self.clock()
            if now - self.last < self.interval or self.done >= self.total:
                return
            self.last = now
            line = self.line(now)
        self.logger.info("%s", line)

    def line(self, now: float) -> str:
        """The progress line at time ``now``."""
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        share = 100.0 * self.done / self.total if self.total else 100.0
        eta = f"about {left:,.0f} s left" if left != float("inf") else "time left unknown"
        return f"{self.done:,} of {self.total:,} {self.unit} ({share:.0f} %), {rate:,.1f} {self.unit}/s, {eta}"


# the stage each rule belongs to, in the order a run goes through them
STAGE_OF_RULE = {
    "index_files": "index",
    "make_thumbnails": "thumbnails",
    "plan_blocks": "plan",
    "compare_blocks": "compare",
    "compare_blocks_gpu": "compare",
    "match_hashes": "compare",
    "merge_database": "merge, gallery and summary",
    "difpy": "difPy's files",
}


def stage_line(stage: str, jobs: int, seconds: float | None = None, steps: str = "") -> str:
    """The line that shows a stage of a run: its jobs, its seconds once it is over, and how
    many of the run's steps are done (where Snakemake counts them)."""
    took = f", {seconds:.1f} s" if seconds is not None else ""
    line = f"fast-diff: {stage}: {jobs} job{'s' if jobs != 1 else ''}{took}"
    return f"{line}; {steps}" if steps else line


_FINISHED = re.compile(r"Finished jobid: \d+ \(Rule: (\w+)\)")
_STEPS = re.compile(r"^(\d+) of (\d+) steps \((\d+%)\) done")


class StageProgress:
    """One line per stage of a run, from the lines of Snakemake's output fed to ``feed``: on
    a terminal the stage's line is rewritten as its jobs finish, elsewhere it is written once
    the stage is over. Writes to ``stream`` (default: standard error)."""

    def __init__(self, stream: TextIO | None = None, clock=time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.clock = clock
        self.stage: str | None = None
        self.jobs = 0
        self.since = clock()  # when the stage on the line began: the previous one's end
        self.steps = ""

    def feed(self, line: str) -> None:
        finished = _FINISHED.search(line)
        if finished:
            stage = STAGE_OF_RULE.get(finished.group(1), finished.group(1))
            if stage != self.stage:
                self._close()
                self.stage, self.jobs = stage, 0
            self.jobs += 1
            return
        steps = _STEPS.match(line.strip())
        if steps and self.stage is not None:
            self.steps = f"{steps.group(1)} of {steps.group(2)} steps ({steps.group(3)})"
            if self.live:
                self.stream.write(f"\r\x1b[K{self._line(done=False)}")
                self.stream.flush()

    def close(self) -> None:
        """End the last stage's line."""
        self._close()
        self.stage = None

    def _line(self, done: bool) -> str:
        assert self.stage is not None
        return stage_line(self.stage, self.jobs, self.clock() - self.since if done else None, self.steps)

    def _close(self) -> None:
        if self.stage is None:
            return
        prefix = "\r\x1b[K" if self.live else ""
        self.stream.write(f"{prefix}{self._line(done=True)}\n")
        self.stream.flush()
        self.since = self.clock()
