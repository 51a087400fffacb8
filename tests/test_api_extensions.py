"""The API's user extensions, caller-supplied file lists and pair pictures, end to end."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import cv2
import pytest
from conftest import photo, write

from fast_diff_py import Config, ConfigError, FastDifPy, FirstLoopConfig, SecondLoopConfig

TESTS = Path(__file__).parent


def _config(tmp_path, **kw) -> Config:
    return Config(
        part_a=[str(tmp_path / "A")],
        db_path=str(tmp_path / "out.db"),
        thumb_dir=str(tmp_path / "work"),
        config_path=str(tmp_path / "task.json"),
        **kw,
    )


def _run(fdo: FastDifPy) -> None:
    fdo.full_index()
    fdo.first_loop()
    fdo.second_loop()
    fdo.commit()


def test_user_functions_run_in_the_jobs(tmp_path, monkeypatch):
    import diffs

    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    a = tmp_path / "A"
    for i in range(3):
        write(a / f"{i}.png", photo(i, 40, 40))
    write(a / "0_q.jpg", photo(0, 40, 40), quality=70)
    cfg = _config(
        tmp_path,
        first_loop=FirstLoopConfig(compute_hash=True, shift_amount=0),
        second_loop=SecondLoopConfig(diff_threshold=40.0),
    )
    fdo = FastDifPy(config=cfg, purge=True)
    fdo.hash_fn = diffs.coarse_hash
    fdo.cpu_diff = diffs.mean_abs
    _run(fdo)
    con = sqlite3.connect(tmp_path / "out.db")
    hashes = [h for (h,) in con.execute("SELECT hash FROM hash_table")]
    assert hashes and all(h.startswith("m") for h in hashes)
    thumbs = {}
    from fast_diff_py import decode_thumbnail

    for key, path in con.execute("SELECT key, path FROM directory"):
        thumbs[key] = decode_thumbnail(path, 64)[0]
    stored = {(ka, kb): d for ka, kb, d in con.execute("SELECT key_a, key_b, dif FROM dif_table")}
    expected = {(ka, kb): diffs.mean_abs(thumbs[ka], thumbs[kb], True) for ka in thumbs for kb in thumbs if ka < kb}
    assert stored == {k: v for k, v in expected.items() if v <= 40.0}
    assert stored  # the threshold keeps some pairs of the custom metric


def test_unimportable_user_function_is_refused(tmp_path):
    write(tmp_path / "A" / "1.png", photo(1))
    write(tmp_path / "A" / "2.png", photo(2))
    fdo = FastDifPy(config=_config(tmp_path))
    fdo.cpu_diff = lambda a, b, r: 0.0
    with pytest.raises(ConfigError, match="module-level function"):
        fdo.full_index()
    fdo.cpu_diff = "no_such_module:f"
    with pytest.raises(ConfigError, match="config key 'cpu_diff': cannot import module 'no_such_module'"):
        fdo.full_index()  # refused before any work, not where pairs are compared
    assert not os.path.exists(fdo.config.db_path)


def test_populate_partition(tmp_path):
    a, elsewhere = tmp_path / "A", tmp_path / "elsewhere"
    write(a / "ignored_by_list.png", photo(9))
    one = write(elsewhere / "one.png", photo(1))
    two = write(elsewhere / "two.png", photo(1))
    txt = elsewhere / "notes.txt"
    txt.write_text("x")
    cfg = _config(tmp_path, second_loop=SecondLoopConfig(diff_threshold=1.0))
    fdo = FastDifPy(config=cfg, purge=True)
    fdo.index_preamble()
    assert fdo.populate_partition([one, txt], check_ext=True) == 2
    assert fdo.populate_partition([two, elsewhere / "missing.png"], part_a=False) == 2
    fdo.index_epilogue()
    fdo.first_loop()
    fdo.second_loop()
    fdo.commit()
    con = sqlite3.connect(tmp_path / "out.db")
    rows = con.execute(
        "SELECT filename, part_b, allowed, success, error IS NOT NULL FROM directory ORDER BY key"
    ).fetchall()
    assert rows == [
        ("one.png", 0, 1, 1, 0),
        ("notes.txt", 0, 0, -1, 0),
        ("two.png", 1, 1, 1, 0),
        ("missing.png", 1, 1, 0, 1),
    ]
    assert con.execute("SELECT key_a, key_b, dif FROM dif_table").fetchall() == [(1, 3, 0.0)]
    with pytest.raises(RuntimeError, match="index_preamble"):
        FastDifPy(config=cfg).populate_partition([one])


def test_make_diff_plots(tmp_path):
    a = tmp_path / "A"
    write(a / "x.png", photo(1, 80, 120))
    write(a / "x_small.png", cv2.resize(photo(1, 80, 120), (60, 40), interpolation=cv2.INTER_AREA))
    write(a / "y.png", photo(2, 80, 120))
    write(a / "y_q.jpg", photo(2, 80, 120), quality=60)
    plots = tmp_path / "plots"
    cfg = _config(
        tmp_path, second_loop=SecondLoopConfig(diff_threshold=300.0, make_diff_plots=True, plot_output_dir=str(plots))
    )
    fdo = FastDifPy(config=cfg, purge=True)
    _run(fdo)
    pairs = list(fdo.get_diff_pairs())
    pictures = sorted(plots.glob("*.png"))
    assert len(pictures) == len(pairs) == 2
    img = cv2.imread(str(pictures[0]))
    assert img.shape[0] == 66 + 256 and img.shape[1] > 2 * 256
    assert not (img[66:] == 255).all()
    assert fdo.make_diff_plots(str(tmp_path / "few"), plot_threshold=min(d for *_, d in pairs)) == 1
    cfg.second_loop.plot_output_dir = None
    with pytest.raises(ConfigError, match="plot_output_dir"):
        fdo.second_loop()


def test_a_failing_job_is_named_with_its_error_and_its_log(tmp_path, monkeypatch):
    from fast_diff_py import RunError

    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    for i in range(2):
        write(tmp_path / "A" / f"{i}.png", photo(i))
    fdo = FastDifPy(config=_config(tmp_path), engine="snakemake")  # a job of the workflow fails
    fdo.cpu_diff = "diffs:broken_diff"
    with pytest.raises(RunError) as caught:
        fdo.commit()
    message = str(caught.value)
    logs = tmp_path / "work" / "work" / "logs" / "compare"
    assert "ZeroDivisionError: the user's function failed" in message
    assert str(logs) in message
    log = next(logs.glob("compare_blocks_*.log")).read_text()
    assert "Traceback" in log and "ZeroDivisionError" in log  # the traceback is in the job's log
