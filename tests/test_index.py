"""Indexing: filters, stable keys, shards, link loops, unreadable folders, odd names."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fast_diff_py import walk_partition, write_index

EXT = [".jpg", ".png"]


def tree(root: Path, files: list[str]) -> None:
    for f in files:
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def walk(roots, **kw):
    opts = dict(part_b=False, first_dir_index=0, recursive=True, allowed_file_extensions=EXT)
    opts.update(kw)
    return list(walk_partition([str(r) for r in roots], **opts))


def names(entries, allowed=None):
    return sorted(
        os.path.relpath(e.path, e.path.split("/r/")[0] + "/r")
        for e in entries
        if allowed is None or e.allowed == allowed
    )


def test_recursive_and_flat(tmp_path):
    root = tmp_path / "r"
    tree(root, ["a.jpg", "b.PNG", "c.txt", "sub/d.jpg", "sub/deeper/e.Jpg"])
    assert names(walk([root]), 1) == ["a.jpg", "b.PNG", "sub/d.jpg", "sub/deeper/e.Jpg"]
    assert names(walk([root]), 0) == ["c.txt"]
    assert names(walk([root], recursive=False)) == ["a.jpg", "b.PNG", "c.txt"]


def test_ignore_names_and_paths(tmp_path):
    root = tmp_path / "r"
    tree(root, ["a.jpg", "skip.jpg", "cache/x.jpg", "keep/y.jpg", "keep/cache/z.jpg", "drop/w.jpg"])
    entries = walk([root], ignore_names=["skip.jpg", "cache"], ignore_paths=[str(root / "drop")])
    assert names(entries, 1) == ["a.jpg", "keep/y.jpg"]
    assert names(entries, 0) == ["skip.jpg"]  # an ignored file is still recorded


def test_symlink_loop_ends(tmp_path):
    root = tmp_path / "r"
    tree(root, ["a.jpg", "sub/b.jpg"])
    os.symlink(root, root / "sub" / "loop")
    os.symlink(root / "sub", root / "again")
    entries = walk([root])
    assert names(entries, 1) == ["a.jpg", "sub/b.jpg"]


def test_unreadable_folder_is_reported(tmp_path, monkeypatch):
    root = tmp_path / "r"
    tree(root, ["a.jpg", "locked/b.jpg"])
    real = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    entries = walk([root])
    bad = [e for e in entries if e.error]
    assert len(bad) == 1 and bad[0].path.endswith("locked") and "PermissionError" in bad[0].error
    assert names(entries, 1) == ["a.jpg"]


def test_special_files_and_dangling_links(tmp_path):
    root = tmp_path / "r"
    tree(root, ["a.jpg"])
    os.symlink(root / "gone.jpg", root / "dangling.jpg")
    os.mkfifo(root / "pipe.jpg")
    entries = {os.path.basename(e.path): e for e in walk([root])}
    assert "cannot stat" in entries["dangling.jpg"].error
    assert "not a regular file" in entries["pipe.jpg"].error
    assert entries["a.jpg"].error is None and entries["a.jpg"].file_size == 1


def test_write_index_keys_and_shards(tmp_path):
    a, b = tmp_path / "r" / "A", tmp_path / "r" / "B"
    odd = ["with space.jpg", "ünïcode.jpg", "new\nline.jpg"]
    tree(a, ["1.jpg", "2.jpg", "x/3.jpg", *odd])
    tree(b, ["4.jpg", "5.png"])
    n = write_index(
        tmp_path / "idx",
        part_a=[str(a)],
        part_b=[str(b)],
        recursive=True,
        ignore_names=[],
        ignore_paths=[],
        allowed_file_extensions=EXT,
        shard_size=3,
    )
    assert n == 8
    shards = sorted((tmp_path / "idx").glob("shard_*.parquet"))
    assert [pq.read_metadata(s).num_rows for s in shards] == [3, 3, 2]
    rows = [r for s in shards for r in pq.read_table(s).to_pylist()]
    assert [r["key"] for r in rows] == list(range(1, 9))
    assert [r["part_b"] for r in rows] == [0] * 6 + [1] * 2
    assert {r["filename"] for r in rows} >= set(odd)
    assert {r["dir_index"] for r in rows if r["part_b"]} == {1}
    roots = pq.read_table(tmp_path / "idx" / "roots.parquet").to_pylist()
    assert [r["path"] for r in roots] == [str(a), str(b)]
    # the same tree gives the same keys
    write_index(
        tmp_path / "idx2",
        part_a=[str(a)],
        part_b=[str(b)],
        recursive=True,
        ignore_names=[],
        ignore_paths=[],
        allowed_file_extensions=EXT,
        shard_size=3,
    )
    again = [r for s in sorted((tmp_path / "idx2").glob("shard_*")) for r in pq.read_table(s).to_pylist()]
    assert [(r["key"], r["path"]) for r in again] == [(r["key"], r["path"]) for r in rows]


@pytest.mark.parametrize(
    "files,shard_size,rows",
    [
        (9, 4, [4, 5]),
        (10, 4, [4, 4, 2]),
        (8, 4, [4, 4]),
        (3, 4, [3]),
        (4, 4, [4]),
        (16, 8, [8, 8]),
        (17, 8, [8, 9]),
        (18, 8, [8, 10]),
        (19, 8, [8, 8, 3]),
    ],
)
def test_a_small_rest_joins_the_last_shard(tmp_path, files, shard_size, rows):
    tree(tmp_path / "r", [f"{i:02d}.jpg" for i in range(files)])
    assert (
        write_index(
            tmp_path / "idx",
            part_a=[str(tmp_path / "r")],
            part_b=[],
            recursive=True,
            ignore_names=[],
            ignore_paths=[],
            allowed_file_extensions=EXT,
            shard_size=shard_size,
        )
        == files
    )
    shards = sorted((tmp_path / "idx").glob("shard_*.parquet"))
    assert [pq.read_metadata(s).num_rows for s in shards] == rows
    keys = [k for s in shards for k in pq.read_table(s).column("key").to_pylist()]
    assert keys == list(range(1, files + 1))


def test_empty_partition_still_has_a_shard(tmp_path):
    (tmp_path / "empty").mkdir()
    assert (
        write_index(
            tmp_path / "idx",
            part_a=[str(tmp_path / "empty")],
            part_b=[],
            recursive=True,
            ignore_names=[],
            ignore_paths=[],
            allowed_file_extensions=EXT,
            shard_size=5,
        )
        == 0
    )
    assert pq.read_metadata(tmp_path / "idx" / "shard_00000.parquet").num_rows == 0
