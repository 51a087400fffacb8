"""Never lose a photo: links, stale files, failed builds, hostile names and inputs."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import photo, run_workflow, shard_inputs, write

from fast_diff_py import ConfigError, validate_config
from fast_diff_py.cli import difpy


def half(img: np.ndarray) -> np.ndarray:
    """A half-size copy, as a resized duplicate is made."""
    import cv2

    return cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)


def files_under(root: Path) -> dict[str, bytes]:
    """Every regular file (not link) under ``root`` by relative path, with its bytes."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath, name)
            if not p.is_symlink():
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


@contextlib.contextmanager
def tmpfs(mount: Path, size: str):
    """A file system of its own at ``mount`` (skips the test where mounting is not permitted)."""
    mount.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def directory_paths(db: Path) -> dict[str, tuple]:
    con = sqlite3.connect(db)
    try:
        return {
            p: (s, e, same)
            for p, s, e, same in con.execute(
                "SELECT d.path, d.success, d.error, f.same_as FROM directory d JOIN file_state f USING (key)"
            )
        }
    finally:
        con.close()


def pairs(db: Path) -> set[tuple[str, str]]:
    con = sqlite3.connect(db)
    try:
        return {
            (Path(a).name, Path(b).name)
            for a, b in con.execute(
                "SELECT a.path, b.path FROM dif_table t JOIN directory a ON a.key = t.key_a "
                "JOIN directory b ON b.key = t.key_b"
            )
        }
    finally:
        con.close()


def test_links_are_one_file_never_paired_and_never_deleted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "D"
    write(root / "link_target.jpg", photo(1))
    (root / "link_to_target.jpg").symlink_to("link_target.jpg")
    os.link(root / "link_target.jpg", root / "hard_link.jpg")
    write(root / "other.jpg", photo(2))
    before = files_under(root)
    assert difpy.main(["-D", str(root), "-Z", "out", "-s", "similar", "-d", "True", "-sd", "True", "-p", "False"]) == 0
    assert files_under(root) == before
    assert (root / "link_to_target.jpg").resolve() == (root / "link_target.jpg")
    results = json.loads(next(Path("out").glob("difPy_*_results.json")).read_text())
    assert results == {}
    # every path is a row; the links name the file they are another name of
    db = tmp_path / "db" / "fast_diff.db"
    run_workflow(tmp_path / "w", {"part_a": [str(root)], "db_path": str(db)})
    rows = directory_paths(db)
    assert set(map(lambda p: Path(p).name, rows)) == {
        "link_target.jpg",
        "link_to_target.jpg",
        "hard_link.jpg",
        "other.jpg",
    }
    own = rows[str(root / "hard_link.jpg")]  # walked first: the file's own name
    assert own[0] == 1 and own[2] is None
    for name, kind in (("link_target.jpg", "hard link"), ("link_to_target.jpg", "symbolic link")):
        success, error, same_as = rows[str(root / name)]
        assert success == -1 and same_as is not None and kind in error and "hard_link.jpg" in error
    assert pairs(db) == set()


def test_a_linked_folder_outside_the_search_is_never_acted_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outside = tmp_path / "outside"
    write(outside / "small.png", half(photo(3, 120, 160)))
    root = tmp_path / "D"
    write(root / "big.png", photo(3, 120, 160))
    (root / "linked").symlink_to(outside, target_is_directory=True)
    assert difpy.main(["-D", str(root), "-Z", "out", "-s", "20", "-d", "True", "-sd", "True", "-p", "False"]) == 0
    assert (outside / "small.png").exists() and (root / "big.png").exists()
    (journal,) = Path("out").glob("difPy_*_journal.jsonl")
    entries = [json.loads(x) for x in journal.read_text().splitlines()]
    assert [(e["action"], e["state"]) for e in entries] == [("delete", "skipped")]
    assert entries[0]["source"] == str(root / "linked" / "small.png")  # the path, not its target
    assert "folder link" in entries[0]["reason"]


def _interrupted_difpy(root: Path, out: Path, argv: list[str]) -> None:
    """Run difpy's workflow up to its comparisons, as a run stopped before the merge leaves it."""
    from fast_diff_py._workflow import run_workflow as run
    from fast_diff_py._workflow import stage_targets

    args = difpy.build_parser().parse_args(argv)
    progress = difpy.progress_dir(args)
    config = difpy.workflow_config(args, progress)
    run(config, progress, stage_targets(config, "compare"), cores=2)


def test_a_file_replaced_before_the_resume_is_not_deleted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "D"
    write(root / "A.png", photo(5, 120, 160))
    write(root / "B.png", half(photo(5, 120, 160)))
    argv = ["-D", str(root), "-Z", "out", "-s", "similar", "-d", "True", "-sd", "True", "-p", "False"]
    _interrupted_difpy(root, tmp_path / "out", argv)
    write(root / "B.png", photo(99, 60, 80))  # an unrelated photo now
    unique = (root / "B.png").read_bytes()
    assert difpy.main(argv) == 0
    assert (root / "B.png").read_bytes() == unique and (root / "A.png").exists()
    # the resume saw the new file: the same result as a fresh run
    results = json.loads(next(Path("out").glob("difPy_*_results.json")).read_text())
    assert results == {}
    assert not list(Path("out").glob("difPy_*_journal.jsonl"))


def test_a_file_replaced_after_its_comparison_is_left_in_place(tmp_path, monkeypatch):
    # replaced between the comparison and the action: the check before acting catches it
    from fast_diff_py._actions import act
    from fast_diff_py._journal import Journal
    from fast_diff_py._workflow import run_workflow as run

    root = tmp_path / "D"
    write(root / "A.png", photo(5, 120, 160))
    write(root / "B.png", half(photo(5, 120, 160)))
    config = {
        "part_a": [str(root)],
        "db_path": str(tmp_path / "r" / "fd.db"),
        "results_dir": str(tmp_path / "r" / "work"),
    }
    run(config, tmp_path / "r", ["all"], cores=2)
    assert pairs(Path(config["db_path"])) == {("A.png", "B.png")}
    write(root / "B.png", photo(99, 60, 80))
    with Journal(tmp_path / "j.jsonl") as journal:
        (outcome,) = act([(2, 1)], config["db_path"], config["results_dir"], journal, size=64, method="quality")
    assert outcome.state == "skipped" and "changed since it was compared" in outcome.reason
    assert (root / "B.png").exists()
    (entry,) = [json.loads(x) for x in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert entry["state"] == "skipped" and entry["source"] == str(root / "B.png")


def test_a_plain_rerun_sees_a_changed_folder(tmp_path):
    root = tmp_path / "D"
    write(root / "A.png", photo(5, 120, 160))
    work = tmp_path / "w"
    config = {"part_a": [str(root)]}
    run_workflow(work, config)
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(run_workflow(work, config, "-n"))
    write(root / "sub" / "B.png", half(photo(5, 120, 160)))
    run_workflow(work, config)
    assert pairs(work / "results" / "fast_diff.db") == {("A.png", "B.png")}
    write(root / "sub" / "B.png", photo(98, 60, 80))  # replaced
    run_workflow(work, config)
    assert pairs(work / "results" / "fast_diff.db") == set()


def test_a_keeper_that_changed_keeps_its_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "D"
    write(root / "A.png", photo(6, 120, 160))
    write(root / "B.png", half(photo(6, 120, 160)))
    argv = ["-D", str(root), "-Z", "out", "-s", "20", "-mv", "moved", "-p", "False"]
    _interrupted_difpy(root, tmp_path / "out", argv)
    (root / "A.png").unlink()  # the file it would be kept for is gone
    assert difpy.main(argv) == 0
    assert (root / "B.png").exists() and not (tmp_path / "moved").exists() or not list((tmp_path / "moved").iterdir())


def test_content_swapped_under_the_same_identity_is_caught(tmp_path, monkeypatch):
    # same size and mtime, other pixels: only the content check can tell
    from fast_diff_py._actions import StoredThumbnails, check, load_targets
    from fast_diff_py._workflow import run_workflow as run

    root = tmp_path / "D"
    a = write(root / "A.png", photo(7, 60, 80))
    b = write(root / "B.png", photo(7, 60, 80))
    config = {
        "part_a": [str(root)],
        "db_path": str(tmp_path / "r" / "fd.db"),
        "results_dir": str(tmp_path / "r" / "work"),
    }
    run(config, tmp_path / "r", ["all"], cores=2)
    targets = load_targets(config["db_path"], [1, 2])
    stored = StoredThumbnails(config["results_dir"])
    assert check(targets[2], targets[1], stored, size=64, method="quality") is None
    st = b.stat()
    other = bytearray(b.read_bytes())
    with open(b, "r+b") as fh:  # flip pixels of the PNG's data in place: same size, same inode
        img = photo(8, 60, 80)
        import cv2

        data = cv2.imencode(".png", img)[1].tobytes()
        fh.write(data[: len(other)].ljust(len(other), b"\0"))
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert b.stat().st_size == st.st_size
    reason = check(targets[2], targets[1], stored, size=64, method="quality")
    assert reason is not None and ("content differs" in reason or "cannot be read again" in reason)
    assert a.exists()


def test_move_and_undo_keep_a_name_that_is_not_utf8(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "D"
    write(root / "big.png", photo(9, 120, 160))
    small = write(tmp_path / "small.png", half(photo(9, 120, 160)))
    raw_name = os.fsencode(str(root)) + b"/caf\xe9 \xff.png"
    os.rename(small, raw_name)
    assert difpy.main(["-D", str(root), "-Z", "out", "-s", "20", "-mv", "moved", "-p", "False"]) == 0
    moved = os.listdir(os.fsencode(str(tmp_path / "moved")))
    assert moved == [b"caf\xe9 \xff.png"]
    stats = json.loads(next(Path("out").glob("difPy_*_stats.json")).read_text())
    assert stats["process"]["search"]["matches_found"]["similar"] == 1
    (journal,) = Path("out").glob("difPy_*_journal.jsonl")
    assert difpy.main(["--undo", str(journal)]) == 0
    assert sorted(os.listdir(os.fsencode(str(root)))) == [b"big.png", b"caf\xe9 \xff.png"]


def test_the_index_stores_a_name_that_is_not_utf8_losslessly(tmp_path):
    from fast_diff_py._paths import native

    root = tmp_path / "D"
    write(root / "a.png", photo(1))
    os.rename(root / "a.png", os.fsencode(str(root)) + b"/\xff\xfe.png")
    db = tmp_path / "fd.db"
    run_workflow(tmp_path / "w", {"part_a": [str(root)], "db_path": str(db)})
    con = sqlite3.connect(db)
    ((path, success, raw),) = con.execute(
        "SELECT d.path, d.success, f.path_bytes FROM directory d JOIN file_state f USING (key)"
    )
    assert success == 1 and path.endswith("/\\xff\\xfe.png")
    assert os.fsencode(native(path, raw)) == os.fsencode(str(root)) + b"/\xff\xfe.png"


def test_undo_reports_failures_and_bad_journals(tmp_path, capsys):
    assert difpy.main(["--undo", str(tmp_path / "missing.jsonl")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8 not a journal")
    assert difpy.main(["--undo", str(tmp_path / "photo.jpg")]) == 1
    assert "is not a difpy journal" in capsys.readouterr().err
    journal = tmp_path / "j.jsonl"
    journal.write_text(
        json.dumps(
            {"action": "move", "state": "done", "source": str(tmp_path / "a.jpg"), "target": str(tmp_path / "gone.jpg")}
        )
        + "\n"
    )
    assert difpy.main(["--undo", str(journal)]) == 1
    assert "gone.jpg is gone" in capsys.readouterr().err


def test_delete_without_a_terminal_stops_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "D" / "a.png", photo(1))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    with pytest.raises(SystemExit) as info:
        difpy.main(["-D", "D", "-Z", "out", "-d", "True"])
    assert info.value.code == 2 and "-sd True" in capsys.readouterr().err
    assert not Path("out").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit):
        difpy.main(["-D", "D", "-Z", "file"])
    assert "is a file, not a folder" in capsys.readouterr().err


def test_move_onto_a_full_file_system_leaves_nothing_partial(tmp_path, monkeypatch):
    with tmpfs(tmp_path / "tiny", "64k") as mount:
        monkeypatch.chdir(tmp_path)
        root = tmp_path / "D"
        rng = np.random.default_rng(0)
        big = (rng.integers(0, 256, (300, 400, 3))).astype(np.uint8)  # incompressible: ~360 kB
        write(root / "a.png", big)
        import cv2

        write(root / "b.png", cv2.resize(big, (200, 150), interpolation=cv2.INTER_AREA))
        before = files_under(root)
        assert difpy.main(["-D", str(root), "-Z", "out", "-s", "2000", "-mv", str(mount), "-p", "False"]) == 1
        assert files_under(root) == before
        assert os.listdir(mount) == []


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_settings_are_refused(tmp_path, value):
    with pytest.raises(ConfigError, match="second_loop.diff_threshold.*not a finite number"):
        validate_config({"part_a": [str(tmp_path)], "second_loop": {"diff_threshold": value}})
    with pytest.raises(ConfigError, match="match_aspect_by"):
        validate_config({"part_a": [str(tmp_path)], "second_loop": {"match_aspect_by": value}})


def test_extensions_that_cannot_be_imported_are_refused_before_work(tmp_path):
    with pytest.raises(ConfigError, match="config key 'cpu_diff'.*no_such_module"):
        validate_config({"part_a": [str(tmp_path)], "cpu_diff": "no_such_module:f"})


def test_a_thumbnail_size_that_would_exhaust_memory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="maximum"):
        validate_config({"part_a": [str(tmp_path)], "compression_target": 5000})
    with pytest.raises(ConfigError, match="lower shard_size or compression_target"):
        validate_config({"part_a": [str(tmp_path)], "compression_target": 1024, "shard_size": 100_000})


def test_a_failed_merge_keeps_the_previous_database_byte_for_byte(tmp_path, dup_folder):
    work = tmp_path / "w"
    config = {"part_a": [str(dup_folder["root"])]}
    run_workflow(work, config)
    db = work / "results" / "fast_diff.db"
    before = db.read_bytes()
    pair_file = next((work / "results" / "work" / "pairs").glob("*.parquet"))
    pair_file.write_bytes(pair_file.read_bytes()[:100])  # truncated, and newer: the merge reruns
    proc = run_workflow(work, config, check=False)
    assert proc.returncode != 0
    assert db.read_bytes() == before
    assert not [p for p in db.parent.iterdir() if ".tmp-" in p.name or ".scratch-" in p.name]
    # a temporary a killed merge left behind is removed by the next build
    stale = db.parent / f".{db.name}.tmp-999999999"
    stale.write_bytes(b"half")
    shutil.rmtree(work / "results" / "work" / "pairs", ignore_errors=True)
    run_workflow(work, config)
    assert not stale.exists()


def test_a_damaged_or_foreign_database_is_rebuilt(tmp_path, dup_folder):
    work = tmp_path / "w"
    config = {"part_a": [str(dup_folder["root"])]}
    run_workflow(work, config)
    db = work / "results" / "fast_diff.db"
    good = sqlite3.connect(db).execute("SELECT COUNT(*) FROM dif_table").fetchone()[0]
    db.write_bytes(db.read_bytes()[:1000])  # damaged
    proc = run_workflow(work, config)
    assert "Nothing to be done" not in proc.stdout + proc.stderr
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM dif_table").fetchone()[0] == good
    db.write_text("my own notes\n")  # not ours: kept aside, never overwritten
    run_workflow(work, config)
    (aside,) = db.parent.glob("fast_diff.db.not-fast-diff-*")
    assert aside.read_text() == "my own notes\n"
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM dif_table").fetchone()[0] == good
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(run_workflow(work, config, "-n"))


def test_a_thumbnail_stack_damaged_in_place_is_refused_and_remade(tmp_path, dup_folder):
    work = tmp_path / "w"
    config = {"part_a": [str(dup_folder["root"])]}
    run_workflow(work, config)
    db = work / "results" / "fast_diff.db"
    good = pairs(db)
    stack = next((work / "results" / "work" / "thumbnails").glob("*.npy"))
    arr = np.load(stack, mmap_mode="r+")
    arr[:] = 0
    arr.flush()
    del arr
    proc = run_workflow(work, config, check=False)
    assert proc.returncode != 0
    assert "changed since they were written" in proc.stdout + proc.stderr
    assert pairs(db) == good
    # a plain run makes the stack again (and the plan, which stopped), not from the thumbnails
    # kept for reuse (they shared the damage): its files are decoded
    run_workflow(work, config)
    assert pairs(db) == good
    logs = "".join(p.read_text() for p in (work / "results" / "work" / "logs" / "thumbnails").glob("*.log"))
    assert "changed since it was made: decoding the file" in logs


def test_a_block_stack_of_the_plan_damaged_in_place_is_refused_and_the_plan_remade(tmp_path, dup_folder):
    work = tmp_path / "w"
    config = {"part_a": [str(dup_folder["root"])], "block_size": 4}
    run_workflow(work, config)
    db = work / "results" / "fast_diff.db"
    good = pairs(db)
    plan = work / "results" / "work" / "plan"
    arr = np.load(next((plan / "blocks").glob("*.npy")), mmap_mode="r+")
    arr[:] = 255
    arr.flush()
    del arr
    proc = run_workflow(work, config, check=False)
    assert proc.returncode != 0
    assert "changed since it was written" in proc.stdout + proc.stderr and "removed the plan" in proc.stderr
    assert not plan.exists() and pairs(db) == good
    run_workflow(work, config)  # the same command makes the plan again, as the error says
    assert plan.is_dir() and pairs(db) == good


def test_a_fifo_swapped_in_after_indexing_is_an_error_row(tmp_path):
    from fast_diff_py import FileStatus, make_thumbnails, write_index
    from fast_diff_py._io import read_parquet

    root = tmp_path / "D"
    write(root / "a.png", photo(1))
    write(root / "b.png", photo(2))
    write_index(
        tmp_path / "index",
        part_a=[str(root)],
        part_b=[],
        recursive=True,
        ignore_names=[],
        ignore_paths=[],
        allowed_file_extensions=[".png"],
        shard_size=100,
    )
    (root / "b.png").unlink()
    os.mkfifo(root / "b.png")
    t0 = time.monotonic()
    make_thumbnails(shard_inputs(tmp_path / "index")[0], tmp_path / "t.npy", tmp_path / "t.parquet", size=16)
    assert time.monotonic() - t0 < 30
    meta = read_parquet(tmp_path / "t.parquet").to_pylist()
    assert [m["success"] for m in meta] == [FileStatus.SUCCESS, FileStatus.ERROR]
    assert "not a regular file" in meta[1]["error"]


def test_a_zombie_is_not_a_running_process():
    from fast_diff_py._io import process_running

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{child.pid}/stat", "rb") as fh:
            if fh.read().rpartition(b")")[2].split()[0] == b"Z":
                break
        time.sleep(0.05)
    assert not process_running(child.pid)
    child.wait()
    assert process_running(os.getpid())


def test_fast_diffs_own_files_among_the_photos_are_no_rows(tmp_path):
    from fast_diff_py import Config, FastDifPy

    a = tmp_path / "A"
    write(a / "1.png", photo(1))
    write(a / "2.png", photo(1))
    # database, progress and task file in A, where fast-diff-py put them
    fdo = FastDifPy(
        config=Config(
            part_a=str(a),
            db_path=str(a / ".fast_diff.db"),
            thumb_dir=str(a / ".temp_thumb"),
            config_path=str(a / ".task.json"),
        )
    )
    Path(fdo.config.config_path).write_text("{}")
    fdo.full_index()
    fdo.first_loop()
    fdo.second_loop()
    fdo.commit()
    names = {Path(p).name for p, *_ in directory_paths(Path(fdo.config.db_path)).items()}
    assert names == {"1.png", "2.png"}
    # and a rerun over the unchanged folder is a no-op, though those files changed
    state = Path(fdo.results_dir) / "folders.state"
    before = state.stat().st_mtime_ns
    Path(fdo.config.config_path).write_text('{"changed": 1}')
    fdo.full_index()
    assert state.stat().st_mtime_ns == before


def test_a_failed_job_is_named_in_words_without_progress(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "D"
    write(root / "A.png", photo(5, 120, 160))
    write(root / "B.png", half(photo(5, 120, 160)))
    argv = ["-D", str(root), "-Z", "out", "-s", "similar", "-p", "False", "-e", "snakemake"]
    from fast_diff_py._workflow import run_workflow as run
    from fast_diff_py._workflow import stage_targets

    args = difpy.build_parser().parse_args(argv)
    progress = difpy.progress_dir(args)
    config = difpy.workflow_config(args, progress)
    run(config, progress, stage_targets(config, "thumbnails"), cores=2)
    stack = next(Path(config["results_dir"], "thumbnails").glob("*.npy"))
    arr = np.load(stack, mmap_mode="r+")
    arr[:] = 7
    arr.flush()
    del arr
    assert difpy.main(argv) == 1
    err = capsys.readouterr().err
    assert "IntermediateError: thumbnail stack(s)" in err and "plan_blocks" in err
    assert "Traceback" not in err
    assert difpy.main(argv) == 0  # the same command again: the stack is made anew


def test_pair_pictures_never_block_on_a_fifo(tmp_path):
    from fast_diff_py._plots import make_diff_plots
    from fast_diff_py._workflow import run_workflow as run

    root = tmp_path / "D"
    write(root / "A.png", photo(5, 120, 160))
    write(root / "B.png", half(photo(5, 120, 160)))
    write(root / "C.png", half(half(photo(5, 120, 160))))
    config = {
        "part_a": [str(root)],
        "db_path": str(tmp_path / "r" / "fd.db"),
        "results_dir": str(tmp_path / "r" / "work"),
    }
    run(config, tmp_path / "r", ["all"], cores=2)
    (root / "C.png").unlink()
    os.mkfifo(root / "C.png")
    t0 = time.monotonic()
    assert make_diff_plots(config["db_path"], tmp_path / "plots", 1000) == 1  # A-B only
    assert time.monotonic() - t0 < 30


def test_delete_goes_to_the_trash_and_can_be_undone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "D"
    write(root / "A.png", photo(5, 120, 160))
    write(root / "B.png", half(photo(5, 120, 160)))
    before = files_under(root)
    assert difpy.main(["-D", str(root), "-Z", "out", "-s", "similar", "-d", "True", "-sd", "True", "-p", "False"]) == 0
    assert not (root / "B.png").exists()
    trash = tmp_path / "xdg-data" / "Trash"
    assert (trash / "files" / "B.png").read_bytes() == before["B.png"]
    info = (trash / "info" / "B.png.trashinfo").read_text()
    assert info.startswith("[Trash Info]\nPath=") and str(root / "B.png") in info
    (journal,) = Path("out").glob("difPy_*_journal.jsonl")
    assert difpy.main(["--undo", str(journal)]) == 0
    assert files_under(root) == before
    assert not (trash / "info" / "B.png.trashinfo").exists()


def test_a_file_on_another_file_system_goes_to_its_own_trash(tmp_path):
    from fast_diff_py._journal import trash_dir

    with tmpfs(tmp_path / "disk", "1m") as mount:
        (mount / "sub").mkdir()
        (mount / "sub" / "a.jpg").write_bytes(b"x")
        assert trash_dir(mount / "sub" / "a.jpg") == mount / f".Trash-{os.getuid()}"
        (tmp_path / "here.jpg").write_bytes(b"x")
        assert trash_dir(tmp_path / "here.jpg") == tmp_path / "xdg-data" / "Trash"


@pytest.mark.parametrize("stage", ["thumbnails", "index", "pairs"])
def test_a_damaged_parquet_intermediate_is_named_and_remade(tmp_path, dup_folder, stage):
    work = tmp_path / "w"
    config = {"part_a": [str(dup_folder["root"])]}
    run_workflow(work, config)
    db = work / "results" / "fast_diff.db"
    good = pairs(db)
    # a shard's own file (not one beside it, as thumbnails/shard_<s>.previews.parquet)
    damaged = next(p for p in sorted((work / "results" / "work" / stage).glob("*.parquet")) if p.stem.count(".") == 0)
    damaged = next(iter(sorted((work / "results" / "work" / stage).glob("shard_*[0-9].parquet"))), damaged)
    damaged.write_bytes(b"PAR1 garbage PAR1")
    # make the stage's readers run again: the merge reads every intermediate
    (work / "results" / "work" / "database.json").unlink()
    proc = run_workflow(work, config, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"{str(damaged.relative_to(work))!r} cannot be read as Parquet" in out
    assert "run the same command again" in out
    assert pairs(db) == good
    run_workflow(work, config)
    assert pairs(db) == good


def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "D" / "a.png", photo(1))
    (tmp_path / "ro").mkdir()
    real_mkdir = Path.mkdir

    def refuse(self, *a, **k):  # root writes anywhere: refuse the one folder instead
        if str(self).startswith(str(tmp_path / "ro")):
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert difpy.main(["-D", "D", "-Z", str(tmp_path / "ro" / "out"), "-p", "False"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("difpy: error: ") and "Permission denied" in err and "Traceback" not in err


def test_a_users_report_folder_or_summary_beside_the_database_is_never_replaced(tmp_path):
    from fast_diff_py import FastDifPy, RunError

    photos = tmp_path / "photos"
    write(photos / "a.png", photo(1))
    write(photos / "b.png", photo(1))
    write(photos / "report" / "mine.png", photo(2))  # the user's own folder named report
    (photos / "summary.json").write_text('{"mine": true}\n')
    before = {p: p.read_bytes() for p in photos.rglob("*") if p.is_file()}
    # a database among the photos (fast-diff-py's default place): its gallery and summary would be too
    fdo = FastDifPy(
        part_a=str(photos),
        db_path=str(photos / ".fast_diff.db"),
        thumb_dir=str(tmp_path / "work"),
        config_path=str(tmp_path / "task.json"),
    )
    with pytest.raises(RunError) as caught:
        fdo.commit()
    assert "is not a fast-diff gallery: left as it is" in str(caught.value)
    for path, data in before.items():
        assert path.read_bytes() == data
    # the user's folder is part of the collection, not taken for fast-diff's own
    con = sqlite3.connect(photos / ".fast_diff.db")
    assert ("mine.png",) in con.execute("SELECT filename FROM directory").fetchall()
    from fast_diff_py import write_summary
    from fast_diff_py._errors import OutputError

    with pytest.raises(OutputError):
        write_summary({}, photos / "summary.json")
    assert (photos / "summary.json").read_text() == '{"mine": true}\n'


def test_the_run_log_never_replaces_a_users_file(tmp_path):
    from fast_diff_py._workflow import RUN_LOG_MARK, keep_run_log, latest_snakemake_log

    (tmp_path / "work" / ".snakemake" / "log").mkdir(parents=True)
    (tmp_path / "work" / ".snakemake" / "log" / "2026-12-02T000000.snakemake.log").write_text("Finished jobid: 1\n")
    work = latest_snakemake_log(tmp_path / "work")
    mine = tmp_path / "fast_diff_py.db.log"
    mine.write_text("my own notes\n")
    assert keep_run_log(work, mine) is None
    assert mine.read_text() == "my own notes\n"
    link = tmp_path / "link.log"
    link.symlink_to(mine)
    assert keep_run_log(work, link) is None and mine.read_text() == "my own notes\n"
    ours = tmp_path / "ours.log"
    assert keep_run_log(work, ours) == ours
    assert ours.read_text().startswith(RUN_LOG_MARK) and "Finished jobid: 1" in ours.read_text()
    assert keep_run_log(work, ours) == ours  # a log fast-diff wrote is replaced
