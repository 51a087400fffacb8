"""What a run says at its end: the summary lines and summary.json, from every entry point."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

from conftest import REPO, run_workflow
from hypothesis import given, settings
from hypothesis import strategies as st

from fast_diff_py import FastDifPy, current_summary, format_summary, summarize, write_receipt, write_summary
from fast_diff_py._summary import LastRun, _groups, stage_times
from fast_diff_py._workflow import snakemake_command


def components(pairs):
    """Connected groups by repeated merging: the plain definition."""
    groups: list[set[int]] = []
    for a, b in pairs:
        joined = {a, b}
        for g in [g for g in groups if g & joined]:
            joined |= g
            groups.remove(g)
        groups.append(joined)
    return sorted((sorted(g) for g in groups), key=lambda g: (-len(g), g[0]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)).filter(lambda p: p[0] != p[1]), max_size=60))
def test_groups_are_the_connected_components_of_the_pairs(pairs):
    count, groups = _groups(iter(pairs))
    assert count == len(pairs)
    assert [sorted(g) for g in groups] == components(pairs)


def test_the_example_run_ends_with_its_summary(tmp_path):
    images = tmp_path / "images"
    shutil.copytree(REPO / "examples" / "images", images)
    work = tmp_path / "w"
    work.mkdir()
    (work / "config.yaml").write_text(json.dumps({"part_a": [str(images)]}))
    # as on a terminal: Snakemake's messages and the summary in one stream
    proc = subprocess.run(
        [*snakemake_command(work, work / "config.yaml"), "--cores", "2"],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout
    text = "\n".join(proc.stdout.splitlines()[-15:])
    db = tmp_path / "w" / "results" / "fast_diff.db"
    assert f"database: {db}" in text
    assert f"error: {images / 'phone' / 'broken.jpg'}: truncated JPEG" in text
    assert f"skipped: {images / 'phone' / 'notes.txt'}: not an image extension" in text
    assert "15 files: 13 decoded, 1 could not be read, 1 skipped" in text
    summary = json.loads((tmp_path / "w" / "results" / "summary.json").read_text())
    con = sqlite3.connect(db)
    stored = con.execute("SELECT COUNT(*) FROM dif_table WHERE dif <= 200").fetchone()[0]
    assert summary["pairs"] == stored == 3 and summary["groups"] == 3 and summary["files_in_groups"] == 6
    assert summary["files"] == con.execute("SELECT COUNT(*) FROM directory").fetchone()[0] == 15
    assert set(summary["stages"]) == {"index", "thumbnails", "plan", "compare", "merge", "report"}
    assert summary["gallery"] == str(tmp_path / "w" / "results" / "report" / "index.html")
    assert f"gallery: {summary['gallery']}" in text
    assert all(t["jobs"] >= 1 and t["wall_seconds"] >= 0 for t in summary["stages"].values())
    # the pairs and groups the gallery found, which the summary takes, are those of the database
    again = summarize(db, 200)
    for key in ("pairs", "groups", "files_in_groups", "largest_group"):
        assert summary[key] == again[key], key
    # a lower threshold summarises fewer pairs from the same database
    assert summarize(db, 0)["pairs"] == con.execute("SELECT COUNT(*) FROM dif_table WHERE dif <= 0").fetchone()[0]
    # a rerun with nothing to do leaves the summary as it was
    before = (tmp_path / "w" / "results" / "summary.json").stat().st_mtime_ns
    run_workflow(tmp_path / "w", {"part_a": [str(images)]})
    assert (tmp_path / "w" / "results" / "summary.json").stat().st_mtime_ns == before
    # a gallery or summary deleted since is written again by the next run, nothing else
    shutil.rmtree(tmp_path / "w" / "results" / "report")
    (tmp_path / "w" / "results" / "summary.json").unlink()
    again = run_workflow(tmp_path / "w", {"part_a": [str(images)]})
    assert "fast-diff: the gallery" in again.stderr and "fast-diff: the summary" in again.stderr
    assert (tmp_path / "w" / "results" / "report" / "index.html").is_file()
    assert json.loads((tmp_path / "w" / "results" / "summary.json").read_text())["pairs"] == 3
    assert "merge_database" in again.stderr and "make_thumbnails" not in again.stderr, again.stderr


def test_stage_times_are_those_of_the_jobs_since_the_last_run(tmp_path):
    def job(name, seconds, end):
        path = tmp_path / "benchmarks" / f"{name}.tsv"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"s\th:m:s\n{seconds}\t0:00:00\n")
        os.utime(path, (end, end))

    job("make_thumbnails_1", 4.0, 1000.0)  # a shard kept from the last run
    job("make_thumbnails_2", 2.0, 2000.0)
    job("make_thumbnails_3", 3.0, 2001.0)
    job("compare_blocks_7", 5.0, 1005.0)
    job("index_files", 0.5, 1999.0)
    (tmp_path / "benchmarks" / "notes.txt").write_text("not a benchmark")
    every = stage_times(tmp_path / "benchmarks")
    assert every["thumbnails"] == {"jobs": 3, "job_seconds": 9.0, "wall_seconds": 1005.0}
    assert set(every) == {"index", "thumbnails", "compare"}
    rerun = stage_times(tmp_path / "benchmarks", since=1500.0)
    assert rerun == {
        "index": {"jobs": 1, "job_seconds": 0.5, "wall_seconds": 0.5},
        "thumbnails": {"jobs": 2, "job_seconds": 5.0, "wall_seconds": 3.0},
    }


def test_the_largest_group_and_its_best_file(tmp_path, dup_folder):
    root = dup_folder["root"]
    run_workflow(tmp_path / "w", {"part_a": [str(root)], "second_loop": {"diff_threshold": 400}})
    summary = json.loads((tmp_path / "w" / "results" / "summary.json").read_text())
    con = sqlite3.connect(tmp_path / "w" / "results" / "fast_diff.db")
    rows = {p: (px + py, size) for p, px, py, size in con.execute("SELECT path, px, py, file_size FROM directory")}
    largest = summary["largest_group"]
    assert largest["best"] == max(largest["paths"], key=lambda p: (*rows[p], p))
    assert (
        largest["files"]
        == len(largest["paths"])
        == max(
            len(g) for g in components(con.execute("SELECT key_a, key_b FROM dif_table WHERE dif <= 400").fetchall())
        )
    )
    assert "error" not in format_summary(summary)


def test_a_summary_is_shown_only_for_the_database_it_describes(tmp_path):
    db, receipt, path = tmp_path / "x.db", tmp_path / "database.json", tmp_path / "summary.json"
    db.write_bytes(b"one")
    write_receipt(receipt, db)
    write_summary({"files": 1}, path)
    # Snakemake may touch a job's outputs (the receipt) after the summary is written
    os.utime(receipt)
    assert current_summary(path, receipt) == {"files": 1}
    # a database written after the summary (a run whose gallery then failed): not current
    time.sleep(0.01)
    db.write_bytes(b"two")
    write_receipt(receipt, db)
    assert current_summary(path, receipt) is None
    assert current_summary(path, tmp_path / "missing.json") is None
    receipt.write_text("not json")
    assert current_summary(path, receipt) is None


def test_the_last_run_is_read_from_a_database_of_ours_only(tmp_path):
    """What changed since the last run: counted between two databases of fast-diff's; none
    where the file at the path is missing, another program's or cut short."""
    images = tmp_path / "images"
    shutil.copytree(REPO / "examples" / "images" / "holiday", images)
    shutil.copy(images / "coins.jpg", images / "coins_copy.jpg")
    db = tmp_path / "r" / "x.db"
    FastDifPy(part_a=str(images), db_path=str(db), thumb_dir=str(tmp_path / "r" / "t")).commit()
    last = LastRun.read(db, 200)
    assert last is not None
    with last:
        assert last.changes(db) == {"added": 0, "changed": 0, "removed": 0, "pairs_new": 0, "pairs_gone": 0}
    # the copy's row gone (and its pair with coins.jpg), another file's version changed
    now = tmp_path / "now.db"
    shutil.copy(db, now)
    con = sqlite3.connect(now)
    (key,) = con.execute("SELECT key FROM directory WHERE path LIKE '%coins_copy.jpg'").fetchone()
    con.execute("DELETE FROM dif_table WHERE key_a = ? OR key_b = ?", (key, key))
    con.execute("DELETE FROM directory WHERE key = ?", (key,))
    con.execute("UPDATE file_state SET mtime_ns = mtime_ns + 1 WHERE key = (SELECT MIN(key) FROM file_state)")
    con.commit()
    con.close()
    last = LastRun.read(db, 200)
    assert last is not None
    with last:
        assert last.changes(now) == {"added": 0, "changed": 1, "removed": 1, "pairs_new": 0, "pairs_gone": 1}
    assert LastRun.read(tmp_path / "missing.db", 200) is None
    (tmp_path / "other.db").write_bytes(b"someone else's file")
    assert LastRun.read(tmp_path / "other.db", 200) is None
    cut = tmp_path / "cut.db"
    cut.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    assert LastRun.read(cut, 200) is None


def test_difpy_and_fastdiffpy_print_the_summary_and_start_snakemake_once(tmp_path):
    images = tmp_path / "images"
    shutil.copytree(REPO / "examples" / "images", images)
    difpy = [sys.executable, "-m", "fast_diff_py.cli.difpy"]
    out = subprocess.run(
        [*difpy, "-D", str(images), "-Z", str(tmp_path / "z"), "-s", "similar", "-p", "False"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "15 files: 13 decoded, 1 could not be read, 1 skipped" in out.stdout
    assert f"error: {images / 'phone' / 'broken.jpg'}" in out.stdout
    assert len(list((tmp_path / "z").glob("difPy_*_summary.json"))) == 1
    fdp = [sys.executable, "-m", "fast_diff_py.cli.fastdiffpy"]
    for engine in ("snakemake", "auto"):  # then a small folder's default: in one process
        out = subprocess.run(
            [*fdp, "-a", str(images), "-t", str(tmp_path / engine), "-o", str(tmp_path / engine), "-e", engine],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stderr
        assert f"database: {tmp_path / engine / 'fast_diff_py.db'}" in out.stdout
        assert (tmp_path / engine / "summary.json").is_file()
        # one Snakemake run for all stages: its step count starts once
        assert len(re.findall(r"; 1 of \d+ steps", out.stderr)) == (engine == "snakemake"), out.stderr
        # each stage has one line
        stages = [line.split(":")[1].strip() for line in out.stderr.splitlines() if line.startswith("fast-diff: ")]
        assert stages == ["index", "thumbnails", "plan", "compare", "merge, gallery and summary"], out.stderr


def test_the_api_returns_and_logs_the_summary(tmp_path, caplog):
    images = tmp_path / "images"
    shutil.copytree(REPO / "examples" / "images" / "holiday", images)
    fdo = FastDifPy(
        part_a=str(images),
        db_path=str(tmp_path / "r" / "x.db"),
        thumb_dir=str(tmp_path / "r" / "t"),
        config_path=str(tmp_path / "r" / "task.json"),
    )
    assert fdo.summary() is None
    with caplog.at_level("INFO", logger="fast_diff_py.summary"):
        fdo.commit()
    summary = fdo.summary()
    assert summary is not None and summary["files"] == 10 and summary["decoded"] == 10
    assert any(f"database: {tmp_path / 'r' / 'x.db'}" in r.getMessage() for r in caplog.records)
