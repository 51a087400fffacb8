"""The difpy and fastdiffpy command lines, end to end."""

from __future__ import annotations

import ast
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import REPO, photo, taken_since, write

from fast_diff_py._config import validate_config
from fast_diff_py._journal import ALREADY_THERE
from fast_diff_py._workflow import stage_targets
from fast_diff_py.cli import difpy, fastdiffpy

DIFPY_REF = Path(__file__).parent / "data" / "difpy-4.2.1"


@pytest.fixture
def imgs(tmp_path, monkeypatch) -> Path:
    """examples/images plus a byte copy of coffee.jpg, as the difPy reference files saw them."""
    root = tmp_path / "imgs"
    shutil.copytree(REPO / "examples/images", root)
    shutil.copy(root / "holiday/coffee.jpg", root / "phone/coffee_copy.jpg")
    monkeypatch.chdir(tmp_path)
    return root


def outputs(folder: Path) -> tuple[dict, list, dict]:
    (results,) = folder.glob("difPy_*_results.json")
    (lower,) = folder.glob("difPy_*_lower_quality.txt")
    (stats,) = folder.glob("difPy_*_stats.json")
    return (json.loads(results.read_text()), ast.literal_eval(lower.read_text()), json.loads(stats.read_text()))


def shape(value, free_keys: bool = False):
    """Keys and leaf types; dicts keyed by paths are reduced to the shape of their values."""
    if isinstance(value, dict):
        if free_keys:
            shapes = {json.dumps(shape(v), sort_keys=True) for v in value.values()}
            return {"*": sorted(shapes)}
        return {k: shape(v, free_keys=k in ("logs",)) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def test_difpy_outputs_have_difpys_structure(imgs):
    assert difpy.main(["-D", "imgs", "-Z", "out", "-s", "similar", "-p", "False"]) == 0
    results, lower, stats = outputs(Path("out"))
    ref_results = json.loads((DIFPY_REF / "results.json").read_text())
    ref_stats = json.loads((DIFPY_REF / "stats.json").read_text())
    assert shape(results, free_keys=True) == shape(ref_results, free_keys=True)
    assert shape(stats) == shape(ref_stats)
    assert stats["process"]["search"]["parameters"]["similarity_mse"] == 5
    assert stats["total_files"] == 16 and stats["process"]["search"]["files_searched"] == 14
    assert set(stats["invalid_files"]["logs"]) == {"imgs/phone/broken.jpg", "imgs/phone/notes.txt"}
    # every match group: one kept file, never also listed as lower quality
    assert not set(results) & set(lower)
    assert sorted(lower) == sorted(m for ms in results.values() for m, _ in ms)
    flat = {Path(k).name: {Path(m).name: v for m, v in ms} for k, ms in results.items()}
    assert flat["rocket_rotated.png"] == {"rocket.jpg": pytest.approx(0.0, abs=1e-3)}
    coffee = flat.get("coffee_copy.jpg") or flat["coffee.jpg"]
    assert "coffee reencoded.jpg" in coffee
    assert "chelsea_small.jpg" in flat["chelsea.jpg"]  # a half-size copy: difPy misses it
    # -Z holds the results only; the working files are in the user's cache, for the next run
    assert not Path("out/.difpy_progress").exists()
    assert len(list((Path(os.environ["FAST_DIFF_CACHE"]) / "difpy").iterdir())) == 1


def test_difpy_in_folder_groups_by_folder(imgs):
    assert difpy.main(["-D", "imgs/holiday", "imgs/phone", "-i", "yes", "-Z", "out", "-s", "similar", "-p", "0"]) == 0
    results, lower, stats = outputs(Path("out"))
    ref = json.loads((DIFPY_REF / "results_in_folder.json").read_text())
    assert shape(results, free_keys=True) == shape(ref, free_keys=True)
    assert list(results) == ["imgs/phone"]
    assert {Path(m).name for ms in results["imgs/phone"].values() for m, _ in ms} == {"coffee reencoded.jpg"} or {
        Path(k).name for k in results["imgs/phone"]
    } == {"coffee reencoded.jpg"}
    assert stats["directory"] == ["imgs/holiday", "imgs/phone"]


def test_difpy_duplicates_only_and_booleans(imgs):
    assert difpy.main(["-D", "imgs", "-Z", "out", "-p", "n", "-r", "TRUE", "-ro", "1"]) == 0
    results, _, stats = outputs(Path("out"))
    assert stats["process"]["search"]["matches_found"] == {"duplicates": 1, "similar": 0}
    assert {Path(p).name for k, ms in results.items() for p in [k, *[m for m, _ in ms]]} == {
        "coffee.jpg",
        "coffee_copy.jpg",
    }
    with pytest.raises(SystemExit):
        difpy.main(["-D", "imgs", "-r", "maybe"])
    with pytest.raises(SystemExit):
        difpy.main(["-D", "imgs", "-px", "5"])
    with pytest.raises(SystemExit):
        difpy.main(["-D", "imgs", "-s", "-1"])


def test_difpy_move_and_delete_conflict_stops_before_work(imgs, capsys):
    with pytest.raises(SystemExit) as info:
        difpy.main(["-D", "imgs", "-Z", "out", "-mv", "moved", "-d", "True"])
    assert info.value.code == 2
    assert "mutually exclusive" in capsys.readouterr().err
    assert not Path("out").exists() and not Path("moved").exists()


def _same_names(tmp_path: Path) -> Path:
    """Two folders each holding a photo and a smaller copy with the same file name."""
    root = tmp_path / "same"
    for sub, seed in (("x", 1), ("y", 2)):
        write(root / sub / "big.png", photo(seed, 120, 160))
        write(root / sub / "copy.png", photo(seed, 60, 80))
    return root


def test_difpy_move_never_overwrites_and_can_be_undone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = _same_names(tmp_path)
    assert difpy.main(["-D", str(root), "-Z", "out", "-s", "20", "-mv", "moved", "-p", "False"]) == 0
    moved = sorted(p.name for p in (tmp_path / "moved").iterdir())
    assert moved == ["copy (1).png", "copy.png"]  # the second did not overwrite the first
    assert sorted(p.name for p in root.rglob("*.png")) == ["big.png", "big.png"]
    (journal,) = (tmp_path / "out").glob("difPy_*_journal.jsonl")
    entries = [json.loads(x) for x in journal.read_text().splitlines()]
    assert [(e["action"], e["state"]) for e in entries] == [("move", "planned"), ("move", "done")] * 2
    assert difpy.main(["--undo", str(journal)]) == 0
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.png")) == [
        "x/big.png",
        "x/copy.png",
        "y/big.png",
        "y/copy.png",
    ]
    assert not list((tmp_path / "moved").iterdir())


def test_difpy_move_into_a_searched_folder_twice_renames_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = _same_names(tmp_path)
    cmd = ["-D", str(root), "-Z", "out", "-s", "20", "-mv", str(root / "moved"), "-p", "False"]
    assert difpy.main(cmd) == 0
    first = sorted(p.name for p in (root / "moved").iterdir())
    assert first == ["copy (1).png", "copy.png"]
    capsys.readouterr()
    # the moved files are found again (inside the searched folder), as copies of the kept ones
    assert difpy.main(cmd) == 0
    assert sorted(p.name for p in (root / "moved").iterdir()) == first  # not "copy (1) (1).png"
    assert "2 file(s) already in" in capsys.readouterr().out
    latest = max((tmp_path / "out").glob("difPy_*_journal.jsonl"), key=os.path.getmtime)
    entries = [json.loads(x) for x in latest.read_text().splitlines()]
    assert [(e["state"], e["reason"]) for e in entries] == [("skipped", ALREADY_THERE)] * 2


def test_difpy_delete_asks_and_journals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = _same_names(tmp_path)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    assert difpy.main(["-D", str(root), "-Z", "out", "-s", "20", "-d", "True", "-p", "False"]) == 0
    assert len(list(root.rglob("*.png"))) == 4
    assert difpy.main(["-D", str(root), "-Z", "out2", "-s", "20", "-d", "True", "-sd", "True", "-p", "False"]) == 0
    assert sorted(p.name for p in root.rglob("*.png")) == ["big.png", "big.png"]
    (journal,) = (tmp_path / "out2").glob("difPy_*_journal.jsonl")
    done = [json.loads(x) for x in journal.read_text().splitlines() if '"done"' in x]
    assert sorted(Path(e["source"]).name for e in done) == ["copy.png", "copy.png"]


def test_difpy_resumes_an_interrupted_run(imgs, monkeypatch):
    import fast_diff_py._api as api

    calls = []
    real = api.run_workflow

    def interrupted(config, workdir, targets, **kw):
        calls.append(targets)  # stopped once the thumbnails are made
        real(config, workdir, stage_targets(config, "thumbnails"), **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "run_workflow", interrupted)
    assert difpy.main(["-D", "imgs", "-Z", "out", "-s", "similar", "-p", "False", "-e", "snakemake"]) == 130
    (progress,) = (Path(os.environ["FAST_DIFF_CACHE"]) / "difpy").iterdir()
    stack = next((progress / "work" / "thumbnails").glob("*.npy"))
    before = stack.stat().st_mtime_ns
    after = []

    def resumed(config, workdir, targets, **kw):
        real(config, workdir, targets, **kw)
        after.append(stack.stat().st_mtime_ns)

    monkeypatch.setattr(api, "run_workflow", resumed)
    assert difpy.main(["-D", "imgs", "-Z", "out", "-s", "similar", "-p", "False", "-e", "snakemake"]) == 0
    assert after[0] == before  # the first run's thumbnails were reused, not rebuilt
    assert outputs(Path("out"))[0]
    assert progress.is_dir()  # kept for the next run on the same folder


def test_difpy_in_one_process_resumes_an_interrupted_run(imgs, monkeypatch):
    """A small folder's run in one process, stopped after its thumbnails: the same command
    decodes nothing again."""
    import time

    from fast_diff_py import _inline

    def interrupted(self, shards):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(_inline._Run, "compare", interrupted)
        assert difpy.main(["-D", "imgs", "-Z", "out", "-s", "similar", "-p", "False"]) == 130
    (progress,) = (Path(os.environ["FAST_DIFF_CACHE"]) / "difpy").iterdir()
    assert not (progress / "work").exists()  # Snakemake never ran
    since = time.time()
    assert difpy.main(["-D", "imgs", "-Z", "out", "-s", "similar", "-p", "False"]) == 0
    assert taken_since(progress / "work-inline", since) == (14, 16)  # every image of the first run
    results, _, stats = outputs(Path("out"))
    assert results and stats["total_files"] == 16


def test_fastdiffpy_runs_and_validates(tmp_path, capsys):
    a, b = tmp_path / "A", tmp_path / "B"
    write(a / "1.png", photo(1))
    write(a / "deep" / "2.png", photo(2))
    write(b / "1_copy.png", photo(1))
    write(b / "2_copy.png", photo(2))
    out = tmp_path / "result.db"
    assert fastdiffpy.main(["-a", str(a), "-b", str(b), "-T", "10", "-o", str(out), "-C", "2"]) == 0
    con = sqlite3.connect(out)
    assert con.execute("SELECT COUNT(*) FROM dif_table WHERE dif = 0").fetchone()[0] == 2
    assert not (a / ".temp_thumb").exists() and not (a / ".task.json").exists()
    # -r: no recursion; -H -d: hashes only
    assert (
        fastdiffpy.main(["-a", str(a), "-r", "-H", "-S", "0", "-d", "-t", str(tmp_path / "t"), "-o", str(tmp_path)])
        == 0
    )
    con = sqlite3.connect(tmp_path / "fast_diff_py.db")
    assert con.execute("SELECT COUNT(*) FROM directory").fetchone()[0] == 1
    assert con.execute("SELECT COUNT(*) FROM hash_table").fetchone()[0] == 4
    assert con.execute("SELECT COUNT(*) FROM dif_table").fetchone()[0] == 0
    for bad, message in (
        (["-m"], "requires -H"),
        (["-f"], "add -d"),
        (["-M", "0.5"], "-M/--match_aspect: 0.5 is not allowed"),
        (["-T", "-1"], "-T/--threshold: -1.0 is less than the minimum of 0"),
        (["-T", "inf"], "-T/--threshold: inf is not a finite number"),
        (["-S", "9"], "-S/--shift_amount: 9 is greater than the maximum of 7"),
        (["-c", "5000"], "-c/--compression_target: 5000 is greater than the maximum of 1024"),
        (["-C", "0"], ">= 1"),
        (["-b", str(a / "1.png")], f"{str(a / '1.png')!r} is not a folder"),
        (["-b", str(tmp_path / "nowhere")], "nowhere' does not exist"),
    ):
        with pytest.raises(SystemExit):
            fastdiffpy.main(["-a", str(a), *bad])
        assert message in capsys.readouterr().err
    # where a folder is to be made, a file in the way: named before any work
    afile = tmp_path / "afile"
    afile.write_text("x")
    for bad, message in (
        (["-o", str(afile / "sub")], f"-o/--output_dir: {str(afile / 'sub')!r} cannot be made: {str(afile)!r} is a"),
        (["-o", str(afile / "x.db")], f"{str(afile / 'x.db')!r} cannot be made: {str(afile)!r} is a file"),
        (["-o", str(afile)], f"-o/--output_dir: {str(afile)!r} is a file, not a folder"),
        (["-t", str(afile)], f"-t/--temp_dir: {str(afile)!r} is a file, not a folder"),
    ):
        with pytest.raises(SystemExit):
            fastdiffpy.main(["-a", str(a), *bad])
        assert message in capsys.readouterr().err
    # -R of a file that is not a run's progress: one line naming it
    (tmp_path / "other.json").write_text('{"a": 1}')
    for task in (afile, tmp_path / "other.json"):
        assert fastdiffpy.main(["-R", str(task)]) == 1
        err = capsys.readouterr().err
        assert f"fastdiffpy: error: {str(task)!r} is not the progress of a run" in err and "Traceback" not in err
    # difpy: a file named as a folder
    for bad, message in ((a / "1.png", "is not a folder"), (tmp_path / "nowhere", "does not exist")):
        with pytest.raises(SystemExit):
            difpy.main(["-D", str(bad)])
        assert f"-D/--directory: {str(bad)!r} {message}" in capsys.readouterr().err
    for flag in ("-Z", "-mv"):
        with pytest.raises(SystemExit):
            difpy.main(["-D", str(a), flag, str(afile / "deeper")])
        assert f"{str(afile / 'deeper')!r} cannot be made: {str(afile)!r} is a file" in capsys.readouterr().err


def _interrupted_fastdiffpy(tmp_path: Path):
    """Two equal images and the FastDifPy object `fastdiffpy -a A -T 5` would run."""
    a = tmp_path / "A"
    write(a / "1.png", photo(1))
    write(a / "2.png", photo(1))
    args = fastdiffpy.build_parser().parse_args(["-a", str(a), "-T", "5"])
    cfg = fastdiffpy.config_from_args(args)
    return a, cfg, fastdiffpy.FastDifPy(config=cfg)


def test_fastdiffpy_recovers(tmp_path):
    a, cfg, fdo = _interrupted_fastdiffpy(tmp_path)
    Path(cfg.config_path).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.config_path).write_text(json.dumps(cfg.to_dict()))
    fdo.full_index()  # ... and then the run was interrupted
    # the progress lies in the run's own folder of the cache, none of it among the photos
    assert Path(cfg.config_path).parent == Path(fastdiffpy.work_dir([str(a)]))
    assert fastdiffpy.main(["-R", str(Path(cfg.config_path).parent)]) == 0
    con = sqlite3.connect(cfg.db_path)
    assert con.execute("SELECT dif FROM dif_table").fetchall() == [(0.0,)]
    assert sorted(p.name for p in a.iterdir()) == ["1.png", "2.png"]


def test_difpy_flags_reach_the_workflow(tmp_path):
    parse = difpy.build_parser().parse_args
    args = parse(
        [
            "-D",
            str(tmp_path),
            "-le",
            "False",
            "-px",
            "100",
            "-s",
            "2.5",
            "-ro",
            "no",
            "-dim",
            "yes",
            "-proc",
            "3",
            "-ch",
            "64",
            "-r",
            "f",
        ]
    )
    cfg = difpy.workflow_config(args, tmp_path / "p")
    assert cfg["allowed_file_extensions"] == ["*"] and cfg["compression_target"] == 100
    assert cfg["second_loop"] == {
        "diff_threshold": 7.5,
        "skip_matching_hash": False,
        "match_aspect_by": 0,
        "keep_non_matching_aspects": False,
    }
    assert cfg["rotate"] is False and cfg["recursive"] is False and cfg["block_size"] == 64
    assert args.processes == 3
    lazy = difpy.workflow_config(parse(["-D", str(tmp_path), "-la", "True"]), tmp_path / "p")
    assert lazy["first_loop"] == {"compute_hash": True, "shift_amount": 0}
    assert lazy["second_loop"]["skip_matching_hash"] and lazy["second_loop"]["match_aspect_by"] == 0
    assert difpy.workflow_config(parse(["-D", str(tmp_path), "-px", "5000"]), tmp_path)["block_size"] == 8
    default = validate_config(difpy.workflow_config(parse(["-D", str(tmp_path)]), tmp_path))
    assert default["thumbnail_method"] == "quality" and default["block_size"] == 8192
    # a different setting is a different progress folder; the same arguments resume the same one
    assert difpy.progress_dir(parse(["-D", str(tmp_path)])) == difpy.progress_dir(parse(["-D", str(tmp_path)]))
    assert difpy.progress_dir(parse(["-D", str(tmp_path), "-s", "3"])) != difpy.progress_dir(
        parse(["-D", str(tmp_path)])
    )


def test_difpy_lazy_and_all_extensions(imgs):
    assert (
        difpy.main(
            ["-D", "imgs", "-Z", "out", "-la", "True", "-le", "False", "-s", "similar", "-p", "False", "-px", "32"]
        )
        == 0
    )
    results, lower, stats = outputs(Path("out"))
    assert stats["invalid_files"]["logs"]["imgs/phone/notes.txt"].startswith("cannot decode")
    assert stats["process"]["build"]["parameters"]["px_size"] == 32
    # lazy compares only equal sizes: the half-size chelsea is not a match
    names = {Path(p).name for k, ms in results.items() for p in [k, *[m for m, _ in ms]]}
    assert "chelsea_small.jpg" not in names and "coffee_copy.jpg" in names


def test_fastdiffpy_flags(tmp_path, capsys):
    parse = fastdiffpy.build_parser().parse_args
    a = tmp_path / "A"
    a.mkdir()
    cfg = fastdiffpy.config_from_args(
        parse(
            [
                "-a",
                str(a),
                "-c",
                "32",
                "-H",
                "-S",
                "-2",
                "-m",
                "-M",
                "1.5",
                "-T",
                "12",
                "-l",
                "3",
                "-t",
                str(tmp_path / "t"),
            ]
        )
    )
    wf = cfg.to_workflow()
    assert wf["compression_target"] == 32 and wf["first_loop"] == {"compute_hash": True, "shift_amount": -2}
    assert wf["second_loop"]["skip_matching_hash"] and wf["second_loop"]["match_aspect_by"] == 1.5
    assert wf["second_loop"]["diff_threshold"] == 12.0
    assert wf["thumbnail_method"] == "quality"  # the default, as for difpy
    compat = fastdiffpy.config_from_args(parse(["-a", str(a), "--thumbnail_method", "compat"]))
    assert compat.to_workflow()["thumbnail_method"] == "compat"
    assert cfg.thumb_dir == str(tmp_path / "t" / ".temp_thumb")
    assert fastdiffpy.output_path(None, "/x") == "/x/fast_diff_py.db"
    assert fastdiffpy.output_path("/y/z.db", "/x") == "/y/z.db"
    assert fastdiffpy.output_path("/y", "/x") == "/y/fast_diff_py.db"
    assert "ignored" in fastdiffpy.build_parser().format_help()  # -l is documented as a no-op


def test_fastdiffpy_purge_and_verbose(tmp_path, capfd):
    a = tmp_path / "A"
    write(a / "1.png", photo(1))
    write(a / "2.png", photo(1))
    stale = Path(fastdiffpy.work_dir([str(a)])) / ".temp_thumb" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("left by an earlier run")
    assert fastdiffpy.main(["-a", str(a), "-p", "-v", "-T", "1"]) == 0
    assert not stale.exists()
    out = capfd.readouterr()
    assert "make_thumbnails" in out.out + out.err  # -v shows the workflow's jobs


@pytest.mark.parametrize("engine", ["snakemake", "auto"])
def test_fastdiffpy_resumes_without_purge(tmp_path, monkeypatch, engine):
    import time

    a, _, fdo = _interrupted_fastdiffpy(tmp_path)
    fdo.engine = engine
    fdo.full_index()
    fdo.first_loop()  # ... and then the run was interrupted
    stack = next((Path(fdo.results_dir) / "thumbnails").glob("*.npy"))
    before = stack.stat().st_mtime_ns
    seen = []
    real = fastdiffpy.FastDifPy.cleanup

    def cleanup(self, *a, **kw):
        seen.append(True)
        return real(self, *a, **kw)

    monkeypatch.setattr(fastdiffpy.FastDifPy, "cleanup", cleanup)
    since = time.time()
    assert fastdiffpy.main(["-a", str(a), "-T", "5", "-e", engine]) == 0
    if engine == "snakemake":  # the thumbnails of the interrupted run were kept: no job ran
        assert stack.stat().st_mtime_ns == before
    else:  # in one process, its stages run again and take them: nothing decoded again
        assert taken_since(Path(fdo.results_dir), since) == (2, 2)
    assert seen == []  # and are kept for the next run: the working folder is in the cache
    assert sqlite3.connect(fdo.config.db_path).execute("SELECT dif FROM dif_table").fetchall() == [(0.0,)]


def _unchanged(work: Path) -> tuple[int, int]:
    """The plan's count of decoded files unchanged since the pairs it took were kept."""
    import re

    text = (work / "logs" / "compare" / "plan_blocks.log").read_text()
    found = re.search(r"(\d+) of (\d+) decoded files unchanged since the kept run", text)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def test_difpy_takes_the_thumbnails_of_the_other_way_of_running(imgs, monkeypatch):
    """A folder that grows past what runs in one process goes on through Snakemake, whose
    jobs take the thumbnails and pairs the run in one process made; when it shrinks back, the
    run in one process takes those of Snakemake's jobs. The results are a fresh run's."""
    import time

    from fast_diff_py import _inline

    monkeypatch.setattr(_inline, "SMALL_RUN_FILES", 16)  # the 16 files of imgs
    run = ["-D", "imgs", "-s", "similar", "-p", "False"]
    assert difpy.main([*run, "-Z", "first"]) == 0
    (progress,) = (Path(os.environ["FAST_DIFF_CACHE"]) / "difpy").iterdir()
    assert (progress / "work-inline").is_dir() and not (progress / "work").exists()
    shutil.copy("imgs/holiday/rocket.jpg", "imgs/phone/aaa_rocket_copy.jpg")
    since = time.time()
    assert difpy.main([*run, "-Z", "grown"]) == 0
    assert taken_since(progress / "work", since) == (14, 17)  # through Snakemake: only the new one decoded
    assert _unchanged(progress / "work") == (14, 15)  # and only its pairs compared
    for name in ("aaa_rocket_copy.jpg", "coffee_copy.jpg"):
        os.remove(f"imgs/phone/{name}")
    since = time.time()
    assert difpy.main([*run, "-Z", "shrunk"]) == 0
    assert taken_since(progress / "work-inline", since) == (13, 15)  # in one process again: none decoded
    assert _unchanged(progress / "work-inline") == (13, 13)  # nor any pair compared
    monkeypatch.setenv("FAST_DIFF_CACHE", str(Path("fresh-cache").absolute()))
    assert difpy.main([*run, "-Z", "fresh"]) == 0
    assert outputs(Path("shrunk"))[:2] == outputs(Path("fresh"))[:2]


@pytest.mark.parametrize(("engine", "work"), [("auto", "work-inline"), ("snakemake", "work")])
def test_difpy_on_a_grown_folder_decodes_only_the_new_file(imgs, engine, work):
    """A second difpy on the same folder after a file was added takes every other thumbnail
    from the first run's working folder in the cache, and finds the new copy, in one process
    (a small folder's default) as through Snakemake."""
    import time

    assert difpy.main(["-D", "imgs", "-Z", "out", "-s", "similar", "-p", "False", "-e", engine]) == 0
    (progress,) = (Path(os.environ["FAST_DIFF_CACHE"]) / "difpy").iterdir()
    shutil.copy("imgs/holiday/rocket.jpg", "imgs/phone/aaa_rocket_copy.jpg")
    since = time.time()
    assert difpy.main(["-D", "imgs", "-Z", "again", "-s", "similar", "-p", "False", "-e", engine]) == 0
    # the 14 images decoded before taken again; only the new one (and the broken file) read
    assert taken_since(progress / work, since) == (14, 17)
    results, _, stats = outputs(Path("again"))
    matched = {Path(k).name: {Path(m).name for m, _ in ms} for k, ms in results.items()}
    assert any({"rocket.jpg", "aaa_rocket_copy.jpg"} <= {k} | ms for k, ms in matched.items())
    assert stats["total_files"] == 17
    assert (Path("again") / next(p.name for p in Path("again").glob("difPy_*_report")) / "index.html").is_file()


@pytest.mark.parametrize(("engine", "work"), [("auto", "work-inline"), ("snakemake", "work")])
def test_fastdiffpy_on_a_grown_folder_decodes_only_the_new_file(tmp_path, engine, work):
    import time

    a = tmp_path / "A"
    for i in range(4):
        write(a / f"{i}.png", photo(i))
    out = tmp_path / "result.db"
    assert fastdiffpy.main(["-a", str(a), "-T", "10", "-o", str(out), "-e", engine]) == 0
    write(a / "0_copy.png", photo(0))
    since = time.time()
    assert fastdiffpy.main(["-a", str(a), "-T", "10", "-o", str(out), "-e", engine]) == 0
    work = Path(fastdiffpy.work_dir([str(a)])) / ".temp_thumb" / work
    assert taken_since(work, since) == (4, 5)
    con = sqlite3.connect(out)
    pairs = con.execute(
        "SELECT a.filename, b.filename FROM dif_table d JOIN directory a ON a.key = d.key_a "
        "JOIN directory b ON b.key = d.key_b WHERE d.dif = 0"
    ).fetchall()
    assert sorted(map(sorted, pairs)) == [["0.png", "0_copy.png"]]
    # with -t the working folder is removed at the end, as fast-diff-py's was
    assert fastdiffpy.main(["-a", str(a), "-t", str(tmp_path / "t"), "-o", str(tmp_path / "t.db")]) == 0
    assert not (tmp_path / "t" / ".temp_thumb").exists()


@pytest.mark.parametrize("engine", ["snakemake", "inline"])
@pytest.mark.parametrize("tool", ["difpy", "fastdiffpy"])
def test_ctrl_c_ends_with_one_line_and_the_same_command_resumes(tmp_path, tool, engine):
    import glob
    import os
    import signal
    import subprocess
    import sys
    import time

    root = tmp_path / "photos"
    # in one process: photos large enough for the signal to come while the thumbnails are made
    files, size = (16, (60, 80)) if engine == "snakemake" else (48, (1200, 1600))
    for i in range(files):
        write(root / f"{i:02d}.jpg", photo(i % 8, *size), quality=90 if i < 8 else 75)
    if tool == "difpy":
        cmd = ["-D", str(root), "-Z", str(tmp_path / "z"), "-p", "False", "-e", engine]
        work = str(tmp_path / "cache" / "difpy" / "*")  # FAST_DIFF_CACHE (conftest)
    else:
        cmd = ["-a", str(root), "-t", str(tmp_path / "t"), "-o", str(tmp_path / "o"), "-e", engine]
        work = str(tmp_path / "t" / ".temp_thumb")
    # Snakemake's run has begun once its configuration is written; the run in one process
    # once its first thumbnail job has
    started = f"{work}/config.yaml" if engine == "snakemake" else f"{work}/work-inline/logs/thumbnails/*.log"
    argv = [sys.executable, "-m", f"fast_diff_py.cli.{tool}", *cmd]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=tmp_path
    )
    deadline = time.time() + 60
    while not glob.glob(started) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    if engine == "snakemake":
        time.sleep(1.0)  # Snakemake is starting or running jobs
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C on a terminal reaches the whole group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert err.strip().splitlines()[-1] == (
        f"{tool}: interrupted; run the same command again to resume (finished work is kept)"
    )
    again = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{files} files: {files} decoded" in again.stdout


def test_difpy_shows_a_line_per_stage_and_snakemake_only_when_verbose(imgs, capsys):
    assert difpy.main(["-D", "imgs", "-Z", "out", "-s", "similar"]) == 0
    said = capsys.readouterr()
    lines = (said.out + said.err).splitlines()
    stages = [line.split(":")[1].strip() for line in lines if line.startswith("fast-diff: ") and "job" in line]
    assert stages[:2] == ["index", "thumbnails"] and "merge, gallery and summary" in stages
    assert not any("Select jobs to execute" in line or "localrule" in line for line in lines)
    assert len(lines) < 30
    (log,) = (imgs.parent / "out").glob("difPy_*_log.txt")
    # a small folder's run in one process: the log names each job's log
    assert "make_thumbnails" in log.read_text() and "merge_database" in log.read_text()
    assert difpy.main(["-D", "imgs", "-Z", "snake", "-s", "similar", "-e", "snakemake"]) == 0
    said = capsys.readouterr()
    lines = (said.out + said.err).splitlines()
    stages = [line.split(":")[1].strip() for line in lines if line.startswith("fast-diff: ") and "job" in line]
    assert stages[:2] == ["index", "thumbnails"] and "merge, gallery and summary" in stages
    assert not any("Select jobs to execute" in line or "localrule" in line for line in lines)
    (log,) = (imgs.parent / "snake").glob("difPy_*_log.txt")
    assert "Finished jobid" in log.read_text()  # Snakemake's whole output, kept
    assert difpy.main(["-D", "imgs", "-Z", "out2", "-s", "similar", "-p", "False"]) == 0
    said = capsys.readouterr()
    assert not [line for line in (said.out + said.err).splitlines() if " job" in line and "steps" in line]


def test_difpy_verbose_shows_snakemakes_own_output(imgs, capfd):
    assert difpy.main(["-D", "imgs", "-Z", "out", "-v", "-s", "similar"]) == 0
    said = capfd.readouterr()
    assert "Select jobs to execute" in said.out + said.err
    assert not [line for line in (said.out + said.err).splitlines() if line.startswith("fast-diff: index:")]


def test_difpy_runs_of_one_second_keep_each_others_files(imgs, monkeypatch):
    class Frozen(difpy.datetime):  # every run in the same second
        @classmethod
        def now(cls, tz=None):
            return difpy.datetime(2026, 12, 4, 1, 2, 3)

    monkeypatch.setattr(difpy, "datetime", Frozen)
    for similarity in ("similar", "duplicates"):
        assert difpy.main(["-D", "imgs", "-Z", "out", "-s", similarity, "-p", "False"]) == 0
    first = json.loads(Path("out/difPy_20261204010203_stats.json").read_text())
    second = json.loads(Path("out/difPy_20261204010203-2_stats.json").read_text())
    assert first["process"]["search"]["parameters"]["similarity_mse"] == 5
    assert second["process"]["search"]["parameters"]["similarity_mse"] == 0
    for stamp in ("20261204010203", "20261204010203-2"):
        assert Path(f"out/difPy_{stamp}_report/index.html").is_file()
        assert Path(f"out/difPy_{stamp}_log.txt").is_file()


@pytest.mark.parametrize("prog", ["difpy", "fastdiffpy"])
def test_ctrl_c_at_any_moment_ends_in_one_line(imgs, prog):
    """From its first moments (its modules still loading) to its end, an interrupted command
    says so in one line, never with a traceback."""
    import re
    import signal
    import subprocess
    import sys
    import time

    script = Path(sys.executable).with_name(prog)
    if not script.exists():
        pytest.skip(f"{prog} is not installed beside {sys.executable}")
    args = ["-D", "imgs", "-Z", "out", "-s", "similar"] if prog == "difpy" else ["-a", "imgs", "-T", "15"]
    ends = set()
    for delay in (0.03, 0.06, 0.1, 0.15, 0.3, 0.6, 1.0, 2.0):
        proc = subprocess.Popen([str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        if proc.returncode == -signal.SIGINT and not out:
            continue  # it came before Python had set up its own handling: no code had run
        frames = re.findall(r'^  File "([^"]*)"', out, re.M)
        if "<frozen site>" in out or (
            frames and all(f == str(script) or f.startswith("<frozen ") for f in frames)
        ):  # it came in Python's own start, or as the console script began its first import:
            continue  # before any code of ours (a frame of it would be in the traceback)
        assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
        if proc.returncode == 130:
            last = out.strip().splitlines()[-1]
            assert last.startswith(f"{prog}: interrupted") and ("nothing was done" in last or "again" in last), out
            ends.add("nothing was done" in last)
        else:
            assert proc.returncode == 0, out  # it ended before the signal
    assert True in ends  # at least one interrupt came while it was starting


def test_difpy_output_inside_the_searched_folder_is_not_indexed(imgs):
    runs = []
    for _ in range(3):
        assert difpy.main(["-D", "imgs", "-Z", "imgs/out", "-s", "similar", "-p", "False"]) == 0
        newest = max(Path("imgs/out").glob("difPy_*_stats.json"), key=lambda p: p.stat().st_mtime_ns)
        runs.append(json.loads(newest.read_text())["total_files"])
    assert len(list(Path("imgs/out").glob("difPy_*_results.json"))) == 3
    assert runs == [16, 16, 16]  # the earlier runs' results, logs and galleries are no rows


END = """
import atexit, logging, sys, threading, time
from fast_diff_py.cli._start import end_process
logging.basicConfig(filename=sys.argv[1], level=logging.INFO)
atexit.register(lambda: open(sys.argv[2], "w").write("exit handler ran"))
sys.stdout.write("x" * 200_000)  # more than a pipe holds: written while the reader reads
logging.getLogger("t").info("the last line of the log")
if len(sys.argv) > 3:  # a thread still at work: Python's own end, which waits for it
    threading.Thread(target=lambda: (time.sleep(0.3), open(sys.argv[3], "w").write("thread done"))).start()
end_process(3)
print("never printed")
"""


@pytest.mark.parametrize("thread", [False, True])
def test_a_finished_command_ends_with_its_output_log_and_status(tmp_path, thread):
    """end_process, which ends difpy and fastdiffpy without the interpreter's teardown: every
    exit handler runs, the output and the log are whole, the status is kept, and a thread
    still running is waited for."""
    import subprocess
    import sys

    files = [tmp_path / "log", tmp_path / "atexit", *([tmp_path / "thread"] if thread else [])]
    done = subprocess.run([sys.executable, "-c", END, *map(str, files)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "x" * 200_000
    assert "the last line of the log" in files[0].read_text()
    assert files[1].read_text() == "exit handler ran"
    if thread:
        assert files[2].read_text() == "thread done"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full to write to")
def test_output_that_cannot_be_written_is_not_a_success(tmp_path):
    """Output still buffered when the command ends, to a full disk: status 120, as Python's
    own end gives it, not 0."""
    import subprocess
    import sys

    code = "import sys; from fast_diff_py.cli._start import end_process; sys.stdout.write('x' * 10); end_process(0)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE, text=True, env=env)
    assert done.returncode == 120
    assert "output lost" in done.stderr
