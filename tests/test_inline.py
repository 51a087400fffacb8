"""A small collection's run in one process (``_inline``): the same database, summary and
files as the workflow's, reuse across runs and across both ways of running, and a failing
stage named with its log."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import db_rows, photo, taken_since, write

from fast_diff_py import Config, FastDifPy, FirstLoopConfig, RunError, SecondLoopConfig
from fast_diff_py._inline import small_collection

SETTINGS = {
    "similar": {},
    "duplicates": {"second_loop": {"diff_threshold": 0}},
    "lazy": {
        "first_loop": {"compute_hash": True, "shift_amount": 0},
        "second_loop": {"diff_threshold": 40, "skip_matching_hash": True, "match_aspect_by": 0},
    },
    "crops and mirror images": {"crop_tolerance": 0.05, "mirror": True, "rotate": False},
    "every aspect kept, small blocks": {
        "second_loop": {"diff_threshold": 300, "keep_non_matching_aspects": True, "batch_size": 4}
    },
}


def config(root: Path, work: Path, part_b: Path | None = None, **settings) -> Config:
    first = FirstLoopConfig(**settings.pop("first_loop", {}))
    second = SecondLoopConfig(**{"diff_threshold": 60, **settings.pop("second_loop", {})})
    return Config(
        part_a=[str(root)],
        part_b=[str(part_b)] if part_b else [],
        thumb_dir=str(work),
        db_path=str(work / "fast_diff.db"),
        first_loop=first,
        second_loop=second,
        **settings,
    )


def run(cfg: Config, engine: str) -> FastDifPy:
    fdo = FastDifPy(config=cfg, engine=engine, cores=2)
    fdo.commit()
    fdo._close_db()
    return fdo


def same_summary(a: dict, b: dict) -> None:
    """Everything the two summaries found; the times and paths are their own."""
    for key in ("files", "decoded", "errors", "skipped", "pairs", "groups", "largest_group"):
        assert a.get(key) == b.get(key), key


@pytest.mark.parametrize("name", list(SETTINGS))
def test_a_run_in_one_process_gives_the_workflows_database(dup_folder, tmp_path, name):
    root = dup_folder["root"]
    part_b = None
    if name == "similar":  # and two partitions
        part_b = tmp_path / "b"
        shutil.move(root / "sub", part_b)
    inline = run(config(root, tmp_path / "inline", part_b, **SETTINGS[name]), "inline")
    snake = run(config(root, tmp_path / "snake", part_b, **SETTINGS[name]), "snakemake")
    assert inline.results_dir == str(tmp_path / "inline" / "work-inline")
    assert snake.results_dir == str(tmp_path / "snake" / "work")
    assert not (tmp_path / "inline" / "work").exists() and not (tmp_path / "snake" / "work-inline").exists()
    got, want = db_rows(tmp_path / "inline" / "fast_diff.db"), db_rows(tmp_path / "snake" / "fast_diff.db")
    assert got == want and got["dif_table"], name
    same_summary(inline.summary(), snake.summary())
    assert (tmp_path / "inline" / "report" / "index.html").is_file()
    # the stage times come from the jobs' benchmark files, as the workflow's
    assert set(inline.summary()["stages"]) == set(snake.summary()["stages"])


def test_a_rerun_does_nothing_unless_the_folders_or_settings_changed(dup_folder, tmp_path):
    root, work = dup_folder["root"], tmp_path / "work"
    first = run(config(root, work), "inline")
    db = work / "fast_diff.db"
    written = db.stat().st_mtime_ns
    assert run(config(root, work), "inline").results_dir == first.results_dir
    assert db.stat().st_mtime_ns == written  # nothing changed: the database is not rewritten
    assert "nothing changed" in Path(first.run_log).read_text()
    # another threshold: the pairs are those of a fresh run
    run(config(root, work, second_loop={"diff_threshold": 5}), "inline")
    assert db.stat().st_mtime_ns != written
    run(config(root, tmp_path / "fresh", second_loop={"diff_threshold": 5}), "snakemake")
    assert db_rows(db) == db_rows(tmp_path / "fresh" / "fast_diff.db")
    # a file replaced with another of the same name: decoded again, never its old thumbnail
    write(root / "orig_5.jpg", photo(0))
    run(config(root, work, second_loop={"diff_threshold": 5}), "inline")
    shutil.rmtree(tmp_path / "fresh")
    run(config(root, tmp_path / "fresh", second_loop={"diff_threshold": 5}), "snakemake")
    assert db_rows(db) == db_rows(tmp_path / "fresh" / "fast_diff.db")


def test_either_way_of_running_follows_the_other(dup_folder, tmp_path):
    """The same working folder run in one process, then through Snakemake, then in one
    process again, with files added and changed between: every database is a fresh run's,
    and each way takes what is still valid from its own last run and from the other's."""
    import time

    root, work = dup_folder["root"], tmp_path / "work"

    def fresh() -> dict:
        shutil.rmtree(tmp_path / "fresh", ignore_errors=True)
        run(config(root, tmp_path / "fresh"), "snakemake")
        return db_rows(tmp_path / "fresh" / "fast_diff.db")

    run(config(root, work), "inline")
    write(root / "aaa_new.jpg", photo(7))
    write(root / "orig_4.jpg", photo(2))  # changed in place
    run(config(root, work), "snakemake")
    assert db_rows(work / "fast_diff.db") == fresh()
    shutil.copy(root / "orig_1.jpg", root / "sub" / "orig_1_copy.jpg")
    since = time.time()
    run(config(root, work), "inline")
    assert db_rows(work / "fast_diff.db") == fresh()
    taken, files = taken_since(work / "work-inline", since)
    # all but the copy added since: the new and the changed file were decoded through Snakemake
    assert (taken, files) == (11, 12)
    os.remove(root / "aaa_new.jpg")
    run(config(root, work), "snakemake")
    assert db_rows(work / "fast_diff.db") == fresh()


def test_auto_runs_small_collections_in_one_process(dup_folder, tmp_path, monkeypatch):
    root = dup_folder["root"]
    cfg = config(root, tmp_path / "work").to_workflow()
    assert small_collection(cfg, most=10) and not small_collection(cfg, most=9)
    assert not small_collection({**cfg, "recursive": False}, most=5)  # the 6 photos at the top
    assert small_collection({**cfg, "recursive": False}, most=6)
    assert not small_collection({**cfg, "compare": {"gpu_jobs": True}})
    # a folder link is counted through, as the index follows it, and a loop only once
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "photos").symlink_to(root, target_is_directory=True)
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)
    linked = {**cfg, "part_a": [str(tmp_path / "linked")]}
    assert small_collection(linked, most=10) and not small_collection(linked, most=9)
    fdo = run(config(root, tmp_path / "work"), "auto")
    assert fdo.results_dir.endswith("work-inline")
    monkeypatch.setattr("fast_diff_py._inline.SMALL_RUN_FILES", 9)
    fdo = run(config(root, tmp_path / "big"), "auto")
    assert fdo.results_dir.endswith(os.sep + "work")
    # a stage run before through Snakemake: commit goes on there
    fdo = FastDifPy(config=config(root, tmp_path / "staged"), engine="auto", cores=2)
    fdo.first_loop()
    fdo.commit()
    assert fdo.results_dir.endswith(os.sep + "work")


def test_a_failing_stage_names_its_log_and_keeps_the_traceback_there(dup_folder, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a stage that fails")

    monkeypatch.setattr("fast_diff_py._plan.make_plan", broken)
    with pytest.raises(RunError) as raised:
        run(config(dup_folder["root"], tmp_path / "work"), "inline")
    message = str(raised.value)
    assert "plan_blocks failed: ValueError: a stage that fails" in message
    log = tmp_path / "work" / "work-inline" / "logs" / "compare" / "plan_blocks.log"
    assert str(log) in message and "Traceback" in log.read_text()
    assert len(message.splitlines()) == 2


def test_a_second_run_at_the_same_time_is_refused(dup_folder, tmp_path):
    import fcntl

    results = tmp_path / "work" / "work-inline"
    results.mkdir(parents=True)
    with open(results / ".inline.lock", "a+") as held:  # as the other run holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RunError, match="another fast-diff run is using"):
            run(config(dup_folder["root"], tmp_path / "work"), "inline")
    assert run(config(dup_folder["root"], tmp_path / "work"), "inline").summary()["pairs"] > 0


def test_a_run_in_one_process_never_imports_pandas(dup_folder, tmp_path):
    """As the workflow's jobs: pyarrow's look for pandas would cost a small run most of its
    time; nor pyarrow's compute module, where no row is to be dropped (no broken file, every
    pair compared): its import alone is a noticeable part of a small run; nor numpy's masked
    arrays (``numpy.ma``), which pyarrow's conversion of numpy arrays and ``np.unique`` load;
    nor PyYAML (the schema is JSON) nor importlib.metadata (the decoders' versions are read
    from the names of their metadata folders)."""
    import subprocess
    import sys

    code = (
        "import sys; from fast_diff_py.cli import difpy; "
        f"assert difpy.main(['-D', {str(dup_folder['root'])!r}, '-Z', {str(tmp_path / 'z')!r}, '-p', 'False']) == 0; "
        "print(*(m in sys.modules for m in ('pandas', 'pyarrow.compute', 'numpy.ma', 'yaml', 'importlib.metadata')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "False False False False False"


def test_what_the_walk_meets_goes_to_the_logs_not_the_terminal(dup_folder, tmp_path):
    """A folder link loop: the index names it in its log; the terminal gets the summary only."""
    import subprocess
    import sys

    root = dup_folder["root"]
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)
    argv = [sys.executable, "-m", "fast_diff_py.cli.difpy", "-D", str(root), "-Z", str(tmp_path / "z"), "-p", "False"]
    said = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path)
    assert said.returncode == 0, said.stderr
    assert "skipping" not in said.stderr + said.stdout and "fast-diff: 10 files" in said.stdout
    (progress,) = (tmp_path / "cache" / "difpy").iterdir()
    logs = progress / "work-inline" / "logs"
    assert "skipping" in (logs / "index" / "index_files.log").read_text()
    assert "skipping" in (logs / "inline_run.log").read_text()


def test_what_the_decoders_print_goes_to_the_jobs_log(tmp_path):
    """libjpeg's warning about a damaged JPEG names no file: in one process, as from a
    Snakemake job, it goes to the thumbnail job's log, not the terminal."""
    import subprocess
    import sys

    root = tmp_path / "p"
    data = write(root / "a.jpg", photo(1, 240, 320)).read_bytes()
    (root / "cut.jpg").write_bytes(data[: len(data) // 2] + b"\xff\xd9")  # scan data cut short
    argv = [sys.executable, "-m", "fast_diff_py.cli.difpy", "-D", str(root), "-Z", str(tmp_path / "z"), "-p", "False"]
    said = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path)
    assert said.returncode == 0, said.stderr
    assert "Corrupt JPEG" not in said.stderr + said.stdout and "fast-diff: 2 files" in said.stdout
    (progress,) = (tmp_path / "cache" / "difpy").iterdir()
    logs = (progress / "work-inline" / "logs" / "thumbnails").glob("*.log")
    assert any("Corrupt JPEG data" in log.read_text() for log in logs)


@pytest.mark.parametrize("name", ["similar", "lazy"])
def test_the_database_without_hashes_is_the_one_built_through_the_hash_table(dup_folder, tmp_path, monkeypatch, name):
    """Without hashes (compute_hash off) the merge writes the files' rows straight into
    directory; the database is the one the way through hash_table gives, every table and
    SQLite's own sequence of keys included. With hashes both ways are the same way."""
    import sqlite3

    from fast_diff_py import _db

    def everything(db: Path) -> dict:
        con = sqlite3.connect(db)
        try:
            sequence = con.execute("SELECT name, seq FROM sqlite_sequence ORDER BY name").fetchall()
        finally:
            con.close()
        return {**db_rows(db), "sqlite_sequence": sequence}

    root = dup_folder["root"]
    run(config(root, tmp_path / "direct", **SETTINGS[name]), "inline")
    work = tmp_path / "direct" / "work-inline"
    metas, shards = (sorted((work / d).glob("shard_*[0-9].parquet")) for d in ("thumbnails", "index"))
    assert _db._any_hash(metas, shards) == (name == "lazy")
    monkeypatch.setattr(_db, "_any_hash", lambda paths, index_paths: True)
    run(config(root, tmp_path / "through", **SETTINGS[name]), "inline")
    got, want = everything(tmp_path / "direct" / "fast_diff.db"), everything(tmp_path / "through" / "fast_diff.db")
    assert got == want and got["dif_table"] and got["sqlite_sequence"]
    assert bool(got["hash_table"]) == (name == "lazy")


def test_the_apis_stages_one_by_one_run_in_one_process_and_do_their_own_work(dup_folder, tmp_path, monkeypatch):
    """fast-diff-py's way (full_index, first_loop, second_loop, commit) on a small folder:
    no Snakemake start at all, each call does its stage's work, and the database is the
    workflow's."""
    root = dup_folder["root"]
    workflow = run(config(root, tmp_path / "workflow"), "snakemake")

    def no_snakemake(*args, **kwargs):
        raise AssertionError("Snakemake started")

    monkeypatch.setattr("fast_diff_py._api.run_workflow", no_snakemake)
    fdo = FastDifPy(config=config(root, tmp_path / "staged"), cores=2)  # engine "auto", the default
    fdo.full_index()
    results = Path(fdo.results_dir)
    assert list((results / "index").glob("shard_*.parquet"))
    assert not (results / "thumbnails").exists()
    fdo.first_loop()
    assert list((results / "thumbnails").glob("shard_*.npy"))
    assert not (results / "pairs").exists()
    fdo.second_loop()
    assert (results / "pairs").is_dir() and not os.path.exists(fdo.config.db_path)
    since = time.time()
    fdo.commit()
    fdo._close_db()
    assert db_rows(Path(fdo.config.db_path)) == db_rows(Path(workflow.config.db_path))
    assert taken_since(results, since) == (10, 10)  # commit decoded nothing first_loop had
