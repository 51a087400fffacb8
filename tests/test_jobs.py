"""A job's start: logging to its file, and pyarrow kept from importing pandas."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

PROBE = """
import sys
from fast_diff_py._jobs import start_job
start_job(sys.argv[1])
import logging, pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"a": [1, 2]}), sys.argv[2])
logging.getLogger("fast_diff_py.probe").info("written")
print("pandas" in sys.modules)
"""


def test_jobs_start_without_pandas(tmp_path):
    pytest.importorskip("pandas")  # installed beside the SLURM plugin; else nothing to show
    log = tmp_path / "job.log"
    out = subprocess.run([sys.executable, "-c", PROBE, str(log), str(tmp_path / "t.parquet")],
                         capture_output=True, text=True, check=True, cwd=REPO / "src")
    assert out.stdout.strip() == "False"
    assert "fast_diff_py.probe: written" in log.read_text()


def test_pandas_still_works_after_the_start(tmp_path):
    pytest.importorskip("pandas")
    code = PROBE.replace('print("pandas" in sys.modules)',
                         'print(pq.read_table(sys.argv[2]).to_pandas()["a"].sum())')
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "job.log"), str(tmp_path / "t.parquet")],
                         capture_output=True, text=True, check=True, cwd=REPO / "src")
    assert out.stdout.strip() == "3"


def test_pending_timers_are_cancelled():
    import threading

    from fast_diff_py._jobs import cancel_pending_timers

    fired = []
    timer = threading.Timer(60, lambda: fired.append(1))
    timer.start()
    assert cancel_pending_timers() >= 1
    timer.join(10)  # a cancelled timer ends at once instead of after its 60 s
    assert not timer.is_alive() and not fired
    assert cancel_pending_timers() == 0
