"""Indexing: filters, stable keys, shards, link loops, unreadable folders, odd names."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fast_diff_py import SHARD_FILES_SUFFIX, shard_file, shard_ids, walk_partition, write_index
from fast_diff_py._formats import SHARD_FILES_SCHEMA
from fast_diff_py._index import FileEntry, _ends_shard, _every, _shards

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


def index_of(dest, part_a, part_b=(), shard_size=3, kept=None):
    """Write the index of ``part_a`` and ``part_b`` (recursive, nothing ignored) to ``dest``."""
    return write_index(
        dest,
        part_a=[str(p) for p in part_a],
        part_b=[str(p) for p in part_b],
        recursive=True,
        ignore_names=[],
        ignore_paths=[],
        allowed_file_extensions=EXT,
        shard_size=shard_size,
        kept=kept,
    )


def test_write_index_keys_and_shards(tmp_path):
    a, b = tmp_path / "r" / "A", tmp_path / "r" / "B"
    odd = ["with space.jpg", "ünïcode.jpg", "new\nline.jpg"]
    tree(a, ["1.jpg", "2.jpg", "x/3.jpg", *odd])
    tree(b, ["4.jpg", "5.png"])
    n = index_of(tmp_path / "idx", [a], [b])
    assert n == 8
    shards = [tmp_path / "idx" / shard_file(s) for s in shard_ids(tmp_path / "idx")]
    assert all(1 <= pq.read_metadata(s).num_rows <= 9 for s in shards)
    counts = pq.read_table(tmp_path / "idx" / "shards.parquet").column("files").to_pylist()
    assert counts == [pq.read_metadata(s).num_rows for s in shards]
    rows = [r for s in shards for r in pq.read_table(s).to_pylist()]
    assert [r["key"] for r in rows] == list(range(1, 9))
    assert [r["part_b"] for r in rows] == [0] * 6 + [1] * 2
    assert {r["filename"] for r in rows} >= set(odd)
    assert {r["dir_index"] for r in rows if r["part_b"]} == {1}
    roots = pq.read_table(tmp_path / "idx" / "roots.parquet").to_pylist()
    assert [r["path"] for r in roots] == [str(a), str(b)]
    # the same tree gives the same keys
    index_of(tmp_path / "idx2", [a], [b])
    again = [
        r for s in shard_ids(tmp_path / "idx2") for r in pq.read_table(tmp_path / "idx2" / shard_file(s)).to_pylist()
    ]
    assert [(r["key"], r["path"]) for r in again] == [(r["key"], r["path"]) for r in rows]
    assert shard_ids(tmp_path / "idx2") == shard_ids(tmp_path / "idx")
    for shard in shards:  # beside each shard, its rows without keys
        files = pq.read_table(shard.with_name(shard.name.replace(".parquet", SHARD_FILES_SUFFIX)))
        assert files.schema.remove_metadata().equals(SHARD_FILES_SCHEMA)
        index = pq.read_table(shard)
        for name in SHARD_FILES_SCHEMA.names[:-1]:
            assert files.column(name).equals(index.column(name)), name
        assert files.column("alias").to_pylist() == [int(k is not None) for k in index.column("same_as").to_pylist()]


def entry(path: str) -> FileEntry:
    return FileEntry(path, os.path.basename(path), 0, 0, 1, 0.0, 1, None)


@settings(max_examples=200, deadline=None)
@given(
    paths=st.lists(st.text("abcdef/", min_size=1, max_size=8), unique=True, max_size=300),
    shard_size=st.integers(1, 40),
)
def test_shards_hold_every_path_in_order_within_their_bounds(paths, shard_size):
    shards = list(_shards([[entry(p) for p in paths]], shard_size))
    assert [e.path for s in shards for e in s] == paths
    assert len(shards) >= 1
    most, least = 3 * shard_size, max(1, shard_size // 4)
    assert all(least <= len(s) <= most for s in shards[:-1]) and len(shards[-1]) <= most
    # a shard ends where its last name says (or at the longest), wherever it starts
    assert all(_ends_shard(s[-1], _every(shard_size)) or len(s) == most for s in shards[:-1])
    assert not any(_ends_shard(e, _every(shard_size)) for s in shards for e in s[least - 1 : -1])


def index_files(root, name, shard_size):
    """The files-shard bytes of an index of the tree in ``root / "r"``, by shard id."""
    index_of(root / name, [root / "r"], shard_size=shard_size)
    return {s: (root / name / shard_file(s, SHARD_FILES_SUFFIX)).read_bytes() for s in shard_ids(root / name)}


@pytest.mark.parametrize("where", ["first", "middle", "last", "removed first", "removed middle"])
def test_a_path_added_or_removed_changes_the_shard_it_falls_into_not_the_others(tmp_path, where):
    files = [f"{d}/{i:04d}.jpg" for d in ("a", "b", "c") for i in range(150)]
    tree(tmp_path / "r", files)
    before = index_files(tmp_path, "before", 20)
    if where.startswith("removed"):
        (tmp_path / "r" / files[0 if where == "removed first" else 225]).unlink()
    else:
        tree(tmp_path / "r", [{"first": "0000.jpg", "middle": "b/0099x.jpg", "last": "zzz.jpg"}[where]])
    after = index_files(tmp_path, "after", 20)
    assert 10 <= len(before) <= 45
    # a shard's files, and so its thumbnail job, are the same but for the shard the change
    # falls into (a path that ends a shard splits it in two, or joins two)
    kept = {s for s, data in after.items() if before.get(s) == data}
    assert len(after) - len(kept) <= 2, (len(before), len(after), len(kept))
    assert len(before) - len(kept) <= 2


def test_an_unchanged_shard_file_keeps_its_time_whatever_its_size(tmp_path):
    """Written again with the same bytes, a thumbnail job's input keeps the time it was first
    written with (Snakemake then sees nothing new, without comparing checksums, which it does
    only for small files); a changed one is new; the kept copies follow the last index."""
    files = [f"{d}/{i:04d}.jpg" for d in ("a", "b") for i in range(60)]
    tree(tmp_path / "r", files)
    kept = tmp_path / "kept"

    def times():
        index_of(tmp_path / "idx", [tmp_path / "r"], shard_size=10, kept=kept)
        return {
            s: (tmp_path / "idx" / shard_file(s, SHARD_FILES_SUFFIX)).stat().st_mtime_ns
            for s in shard_ids(tmp_path / "idx")
        }

    first = times()
    assert len(first) >= 4
    old = time.time_ns() - 10**11
    for path in kept.iterdir():  # as if written long ago
        os.utime(path, ns=(old, old))
    tree(tmp_path / "r", ["b/0030x.jpg"])
    second = times()
    changed = {s for s in second if second[s] != old}
    assert 1 <= len(changed) <= 2 < len(second)
    assert set(second) - set(first) <= changed
    assert sorted(p.name for p in kept.iterdir()) == sorted(shard_file(s, SHARD_FILES_SUFFIX) for s in second)
    for s in second:
        assert (kept / shard_file(s, SHARD_FILES_SUFFIX)).read_bytes() == (
            tmp_path / "idx" / shard_file(s, SHARD_FILES_SUFFIX)
        ).read_bytes()
    # a rewritten index of the same tree keeps every time, and without a kept folder none is
    assert times() == second
    index_of(tmp_path / "idx", [tmp_path / "r"], shard_size=10)
    assert all(
        (tmp_path / "idx" / shard_file(s, SHARD_FILES_SUFFIX)).stat().st_mtime_ns != old
        for s in shard_ids(tmp_path / "idx")
    )


def test_empty_partition_still_has_a_shard(tmp_path):
    (tmp_path / "empty").mkdir()
    assert index_of(tmp_path / "idx", [tmp_path / "empty"], shard_size=5) == 0
    (shard,) = shard_ids(tmp_path / "idx")
    assert pq.read_metadata(tmp_path / "idx" / shard_file(shard)).num_rows == 0
    assert pq.read_metadata(tmp_path / "idx" / shard_file(shard, SHARD_FILES_SUFFIX)).num_rows == 0


def _config(part_a, part_b, results):
    return {
        "part_a": [str(p) for p in part_a],
        "part_b": [str(p) for p in part_b],
        "recursive": True,
        "ignore_names": [],
        "ignore_paths": [],
        "allowed_file_extensions": EXT,
        "file_list": None,
        "db_path": str(results / "fast_diff.db"),
        "results_dir": str(results),
    }


def _index_rows(index_dir):
    return [pq.read_table(Path(index_dir) / shard_file(s)).to_pylist() for s in shard_ids(index_dir)]


@pytest.mark.parametrize("held", [100_000, 2])  # held in memory, or written batch by batch
def test_the_index_takes_the_walk_that_found_the_folders_changed(tmp_path, monkeypatch, caplog, held):
    """record_folder_state keeps its walk beside the state (FOLDER_WALK); the index made from
    it equals one made by walking, it is the walk of the state (a file added after it is not
    in it), what the walk logged (a link loop) is in the index's log, and a walk file of
    another state is not taken: the folders are walked again."""
    import logging

    from fast_diff_py import FOLDER_STATE, FOLDER_WALK, _index, record_folder_state

    monkeypatch.setattr(_index._WalkFile.__init__, "__defaults__", (held, 2))
    a, b, results = tmp_path / "r" / "A", tmp_path / "r" / "B", tmp_path / "results"
    tree(a, ["1.jpg", "2.jpg", "x/3.jpg", "with space.jpg", "c.txt"])
    tree(b, ["4.jpg", "5.png"])
    (a / os.fsdecode(b"not utf-8 \xff.jpg")).write_bytes(b"x")  # its name kept as bytes too
    os.symlink(a, a / "x" / "loop")
    cfg = _config([a], [b], results)
    state, walk = results / FOLDER_STATE, results / FOLDER_WALK
    assert record_folder_state(state, cfg) and walk.exists()
    assert not [p.name for p in results.iterdir() if p.name.startswith(".")]  # no scratch left
    index_of(tmp_path / "walked-here", [a], [b])
    tree(a, ["0_added_after.jpg"])
    caplog.set_level(logging.INFO, logger="fast_diff_py")
    caplog.clear()
    write_index(tmp_path / "from-walk", shard_size=3, walked=(walk, state), **_index_args(cfg))
    assert _index_rows(tmp_path / "from-walk") == _index_rows(tmp_path / "walked-here")
    assert any(r["path_bytes"] for shard in _index_rows(tmp_path / "from-walk") for r in shard)
    assert "skipping" in caplog.text and "walking the folders" not in caplog.text
    # the folders changed: a new state and walk; an older walk file is not taken for it
    stale = walk.read_bytes()
    assert record_folder_state(state, cfg) and walk.read_bytes() != stale
    walk.write_bytes(stale)
    caplog.clear()
    write_index(tmp_path / "walked-again", shard_size=3, walked=(walk, state), **_index_args(cfg))
    assert "walking the folders" in caplog.text
    files = [r["filename"] for shard in _index_rows(tmp_path / "walked-again") for r in shard]
    assert "0_added_after.jpg" in files
    # the same state: the walk file is made to hold its walk again, the state left as it is
    assert not record_folder_state(state, cfg) and _index.walk_state(walk) == state.read_text()
    # nothing changed: neither is written again
    before = walk.stat().st_mtime_ns
    time.sleep(0.01)
    assert not record_folder_state(state, cfg) and walk.stat().st_mtime_ns == before


def _index_args(cfg):
    return {
        k: cfg[k] for k in ("part_a", "part_b", "recursive", "ignore_names", "ignore_paths", "allowed_file_extensions")
    }


@pytest.mark.parametrize("held", [100_000, 2])
def test_a_walk_that_cannot_be_kept_leaves_the_state_and_the_index_walks(tmp_path, monkeypatch, caplog, held):
    """A full disk while the walk is written: the state is recorded all the same, no walk
    file (nor its temporary) is left, and the index job walks the folders itself."""
    import errno
    import logging

    from fast_diff_py import FOLDER_STATE, FOLDER_WALK, _index, record_folder_state

    class Full:
        def __init__(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_index._WalkFile.__init__, "__defaults__", (held, 2))
    monkeypatch.setattr(_index, "open", Full, raising=False)
    a, results = tmp_path / "r" / "A", tmp_path / "results"
    tree(a, ["1.jpg", "2.jpg", "x/3.jpg"])
    cfg = _config([a], [], results)
    caplog.set_level(logging.INFO, logger="fast_diff_py")
    assert record_folder_state(results / FOLDER_STATE, cfg)
    assert "not written" in caplog.text and sorted(p.name for p in results.iterdir()) == [FOLDER_STATE]
    monkeypatch.undo()
    caplog.clear()
    write_index(
        tmp_path / "idx", shard_size=3, walked=(results / FOLDER_WALK, results / FOLDER_STATE), **_index_args(cfg)
    )
    assert "walking the folders" in caplog.text
    assert sum(len(shard) for shard in _index_rows(tmp_path / "idx")) == 3


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut short: no last part
        lambda data: data[:-3],
        lambda data: data.replace(b"said", b"sayd"),
        lambda data: data.replace(b"1.jpg", b"1.jp\xff", 1),  # no longer a marshal string
        lambda data: data.replace(b"marshal 2 ", b"marshal 9 ", 1),  # another Python's
        lambda data: data + b"[]\n",  # data after the last part
    ],
)
def test_a_damaged_walk_file_is_walked_again(tmp_path, caplog, damage):
    """A walk file that names the right state but cannot be read whole (or was written by
    another Python's marshal) is not taken: the index job walks the folders and says why."""
    import logging

    from fast_diff_py import FOLDER_STATE, FOLDER_WALK, record_folder_state

    a, results = tmp_path / "r" / "A", tmp_path / "results"
    tree(a, ["1.jpg", "2.jpg", "x/3.jpg"])
    cfg = _config([a], [], results)
    record_folder_state(results / FOLDER_STATE, cfg)
    walk = results / FOLDER_WALK
    walk.write_bytes(damage(walk.read_bytes()))
    caplog.set_level(logging.INFO, logger="fast_diff_py")
    write_index(tmp_path / "idx", shard_size=3, walked=(walk, results / FOLDER_STATE), **_index_args(cfg))
    assert "not read" in caplog.text and "walking the folders" in caplog.text
    index_of(tmp_path / "walked", [a])
    assert _index_rows(tmp_path / "idx") == _index_rows(tmp_path / "walked")


def test_excluded_paths_stay_out_when_reached_through_a_link(tmp_path):
    # the searched folder holds a link to the folder above it, where the results and the
    # database are: neither is indexed under the link's name
    tree(tmp_path / "photos", ["a.jpg", "sub/b.jpg"])
    tree(tmp_path / "results" / "work", ["thumb.png", "deep/x.jpg"])
    (tmp_path / "results" / "fast.db").write_bytes(b"db")
    (tmp_path / "photos" / "up").symlink_to(tmp_path)
    shown = tmp_path / "photos" / "elsewhere"  # the database's folder, by a second name
    shown.mkdir()
    (shown / "db.jpg").symlink_to(tmp_path / "results" / "fast.db")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "fast.db").hardlink_to(tmp_path / "results" / "fast.db")
    (tmp_path / "photos" / "via").symlink_to(tmp_path / "linked")
    excluded = [str(tmp_path / "results" / "work"), str(tmp_path / "results" / "fast.db")]
    found = {os.path.relpath(e.path, tmp_path) for e in walk([tmp_path / "photos"], exclude_paths=excluded)}
    assert not [p for p in found if "/work/" in p or p.endswith("fast.db")]
    # what else is there is indexed as before, through the link too (a user's own link)
    assert {"photos/a.jpg", "photos/sub/b.jpg", "photos/elsewhere/db.jpg"} <= found
    assert "photos/up/photos/a.jpg" not in found  # the folder itself is listed once (link loop)
    without = {os.path.relpath(e.path, tmp_path) for e in walk([tmp_path / "photos"])}
    assert {"photos/up/results/work/thumb.png", "photos/up/results/fast.db", "photos/up/linked/fast.db"} <= without


def test_the_folder_state_depends_on_the_entries_alone():
    from fast_diff_py._index import _digest_walk

    def entries(shared: bool) -> list[FileEntry]:
        folder = "/photos/" + "x" * 40  # one object in every entry, or a new one in each
        made = []
        for i in range(3):
            path = (folder if shared else "".join(["/photos/", "x" * 40])) + f"/{i}.jpg"
            made.append(FileEntry(path, f"{i}.jpg", 0, 0, 10 + i, 1.5, 1, None, None, 1, 2**63 + i, 10**18, 0))
        return made

    one, two = entries(True), entries(False)
    same = _digest_walk(["/photos"], [], [one], None)
    assert same == _digest_walk(["/photos"], [], [two], None)
    other = [one[0], one[1], one[2]._replace(mtime_ns=one[2].mtime_ns + 1)]
    assert _digest_walk(["/photos"], [], [other], None) != same
    assert _digest_walk(["/photos"], [], [one[:2]], None) != same


_NAME = st.text(alphabet="ab.J", min_size=1, max_size=6).filter(lambda n: n not in (".", ".."))


@settings(max_examples=40, deadline=None)
@given(
    names=st.lists(_NAME, min_size=1, max_size=12, unique=True),
    extensions=st.sampled_from([[".jpg"], [".J", ".b"], ["*"], ["."], [".ab"]]),
    ignore=st.lists(_NAME, max_size=2),
)
def test_walk_entries_are_each_files_own_description(tmp_path_factory, names, extensions, ignore):
    """The walk's entries (a fast path for plain files) equal what ``_file_entry`` makes of
    each directory entry: extensions of names with several, leading or trailing dots, links,
    names not valid UTF-8, ignored names and paths, a left-out file."""
    from fast_diff_py._index import _file_entry
    from fast_diff_py._paths import native

    root = tmp_path_factory.mktemp("walk")
    for i, name in enumerate(names):
        (root / ("sub" if i % 3 == 0 else ".")).mkdir(exist_ok=True)
        (root / ("sub" if i % 3 == 0 else ".") / name).write_bytes(b"x" * i)
    os.symlink(root / names[0] if (root / names[0]).exists() else root / "sub" / names[0], root / "link.jpg")
    (root / os.fsdecode(b"bad\xff.jpg")).write_bytes(b"y")
    left_out = root / "results.db"
    left_out.write_bytes(b"z")
    entries = list(
        walk_partition(
            [str(root)],
            part_b=True,
            first_dir_index=3,
            recursive=True,
            ignore_names=ignore,
            ignore_paths=[str(root / "sub" / names[0])],
            allowed_file_extensions=extensions,
            exclude_paths=[str(left_out)],
        )
    )
    assert not any(e.path.endswith("results.db") for e in entries)
    listed = {d.path: d for folder in (root, root / "sub") if folder.exists() for d in os.scandir(folder)}
    for e in entries:
        d = listed[native(e.path, e.path_bytes)]
        ignored = d.name in ignore or d.path == str(root / "sub" / names[0])
        assert e == _file_entry(d, True, 3, ignored, {x.lower() for x in extensions}), d.path
    assert len(entries) == len(names) + 2  # and the link and the name not valid UTF-8


_CELL = st.tuples(
    st.sampled_from(["a", "b", "é", None, "", "ab" * 40]),
    st.one_of(st.none(), st.integers(-2, 2)),
    st.integers(0, 3),
    st.sampled_from([None, b"x", b"y", b""]),
    st.sampled_from([0.5, 1.5, 0.0, -0.0, None]),
    st.sampled_from(["x", "xy", "yx", None]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_CELL, max_size=12), st.lists(_CELL, max_size=12))
# Python's hash(-1) == hash(-2): two rows of one mix, the equal one second
@example(
    [("a", None, 0, None, 1.5, "x"), ("a", -1, 0, None, 1.5, "x")],
    [("a", -2, 0, None, 1.5, "x"), ("a", -1, 0, None, 1.5, "x")],
)
def test_match_rows_finds_the_first_equal_row(ours, theirs):
    """``match_rows`` (a mix of each row, sorted and searched, then checked) gives what
    looking up each row among the others one by one gives: the first equal one, nulls equal."""
    import pyarrow as pa

    from fast_diff_py._io import match_rows

    types = {"p": pa.string(), "n": pa.int64(), "i": pa.int8(), "b": pa.binary(), "f": pa.float64()}
    types["q"] = pa.large_string()
    schema = pa.schema(list(types.items()))

    def table(rows):  # in two chunks, each a slice of a table with a row before them
        if not rows:
            return schema.empty_table()
        whole = pa.table({c: [r[k] for r in [rows[0], *rows]] for k, c in enumerate(schema.names)}, schema=schema)
        half = len(rows) // 2
        return pa.concat_tables([whole.slice(1, half), whole.slice(1 + half)])

    naive = [next((j for j, t in enumerate(theirs) if t == r), -1) for r in ours]
    assert match_rows(table(ours), table(theirs), schema.names).tolist() == naive
