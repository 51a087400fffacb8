"""Shared helpers: small generated images and a runner for the workflow."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from fast_diff_py._workflow import snakemake_command

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def photo(seed: int, h: int = 120, w: int = 160) -> np.ndarray:
    """A smooth random colour image (BGR uint8) that JPEG compresses like a photo."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def write(path: Path, img: np.ndarray, quality: int = 95) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, img, params)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def run_workflow(
    workdir: Path, config: dict, *args: str, check: bool = True, cores: int = 2
) -> subprocess.CompletedProcess:
    """Run the workflow as ``snakemake`` does from its command line (the config written as
    given, not validated first, unlike ``fast_diff_py.run_workflow``), in ``workdir`` with
    ``config``; results land in workdir/results."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [*snakemake_command(workdir, cfg), "--cores", str(cores), "--rerun-incomplete", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def shard_inputs(index_dir: Path) -> list[Path]:
    """The thumbnail jobs' inputs of the index in ``index_dir`` (its shards' rows without
    keys), in walk order."""
    from fast_diff_py import SHARD_FILES_SUFFIX, shard_file, shard_ids

    return [Path(index_dir) / shard_file(s, SHARD_FILES_SUFFIX) for s in shard_ids(index_dir)]


def shard_contents(work: Path) -> dict[str, bytes]:
    """Each shard's thumbnail job input of the workflow run in ``work``, by shard id."""
    return {p.name: p.read_bytes() for p in shard_inputs(work / "results" / "work" / "index")}


def thumbnail_jobs(proc) -> list[str]:
    """The shards whose thumbnail jobs a workflow run (run_workflow's result) ran."""
    import re

    out = proc.stdout + proc.stderr
    return sorted(re.findall(r"rule make_thumbnails:\n(?:\s+\w+:.*\n)*?\s+wildcards: shard=(\d+)", out))


def taken_since(work: Path, since: float) -> tuple[int, int]:
    """Files the thumbnail jobs that ran after ``since`` took from the last run's thumbnails,
    of their files."""
    taken = total = 0
    for log in (work / "logs" / "thumbnails").glob("make_thumbnails_*.log"):
        if log.stat().st_mtime >= since:
            for a, b in re.findall(r"(\d+) of (\d+) files taken from the last run", log.read_text()):
                taken, total = taken + int(a), total + int(b)
    return taken, total


def db_rows(db: Path, tables: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every row of the product's tables, in key order (and of ``tables`` besides, such as
    file_state, which names the versions of the files read: the same only for the same files)."""
    con = sqlite3.connect(db)
    try:
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            for t in ("directory", "hash_table", "dif_table", "dir_index_lookup", *tables)
        }
    finally:
        con.close()


@pytest.fixture
def dup_folder(tmp_path: Path) -> dict:
    """A folder of images with known duplicates: a re-encode, a rotation, a resize, an exact copy."""
    root = tmp_path / "photos"
    originals = {f"orig_{i}.jpg": photo(i) for i in range(6)}
    for name, img in originals.items():
        write(root / name, img)

    def decoded(name):
        return cv2.imdecode(np.fromfile(root / name, np.uint8), cv2.IMREAD_COLOR)

    write(root / "sub" / "orig_0_reencoded.jpg", decoded("orig_0.jpg"), quality=70)
    write(root / "sub" / "orig_1_rot90.png", np.rot90(decoded("orig_1.jpg")).copy())
    write(root / "sub" / "orig_2_half.png", cv2.resize(originals["orig_2.jpg"], (80, 60), interpolation=cv2.INTER_AREA))
    (root / "sub" / "orig_3_copy.jpg").write_bytes((root / "orig_3.jpg").read_bytes())
    expected = {
        ("orig_0.jpg", "orig_0_reencoded.jpg"),
        ("orig_1.jpg", "orig_1_rot90.png"),
        ("orig_2.jpg", "orig_2_half.png"),
        ("orig_3.jpg", "orig_3_copy.jpg"),
    }
    return {"root": root, "expected": expected}


@pytest.fixture(autouse=True)
def _own_trash(monkeypatch, tmp_path):
    """Deleted files go to a trash of the test's own, not the user's; the API's and
    fastdiffpy's working folders to a cache of the test's own."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("FAST_DIFF_CACHE", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _no_threads_oversubscription(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
