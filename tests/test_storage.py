"""Photos in a storage: a whole run with --default-storage-provider s3 --shared-fs-usage none
against an S3 server on localhost (moto's server mode), and the listing that stands in for
the folder walk there."""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import REPO, db_rows, photo, run_workflow, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fast_diff_py._errors import FolderError, ImageReadError
from fast_diff_py._files import FileIdentity, read_file
from fast_diff_py._index import walk_partition, write_file_list
from fast_diff_py._storage import list_storage

EXAMPLES = REPO / "examples" / "images"
BUCKET = "photos-bucket"
PREFIX = f"s3://{BUCKET}/run"


# ---------------------------------------------------------------------------------------
# the listing: a walk's order and rules, from a storage's inventory


class _FakeObject:
    """A storage object of the interface list_storage uses, over a local folder."""

    def __init__(self, root: Path, query: str) -> None:
        self.root, self.query = root, query

    def cache_key(self, local_suffix: str | None = None) -> str:
        return "cache/" + (local_suffix or self.query.split("://", 1)[1])

    async def inventory(self, cache) -> None:
        from snakemake_interface_storage_plugins.io import Mtime

        # as the S3 plugin does: every object whose key starts with the query's folder
        parent = posixpath.dirname(self.query.split("://", 1)[1])
        for p in sorted(self.root.rglob("*")):
            key = "bucket/" + p.relative_to(self.root).as_posix()
            if p.is_file() and key.startswith(parent):
                cache.size[self.cache_key(key)] = p.stat().st_size
                cache.mtime[self.cache_key(key)] = Mtime(storage=p.stat().st_mtime)


class _FakeStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def object(self, query: str) -> _FakeObject:
        return _FakeObject(self.root, query)


_names = st.sampled_from(["a", "a2", "b", "a.b", "Z", "x_1", ".cache", "img"])
_exts = st.sampled_from([".jpg", ".png", ".txt", ".JPG", ""])
_files = st.lists(
    st.tuples(st.lists(_names, max_size=3), _names, _exts),
    min_size=1,
    max_size=25,
    unique_by=lambda f: (tuple(f[0]), f[1], f[2]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=_files, recursive=st.booleans(), ignore=st.booleans())
def test_a_storage_listing_is_a_walk_of_the_same_folders(tmp_path_factory, files, recursive, ignore):
    tmp = tmp_path_factory.mktemp("walk")
    made = 0
    for folders, name, ext in files:
        path = tmp / "photos" / Path(*folders) / (name + ext)
        if any(p.exists() and p.is_file() for p in [path, *path.parents]) or path.is_dir():
            continue  # a name taken by a folder, or a folder by a file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * (made + 1))
        made += 1
    (tmp / "photos2").mkdir(exist_ok=True)  # a neighbour sharing the prefix: never listed
    (tmp / "photos2" / "other.jpg").write_bytes(b"y")
    rules = dict(
        recursive=recursive,
        ignore_names=[".cache", "Z"] if ignore else [],
        ignore_paths=[str(Path("photos") / "b")] if ignore else [],
        allowed_file_extensions=[".jpg", ".png"],
        exclude_paths=[str(Path("photos") / "a2")] if ignore else [],
    )
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        walked = list(walk_partition(["photos"], part_b=False, first_dir_index=0, **rules))
        listed = list_storage(_FakeStorage(tmp), "fake://bucket", part_a=["photos"], part_b=[], **rules).to_pylist()
    finally:
        os.chdir(cwd)
    assert [(r["path"], r["allowed"], r["file_size"], r["dir_index"], r["part_b"]) for r in listed] == [
        (e.path, e.allowed, e.file_size, e.dir_index, e.part_b) for e in walked
    ]


def test_a_folder_missing_from_the_storage_is_named(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(FolderError, match=r"config key 'part_b': folder 'elsewhere' holds no file in the storage"):
        list_storage(
            _FakeStorage(tmp_path),
            "fake://bucket",
            part_a=[],
            part_b=["elsewhere"],
            recursive=True,
            ignore_names=[],
            ignore_paths=[],
            allowed_file_extensions=[".jpg"],
        )


def test_a_staged_copy_is_known_by_its_size(tmp_path):
    f = tmp_path / "copy.jpg"
    f.write_bytes(b"abc")
    data, _ = read_file(str(f), FileIdentity(-1, 0, 3, -1))
    assert data == b"abc"
    with pytest.raises(ImageReadError, match="file_size 4 -> 3"):
        read_file(str(f), FileIdentity(-1, 0, 4, -1))
    # a file of the folders is still known by all four
    st_ = f.stat()
    with pytest.raises(ImageReadError, match="mtime_ns"):
        read_file(str(f), FileIdentity(st_.st_dev, st_.st_ino, 3, st_.st_mtime_ns - 1))


# ---------------------------------------------------------------------------------------
# a whole run against an S3 server on localhost


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    pytest.importorskip("moto.server", reason="moto[server] (the test extra) is not installed")
    pytest.importorskip("snakemake_storage_plugin_s3", reason="snakemake-storage-plugin-s3 is not installed")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    s3 = boto3.resource(
        "s3", endpoint_url=url, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    try:
        for _ in range(100):
            try:
                s3.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                if server.poll() is not None:
                    pytest.fail("the S3 server (moto) did not start")
                time.sleep(0.1)
        else:
            pytest.fail("the S3 server (moto) did not answer")
        yield url, s3.Bucket(BUCKET)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _storage_args(url: str) -> list[str]:
    return [
        "--default-storage-provider",
        "s3",
        "--default-storage-prefix",
        PREFIX,
        "--storage-s3-endpoint-url",
        url,
        "--storage-s3-access-key",
        "test",
        "--storage-s3-secret-key",
        "test",
        "--shared-fs-usage",
        "none",
    ]


def _upload(bucket, local_root: Path, folder: str) -> None:
    for p in sorted((local_root / folder).rglob("*")):
        if p.is_file():
            bucket.upload_file(str(p), f"run/{p.relative_to(local_root).as_posix()}")


def _comparable(rows: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """A database's rows without what a storage records otherwise: the files' times (the
    objects' own) and the searched folders' names (their storage queries)."""
    out = dict(rows)
    out["directory"] = [r[:9] + r[10:] for r in rows["directory"]]
    out["dir_index_lookup"] = [(i, b) for i, _, b in rows["dir_index_lookup"]]
    return out


def test_a_run_with_the_photos_in_s3_equals_a_local_run(s3_server, tmp_path):
    url, bucket = s3_server
    local = tmp_path / "local"
    shutil.copytree(EXAMPLES, local / "photos" / "a")
    write(local / "photos" / "a" / "deep" / "er" / "coffee_copy.jpg", photo(7))
    write(local / "photos" / "a" / ".cache" / "thumb.jpg", photo(8))  # ignored folder
    write(local / "photos" / "a2" / "neighbour.jpg", photo(7))  # shares the prefix, not searched
    write(local / "photos" / "b" / "seven.jpg", photo(7))
    shutil.copy(EXAMPLES / "holiday" / "coffee.jpg", local / "photos" / "b" / "coffee.jpg")
    _upload(bucket, local, "photos")
    config = {
        "part_a": ["photos/a"],
        "part_b": ["photos/b"],
        "ignore_names": [".cache"],
        "shard_size": 6,
        "block_size": 8,
    }
    remote = tmp_path / "remote"  # holds no photo: every one comes from the bucket
    run_workflow(local, config)
    proc = run_workflow(remote, config, *_storage_args(url))
    assert not (remote / "photos").exists()
    assert f"database: {PREFIX}/results/fast_diff.db" in proc.stdout

    def stored_db() -> dict[str, list[tuple]]:
        bucket.download_file("run/results/fast_diff.db", str(tmp_path / "s3.db"))
        return db_rows(tmp_path / "s3.db")

    got, want = stored_db(), db_rows(local / "results" / "fast_diff.db")
    assert _comparable(got) == _comparable(want)
    assert [p for _, p, _ in got["dir_index_lookup"]] == [f"{PREFIX}/photos/a", f"{PREFIX}/photos/b"]
    assert len(want["dif_table"]) >= 3  # the copies across a and b were found
    keys = ["run/results/summary.json", "run/results/report/index.html"]
    assert all(list(bucket.objects.filter(Prefix=k)) for k in keys)
    # the gallery's images link to their photos in the bucket, relative to the gallery
    meta = bucket.Object("run/results/report/data/meta.js").get()["Body"].read().decode()
    first = re.search(r'"file": ?"(groups-[^"]+)"', meta).group(1)
    page = bucket.Object(f"run/results/report/data/{first}").get()["Body"].read().decode()
    urls = re.findall(r'"url": ?"([^"]+)"', page)
    assert urls and all(u.startswith("../../photos/") for u in urls)
    stored = {o.key for o in bucket.objects.filter(Prefix="run/photos/")}
    assert {posixpath.normpath(f"run/results/report/{unquote(u)}") for u in urls} <= stored

    # no change: nothing runs
    proc = run_workflow(remote, config, *_storage_args(url))
    assert "Nothing to be done" in proc.stdout + proc.stderr

    # added, replaced (same name and size) and removed objects: the same as a local rerun
    shutil.copy(EXAMPLES / "holiday" / "rocket.jpg", local / "photos" / "a" / "000_rocket_copy.jpg")
    coffee = local / "photos" / "b" / "coffee.jpg"
    data = bytearray(coffee.read_bytes())
    data[-200:-100] = bytes(100)  # other pixels, the same size
    coffee.write_bytes(bytes(data))
    (local / "photos" / "a" / "holiday" / "camera.jpg").unlink()
    for rel in ["photos/a/000_rocket_copy.jpg", "photos/b/coffee.jpg"]:
        bucket.upload_file(str(local / rel), f"run/{rel}")
    bucket.Object("run/photos/a/holiday/camera.jpg").delete()
    run_workflow(local, config)
    run_workflow(remote, config, *_storage_args(url))
    got, want = stored_db(), db_rows(local / "results" / "fast_diff.db")
    assert _comparable(got) == _comparable(want)
    assert not any("camera.jpg" in r[1] for r in got["directory"])
    assert any("000_rocket_copy.jpg" in r[1] for r in got["directory"])

    # a run that stopped after its plan job began (its outputs gone from the storage): a plain
    # rerun finishes it, the database that of the objects as they are now
    shutil.copy(EXAMPLES / "holiday" / "rocket.jpg", local / "photos" / "b" / "000_rocket_again.jpg")
    bucket.upload_file(str(local / "photos/b/000_rocket_again.jpg"), "run/photos/b/000_rocket_again.jpg")
    run_workflow(remote, config, *_storage_args(url), "--until", "index_files")
    bucket.objects.filter(Prefix="run/results/work/plan/").delete()
    run_workflow(local, config)
    run_workflow(remote, config, *_storage_args(url))
    got, want = stored_db(), db_rows(local / "results" / "fast_diff.db")
    assert _comparable(got) == _comparable(want)
    assert any("000_rocket_again.jpg" in r[1] for r in got["directory"])


def test_a_storage_run_refuses_a_file_list(s3_server, tmp_path):
    url, _ = s3_server
    write_file_list(tmp_path / "files.parquet", [("photos/x.jpg", True)], [])
    proc = run_workflow(
        tmp_path, {"part_a": ["photos"], "file_list": "files.parquet"}, *_storage_args(url), check=False
    )
    assert proc.returncode != 0
    assert "'file_list' ('files.parquet') is not read from a storage" in proc.stdout + proc.stderr
