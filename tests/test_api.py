"""The fast-diff-py API: the README sample script and the database functions."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, photo, run_workflow, taken_since, write

from fast_diff_py import (
    Config,
    DatabaseError,
    FastDiffDB,
    FastDifPy,
    FirstLoopConfig,
    SecondLoopConfig,
    decode_thumbnail,
)
from fast_diff_py._kernel import naive_dif


def test_readme_sample_script(tmp_path):
    a, b = tmp_path / "dir_a", tmp_path / "dir_c"
    shutil.copytree(REPO / "examples/images/holiday", a)
    shutil.copytree(REPO / "examples/images/phone", b)
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples/sample.py"), f"{a}/", f"{b}/"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == lines[3] == "=" * 120
    by_a = lines[1:3]
    coffee = naive_dif(
        decode_thumbnail(str(a / "coffee.jpg"), 64)[0], decode_thumbnail(str(b / "coffee reencoded.jpg"), 64)[0]
    )
    assert 0 < coffee < 113.049072265625  # the compat thumbnails' value: quality ones are closer
    assert f"('{a}/coffee.jpg', [('{b}/coffee reencoded.jpg', {coffee!r})])" in by_a
    assert f"('{a}/rocket.jpg', [('{b}/rocket_rotated.png', 0.0)])" in by_a
    assert f"('{b}/rocket_rotated.png', [('{a}/rocket.jpg', 0.0)])" in lines[4:]
    # the database is kept, as the script's comment says, and named; the working files are
    # removed, and nothing was written among the photos
    db = tmp_path / "results/sample/sample.db"
    assert lines[-1] == f"The database is {Path('results/sample/sample.db')}" and db.is_file()
    assert (tmp_path / "results/sample/summary.json").is_file()
    assert not (tmp_path / "results/sample/work").exists() and not (tmp_path / "results/sample/task.json").exists()
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in (REPO / "examples/images/holiday").iterdir())
    assert sorted(p.name for p in b.iterdir()) == sorted(p.name for p in (REPO / "examples/images/phone").iterdir())


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """A database with hash matches, computed pairs, errors and disallowed files."""
    tmp = tmp_path_factory.mktemp("queries")
    a, b = tmp / "A", tmp / "B"
    write(a / "x.png", photo(1))
    write(a / "y.png", photo(2))
    write(a / "z.jpg", photo(3), quality=95)
    write(b / "x_copy.png", photo(1))
    write(b / "x_copy2.png", photo(1))
    write(b / "y_near.jpg", photo(2), quality=90)
    write(b / "z_near.jpg", photo(3), quality=60)
    (b / "broken.jpg").write_bytes(b"nope")
    (b / "notes.txt").write_text("x")
    run_workflow(
        tmp / "w",
        {
            "part_a": [str(a)],
            "part_b": [str(b)],
            "first_loop": {"compute_hash": True, "shift_amount": 0},
            "second_loop": {"diff_threshold": 400, "skip_matching_hash": True},
        },
    )
    return tmp / "w" / "results" / "fast_diff.db"


def test_pairs_and_clusters(db):
    q = FastDiffDB(db)
    names = lambda rows: [(Path(p).name, Path(r).name, d) for p, r, d in rows]  # noqa: E731
    hashed = names(q.get_duplicate_pairs(400, include_hash_match=True))
    computed = names(q.get_duplicate_pairs(400))
    assert ("x.png", "x_copy.png", 0.0) in hashed and ("x.png", "x_copy.png", 0.0) not in computed
    assert {(p, r) for p, r, _ in computed} == {("y.png", "y_near.jpg"), ("z.jpg", "z_near.jpg")}
    assert q.get_pair_count_diff() == 4
    clusters = {Path(h).name: [Path(p).name for p, _ in m] for h, m in q.get_all_cluster(400)}
    assert clusters == {"x.png": ["x_copy.png", "x_copy2.png"], "y.png": ["y_near.jpg"], "z.jpg": ["z_near.jpg"]}
    assert q.get_cluster_count(400) == 3
    assert q.get_cluster_count(400, part_a=False) == 4
    assert q.get_cluster_count(400, include_hash_match=False) == 2
    head, members = q.get_ith_diff_cluster(0, 400)
    assert Path(head).name == "x.png" and len(members) == 2
    with pytest.raises(IndexError, match="3 clusters"):
        q.get_ith_diff_cluster(3, 400)
    by_b = {Path(h).name for h, _ in q.get_all_cluster(400, group_a=False)}
    assert by_b == {"x_copy.png", "x_copy2.png", "y_near.jpg", "z_near.jpg"}
    assert q.get_max_cluster_size() == 2


def test_hash_clusters(db):
    q = FastDiffDB(db)
    assert q.get_hash_cluster_count() == 4  # the four rotations of x
    h, paths = q.get_ith_hash_cluster(0)
    assert sorted(Path(p).name for p in paths) == ["x.png", "x_copy.png", "x_copy2.png"]
    assert len(list(q.get_all_hash_clusters())) == 4
    with pytest.raises(IndexError):
        q.get_ith_hash_cluster(4)
    key = sqlite3.connect(db).execute("SELECT key FROM directory WHERE filename = 'x_copy2.png'").fetchone()[0]
    work = db.parent / "deleted.db"
    shutil.copy(db, work)
    q2 = FastDiffDB(work)
    q2.set_deleted(key)
    assert len(q2.get_ith_hash_cluster(0, include_deleted=False)[1]) == 2


def test_errors_disallowed_and_drop(db, tmp_path):
    q = FastDiffDB(db)
    errors = {Path(p).name: e for p, e in q.get_directory_errors()}
    assert list(errors) == ["broken.jpg"] and "cannot decode" in errors["broken.jpg"]
    assert [Path(p).name for p in q.get_directory_disallowed()] == ["notes.txt"]
    assert list(q.get_dif_errors()) == []
    shutil.copy(db, tmp_path / "d.db")
    q2 = FastDiffDB(tmp_path / "d.db")
    assert q2.drop_diff(1.0) == 2 and q2.get_pair_count_diff() == 2


def test_missing_database(tmp_path):
    with pytest.raises(DatabaseError, match="no database"):
        FastDiffDB(tmp_path / "none.db")
    sqlite3.connect(tmp_path / "empty.db").execute("CREATE TABLE t (x)")
    with pytest.raises(DatabaseError, match="lacks"):
        FastDiffDB(tmp_path / "empty.db")


def test_queries_before_commit_say_what_writes_the_database(tmp_path):
    write(tmp_path / "A" / "1.png", photo(1))
    fdo = FastDifPy(config=Config(part_a=[str(tmp_path / "A")], thumb_dir=str(tmp_path / "t")), purge=True)
    fdo.full_index()
    with pytest.raises(DatabaseError, match=r"no database at .* yet: it is written by commit\(\)"):
        list(fdo.get_diff_pairs(20))


def test_api_resumes_and_honours_switches(tmp_path):
    a = tmp_path / "A"
    write(a / "1.png", photo(1))
    write(a / "2.png", photo(1))
    cfg = Config(
        part_a=str(a),
        db_path=str(tmp_path / "out.db"),
        thumb_dir=str(tmp_path / "thumbs"),
        config_path=str(tmp_path / "task.json"),
        second_loop=SecondLoopConfig(diff_threshold=10),
        first_loop=FirstLoopConfig(),
    )
    fdo = FastDifPy(config=cfg, purge=True)
    fdo.full_index()
    fdo.first_loop()
    fdo.second_loop()
    fdo.commit()
    assert [(Path(x).name, Path(y).name, d) for x, y, d in fdo.get_diff_pairs()] == [("1.png", "2.png", 0.0)]
    assert (tmp_path / "task.json").exists()
    assert fdo.reduce_diff(-0.5) == 1
    fdo.config.delete_db = False
    fdo.config.retain_progress = False
    fdo.cleanup()
    assert (tmp_path / "out.db").exists() and not (tmp_path / "thumbs").exists()
    assert not (tmp_path / "task.json").exists()


def test_a_second_run_on_a_grown_folder_takes_what_the_first_made(tmp_path):
    """The API's working folder (in the cache, by default) outlives the run unless cleanup is
    told to remove it: a second run over the same folders, one file added, decodes only that
    file and finds its pair; cleanup with delete_thumb (fast-diff-py's default) removes it."""
    import time

    a = tmp_path / "A"
    for i in range(4):
        write(a / f"{i}.png", photo(i))

    def run():
        fdo = FastDifPy(config=Config(part_a=str(a), second_loop=SecondLoopConfig(diff_threshold=10)))
        fdo.commit()  # every stage, as after full_index, first_loop and second_loop
        return fdo

    first = run()
    assert list(first.get_diff_pairs()) == []
    first.config.delete_thumb = first.config.delete_db = False
    first.cleanup()
    write(a / "2_copy.png", photo(2))
    since = time.time()
    second = run()
    assert taken_since(Path(second.results_dir), since) == (4, 5)
    assert [(Path(x).name, Path(y).name) for x, y, _ in second.get_diff_pairs()] == [("2.png", "2_copy.png")]
    second.cleanup()
    assert not Path(second.config.thumb_dir).exists() and not Path(second.config.db_path).exists()


def test_options_without_effect_warn_once(tmp_path):
    import warnings as w

    from fast_diff_py import Config, FirstLoopConfig, SecondLoopConfig, _api

    _api._warned.clear()
    with pytest.warns(UserWarning, match=r"FirstLoopConfig.parallel = False has no effect"):
        FirstLoopConfig(parallel=False)
    with w.catch_warnings():
        w.simplefilter("error")
        FirstLoopConfig(parallel=False)  # once
        FirstLoopConfig()  # defaults never warn
        SecondLoopConfig(diff_threshold=5)
        Config(part_a=str(tmp_path))
    with pytest.warns(UserWarning, match=r"SecondLoopConfig.gpu_proc = 2 has no effect.*compare.backend"):
        SecondLoopConfig(gpu_proc=2)
    with pytest.warns(UserWarning, match=r"Config.log_level = 10 has no effect"):
        Config(part_a=str(tmp_path), log_level=10)


def test_working_files_stay_out_of_the_searched_folders(tmp_path, monkeypatch):
    """Left to its defaults, a run writes nothing into the folders it searches: database,
    thumbnails and task file live in a folder of its own under the cache, the same for the
    same folders (so that a rerun resumes) and another for other folders."""
    from fast_diff_py import Config, FastDifPy
    from fast_diff_py._api import work_dir

    photos = tmp_path / "photos"
    write(photos / "a.png", photo(1))
    write(photos / "b.png", photo(1))
    before = sorted(p.relative_to(photos) for p in photos.rglob("*"))
    cfg = Config(part_a=[str(photos)])
    own = Path(work_dir([str(photos)]))
    assert own.parent == tmp_path / "cache"  # FAST_DIFF_CACHE (conftest)
    for path in (cfg.db_path, cfg.thumb_dir, cfg.config_path):
        assert Path(path).parent == own
    assert Config(part_a=[str(photos)]).db_path == cfg.db_path
    assert Config(part_a=[str(photos)], part_b=[str(tmp_path)]).db_path != cfg.db_path
    fdo = FastDifPy(config=cfg)
    fdo.commit()
    assert sqlite3.connect(cfg.db_path).execute("SELECT dif FROM dif_table").fetchall() == [(0.0,)]
    fdo.cleanup()
    assert sorted(p.relative_to(photos) for p in photos.rglob("*")) == before
    # without FAST_DIFF_CACHE: XDG_CACHE_HOME, then ~/.cache
    monkeypatch.delenv("FAST_DIFF_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert Path(work_dir([str(photos)])).parent == tmp_path / "xdg" / "fast-diff"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Path(work_dir([str(photos)])).parent == tmp_path / "home" / ".cache" / "fast-diff"
