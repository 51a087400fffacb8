"""Progress of a long job, logged at a steady interval: done, rate and time left."""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["INTERVAL", "Progress"]

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
