"""A job's start: logging to its file, and pyarrow kept from importing pandas."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

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
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(log), str(tmp_path / "t.parquet")],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO / "src",
    )
    assert out.stdout.strip() == "False"
    assert "fast_diff_py.probe: written" in log.read_text()


def test_pandas_still_works_after_the_start(tmp_path):
    pytest.importorskip("pandas")
    code = PROBE.replace('print("pandas" in sys.modules)', 'print(pq.read_table(sys.argv[2]).to_pandas()["a"].sum())')
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "job.log"), str(tmp_path / "t.parquet")],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO / "src",
    )
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


LIGHT = """
import sys
from fast_diff_py._jobs import start_job
start_job(sys.argv[1] + "/job.log")
import pyarrow as pa, pyarrow.parquet as pq
from fast_diff_py._io import read_parquet
from fast_diff_py._plan import block_partners, read_block
import fast_diff_py._carry, fast_diff_py._compare, fast_diff_py._db, fast_diff_py._index, fast_diff_py._thumbnails
plan = sys.argv[1]
import os; os.mkdir(plan + "/blocks")
pq.write_table(pa.table({"block_a": pa.array([0, 0, 1], pa.int32()),
                         "block_b": pa.array([0, 2, 1], pa.int32())}), plan + "/block_pairs.parquet")
for b, keys in enumerate([[5, 7], [1], [2, 3, 9]]):
    pq.write_table(pa.table({"block": pa.array([b] * len(keys), pa.int32()), "key": keys}),
                   plan + f"/blocks/block_{b}.parquet")
print(block_partners(plan), read_block(plan, 2).column("key").to_pylist(),
      read_block(plan, 1).column("key").to_pylist(),
      read_parquet(plan + "/blocks/block_0.parquet", ["key"]).column_names)
print("pyarrow.dataset" in sys.modules, "pyarrow.compute" in sys.modules)
"""


def test_reading_needs_neither_pyarrow_dataset_nor_compute(tmp_path):
    """Importing either costs each job a tenth of a second or more (the plan job alone may
    use compute, to filter and sort its table)."""
    out = subprocess.run(
        [sys.executable, "-c", LIGHT, str(tmp_path)], capture_output=True, text=True, check=True, cwd=REPO / "src"
    ).stdout.splitlines()
    assert out[0] == "{0: [0, 2], 1: [1]} [2, 3, 9] [1] ['key']"
    assert out[1] == "False False"


@settings(max_examples=60, deadline=None)
@given(mask=st.lists(st.booleans(), max_size=80), data=st.data())
def test_rows_filtered_and_taken_are_pyarrows(mask, data):
    """filter_rows and take_rows give what pyarrow's filter and take give (every row, none,
    a few runs, many, any order), their short ways included."""
    import numpy as np
    import pyarrow as pa

    from fast_diff_py._io import filter_rows, take_rows

    n = len(mask)
    table = pa.table({"key": pa.array(range(n), pa.int64()), "path": [f"p{i}" for i in range(n)]})
    got = filter_rows(table, np.array(mask, bool))
    assert got.equals(table.filter(pa.array(mask, pa.bool_())))
    any_rows = st.lists(st.integers(0, max(n - 1, 0)), max_size=n)
    order = np.array(data.draw(st.permutations(range(n)) | any_rows), np.int64)
    assert take_rows(table, order).equals(table.take(pa.array(order, pa.int64())))
    runs = np.r_[np.arange(n // 2, n), np.arange(0, n // 2)]  # two runs: shards put in order
    assert take_rows(table, runs).equals(table.take(pa.array(runs, pa.int64())))
    # columns gathered (numbers, bools, strings and bytes with nulls, nulls only), and a
    # number column with a null and a list column (pyarrow's take), in tables long enough
    # for orders of many runs
    m = n + 100
    gathered = pa.table(
        {
            "key": pa.array(range(m), pa.int64()),
            "row": pa.array([i % 7 for i in range(m)], pa.int32()),
            "dif": pa.array([i / 3 for i in range(m)], pa.float64()),
            "ok": pa.array([i % 2 == 0 for i in range(m)], pa.bool_()),
            "hash": pa.array([None if i % 3 else f"h{i}" for i in range(m)], pa.string()),
            "name": pa.array([str(i).encode() for i in range(m)], pa.binary()),
            "none": pa.nulls(m, pa.string()),
        }
    )
    # strings of several bytes a character and empty ones, in a table of several chunks and
    # one sliced (a buffer's offset), and a string column whose null slots span bytes
    wide = gathered.append_column("text", pa.array(["é" * (i % 4) + "☃" * (i % 3) for i in range(m)]))
    chunked = pa.concat_tables([wide.slice(0, m // 3), wide.slice(m // 3)])
    sliced = pa.concat_tables([wide, wide]).slice(m // 2 + 1, m)
    spanning = pa.Array.from_buffers(
        pa.string(),
        3,
        [pa.py_buffer(bytes([0b101])), pa.py_buffer(np.array([0, 1, 4, 5], np.int32)), pa.py_buffer(b"abcde")],
    )
    spans = pa.table({"s": pa.concat_arrays([spanning] * (m // 3 + 1))})
    with_null = gathered.set_column(1, "row", pa.array([None] + list(range(m - 1)), pa.int32()))
    with_list = gathered.append_column("sums", pa.array([[i, i] for i in range(m)], pa.list_(pa.int64())))
    rng = np.random.default_rng(n)
    for t in (gathered, with_null, with_list, chunked, sliced, spans):
        for rows in (order % len(t) if len(t) else order, rng.permutation(len(t)), rng.integers(0, len(t), n)):
            assert take_rows(t, rows).equals(t.take(pa.array(rows, pa.int64())))
        keep = rng.random(len(t)) < 0.5
        assert filter_rows(t, keep).equals(t.filter(pa.array(keep, pa.bool_())))
    many = np.arange(n * 3) % 3 == 1  # more runs than are joined from slices
    longer = pa.concat_tables([table] * 3)
    assert filter_rows(longer, many).equals(longer.filter(pa.array(many)))
    with pytest.raises(ValueError, match="a mask of 1 rows for a table of 0"):
        filter_rows(table.slice(0, 0), np.array([True]))


@pytest.mark.parametrize(
    "cores, jobs, most, expected",
    [
        (2, 9, 8, 1),  # many shards: one thread each, two jobs side by side
        (2, 1, 8, 2),  # one shard: all cores in it
        (16, 3, 8, 5),
        (64, 2, 8, 8),  # never above most
        (4, 0, 4, 4),  # no jobs yet (the checkpoint has not run)
        (None, 5, 8, 8),  # cores unknown (cluster run): most
    ],
)
def test_threads_per_job(cores, jobs, most, expected):
    from fast_diff_py._jobs import threads_per_job

    assert threads_per_job(cores, jobs, most) == expected


def test_outdated_jobs_are_those_with_an_output_missing_or_older_than_the_input(tmp_path):
    import os

    from fast_diff_py._jobs import outdated_jobs

    def made(name, when):
        path = tmp_path / name
        path.write_text(name)
        os.utime(path, (when, when))
        return str(path)

    jobs = [
        (made("a.in", 100), [made("a.out", 200), made("a.npy", 200)]),  # done
        (made("b.in", 300), [made("b.out", 200), made("b.npy", 400)]),  # one output older
        (made("c.in", 100), [made("c.out", 200), str(tmp_path / "c.npy")]),  # one missing
        (str(tmp_path / "d.in"), [made("d.out", 200)]),  # no input yet
        (made("e.in", 200), [made("e.out", 200)]),  # as old as its input: done
    ]
    assert outdated_jobs(jobs) == 3
    assert outdated_jobs(jobs[:1] + jobs[4:]) == 0 and outdated_jobs([]) == 0


def test_progress_lines_come_at_the_interval_with_rate_and_time_left():
    import logging

    from fast_diff_py._progress import Progress

    now = [0.0]
    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    log = logging.getLogger("test.progress")
    log.addHandler(Collect())
    log.setLevel(logging.INFO)
    progress = Progress(100, "files", log, interval=10, clock=lambda: now[0])
    for _ in range(40):  # 40 files in 20 s: a line every 10 s
        now[0] += 0.5
        progress.add()
    assert lines == [
        "20 of 100 files (20 %), 2.0 files/s, about 40 s left",
        "40 of 100 files (40 %), 2.0 files/s, about 30 s left",
    ]
    for _ in range(60):
        now[0] += 0.5
        progress.add()
    assert len(lines) == 4 and lines[-1].startswith("80 of 100 files")  # none once all are done


def test_stage_progress_writes_one_line_per_stage():
    import io

    from fast_diff_py._progress import StageProgress

    now = [0.0]
    out = io.StringIO()
    stages = StageProgress(out, clock=lambda: now[0])
    feed = [
        "Building DAG of jobs...",
        "Finished jobid: 3 (Rule: index_files)",
        "1 of 6 steps (17%) done",
        "Finished jobid: 5 (Rule: make_thumbnails)",
        "2 of 6 steps (33%) done",
        "Finished jobid: 6 (Rule: make_thumbnails)",
        "3 of 6 steps (50%) done",
        "Finished jobid: 7 (Rule: make_thumbnails)",
        "4 of 6 steps (67%) done",
        "Finished jobid: 2 (Rule: merge_database)",
        "6 of 6 steps (100%) done",
    ]
    for i, line in enumerate(feed):
        now[0] = float(i)
        stages.feed(line + "\n")
    stages.close()
    assert out.getvalue().splitlines() == [
        "fast-diff: index: 1 job, 3.0 s; 1 of 6 steps (17%)",
        "fast-diff: thumbnails: 3 jobs, 6.0 s; 4 of 6 steps (67%)",
        "fast-diff: merge, gallery and summary: 1 job, 1.0 s; 6 of 6 steps (100%)",
    ]


def test_stage_progress_rewrites_its_line_on_a_terminal():
    import io

    from fast_diff_py._progress import StageProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    stages = StageProgress(out, clock=lambda: 0.0)
    for line in ["Finished jobid: 1 (Rule: compare_blocks)", "1 of 3 steps (33%) done"]:
        stages.feed(line)
    assert out.getvalue() == "\r\x1b[Kfast-diff: compare: 1 job; 1 of 3 steps (33%)"
    stages.close()
    assert out.getvalue().endswith("\r\x1b[Kfast-diff: compare: 1 job, 0.0 s; 1 of 3 steps (33%)\n")


def test_jobs_that_decode_nothing_leave_opencv_unloaded():
    """OpenCV (a few hundredths of a second a start) loads in the jobs that decode: the
    index, plan, compare and merge jobs (database, gallery from previews, summary) go
    without it."""
    code = (
        "import sys\n"
        "import fast_diff_py._index, fast_diff_py._plan, fast_diff_py._compare, fast_diff_py._db\n"
        "import fast_diff_py._carry, fast_diff_py._reuse, fast_diff_py._report, fast_diff_py._summary\n"
        "from fast_diff_py import finish_run, compare_blocks, make_plan, write_index, KEPT_PAIRS_DIR\n"
        "from fast_diff_py import inline_results_dir, match_hashes, difpy_parameters, difpy_report\n"
        "from fast_diff_py import write_difpy_files\n"
        "print('cv2' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO / "src")
    assert out.stdout.strip() == "False"


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_arrow_arrays_are_pyarrows(data):
    """arrow_array gives what pyarrow's pa.array gives, for every primitive type the files
    between stages hold, from numpy arrays of any dtype and strides and from lists."""
    import numpy as np
    import pyarrow as pa

    from fast_diff_py._io import arrow_array

    kind = data.draw(st.sampled_from(["int8", "int32", "int64", "uint64", "float64", "bool"]))
    arrow_type = {"bool": pa.bool_()}.get(kind) or pa.from_numpy_dtype(np.dtype(kind))
    n = data.draw(st.integers(0, 70))
    if kind == "bool":
        values = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    elif kind == "float64":
        values = data.draw(st.lists(st.floats(allow_nan=False, width=64), min_size=n, max_size=n))
    else:
        info = np.iinfo(kind)
        values = data.draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n))
    shape = data.draw(st.sampled_from(["list", "array", "strided", "other dtype"]))
    if shape == "array":
        given_values = np.array(values, dtype=kind)
    elif shape == "strided":  # a column of a 2-D array
        given_values = np.stack([np.array(values, dtype=kind)] * 2, axis=1)[:, 1]
    elif shape == "other dtype" and kind not in ("bool", "float64", "uint64") and all(abs(v) < 128 for v in values):
        given_values = np.array(values, dtype=np.int64)
    else:
        given_values = values
    got = arrow_array(given_values, arrow_type)
    assert got.type == arrow_type and got.equals(pa.array(values, arrow_type))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 40), seed=st.integers(0, 2**32 - 1))
def test_arrow_tables_are_pyarrows(n, seed):
    """arrow_table gives pa.table of the same columns and schema (the pairs' files)."""
    import numpy as np
    import pyarrow as pa

    from fast_diff_py._formats import PAIR_SCHEMA
    from fast_diff_py._io import arrow_table

    rng = np.random.default_rng(seed)
    columns = {}
    for field in PAIR_SCHEMA:
        if pa.types.is_floating(field.type):
            columns[field.name] = rng.random(n) * 100
        elif pa.types.is_boolean(field.type):
            columns[field.name] = rng.random(n) < 0.5
        else:
            columns[field.name] = rng.integers(0, 1000, n).astype(field.type.to_pandas_dtype())
    expected = pa.table({k: pa.array(v, PAIR_SCHEMA.field(k).type) for k, v in columns.items()}, schema=PAIR_SCHEMA)
    assert arrow_table(columns, PAIR_SCHEMA).equals(expected)
