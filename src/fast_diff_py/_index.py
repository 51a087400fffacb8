"""Indexing: walk the partitions and write the file manifest as Parquet shards."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Iterator
from typing import NamedTuple
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ._io import atomic_path, read_parquet

__all__ = ["INDEX_SCHEMA", "FileEntry", "walk_partition", "write_index", "shard_paths"]

logger = logging.getLogger(__name__)

INDEX_SCHEMA = pa.schema(
    [
        ("key", pa.int64()),
        ("path", pa.string()),
        ("filename", pa.string()),
        ("part_b", pa.int8()),
        ("dir_index", pa.int32()),
        ("file_size", pa.int64()),
        ("created", pa.float64()),
        ("allowed", pa.int8()),
        ("error", pa.string()),
    ]
)
ROOTS_SCHEMA = pa.schema([("dir_index", pa.int32()), ("path", pa.string()), ("part_b", pa.int8())])


class FileEntry(NamedTuple):
    """One indexed file (or unreadable folder) before it gets its key."""

    path: str
    filename: str
    part_b: int
    dir_index: int
    file_size: int
    created: float
    allowed: int
    error: str | None


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def walk_partition(
    roots: Iterable[str],
    *,
    part_b: bool,
    first_dir_index: int,
    recursive: bool,
    ignore_names: Iterable[str] = (),
    ignore_paths: Iterable[str] = (),
    allowed_file_extensions: Iterable[str],
) -> Iterator[FileEntry]:
    """Yield every file under ``roots`` in a deterministic (sorted, depth-first) order.

    Files that are ignored or have a disallowed extension are yielded with ``allowed = 0``;
    a folder that cannot be listed is yielded as an entry with its error. Symbolic links to
    folders are followed, but each folder is visited once, so link loops end.
    """
    names = set(ignore_names)
    paths = {_norm(p) for p in ignore_paths}
    extensions = {e.lower() for e in allowed_file_extensions}
    for offset, root in enumerate(roots):
        dir_index = first_dir_index + offset
        visited: set[tuple[int, int]] = set()
        # Folders reached through a symbolic link wait until every real folder is done, so
        # a folder reachable both ways is listed under its real path.
        stack, linked = [root], []
        while stack or linked:
            folder = stack.pop() if stack else linked.pop(0)
            try:
                st = os.stat(folder)
                if (st.st_dev, st.st_ino) in visited:
                    logger.info("skipping %r: folder already visited (link loop)", folder)
                    continue
                visited.add((st.st_dev, st.st_ino))
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                logger.warning("cannot list folder %r: %s", folder, exc)
                yield FileEntry(
                    folder, os.path.basename(folder), int(part_b), dir_index, -1, -1.0, 0,
                    f"cannot list folder: {type(exc).__name__}: {exc.strerror or exc}",
                )
                continue
            subfolders = []
            for entry in entries:
                ignored = entry.name in names or bool(paths) and _norm(entry.path) in paths
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    if recursive and not ignored:
                        (linked if entry.is_symlink() else subfolders).append(entry.path)
                    continue
                yield _file_entry(entry, part_b, dir_index, ignored, extensions)
            stack.extend(reversed(subfolders))


def _stat(get_stat) -> tuple[int, float, str | None]:
    """``(size, created, error)`` of one file, never raising."""
    try:
        st = get_stat()
    except OSError as exc:
        return -1, -1.0, f"cannot stat file: {type(exc).__name__}: {exc.strerror or exc}"
    error = None if stat.S_ISREG(st.st_mode) else f"not a regular file (mode {stat.filemode(st.st_mode)})"
    return st.st_size, max(st.st_ctime, -1.0), error


def _file_entry(entry: os.DirEntry, part_b: bool, dir_index: int, ignored: bool,
                extensions: set[str]) -> FileEntry:
    """Describe one non-folder directory entry, never raising."""
    allowed = not ignored and ("*" in extensions
                               or os.path.splitext(entry.name)[1].lower() in extensions)
    size, created, error = _stat(entry.stat)
    return FileEntry(entry.path, entry.name, int(part_b), dir_index, size, created, int(allowed), error)


FILE_LIST_SCHEMA = pa.schema([("path", pa.string()), ("part_b", pa.int8()), ("allowed", pa.int8())])


def list_entries(file_list: str | os.PathLike[str]) -> Iterator[FileEntry]:
    """Entries of a caller-supplied file list (partition A first, then B, each in list order).

    A listed path that cannot be read becomes an entry with its error.
    """
    table = pq.read_table(file_list, schema=FILE_LIST_SCHEMA).to_pylist()
    for part in (0, 1):
        for row in table:
            if row["part_b"] != part:
                continue
            path = row["path"]
            size, created, error = _stat(lambda: os.stat(path))
            yield FileEntry(path, os.path.basename(path), part, -1, size, created,
                            int(bool(row["allowed"])), error)


def file_list_has_part_b(file_list: str | os.PathLike[str] | None) -> bool:
    """Whether a file list names any file of partition B."""
    if not file_list or not os.path.exists(file_list):
        return False
    return bool(read_parquet(file_list, columns=["part_b"]).column("part_b").to_numpy().any())


def write_file_list(out: str | os.PathLike[str], part_a: Iterable[tuple[str, bool]],
                    part_b: Iterable[tuple[str, bool]]) -> None:
    """Write a file list for ``file_list``: ``(path, allowed)`` pairs per partition."""
    rows = [{"path": p, "part_b": 0, "allowed": int(a)} for p, a in part_a]
    rows += [{"path": p, "part_b": 1, "allowed": int(a)} for p, a in part_b]
    with atomic_path(out) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=FILE_LIST_SCHEMA), tmp)


def _table(entries: list[FileEntry], first_key: int) -> pa.Table:
    columns = zip(*entries) if entries else [[] for _ in FileEntry._fields]
    cols = dict(zip(FileEntry._fields, map(list, columns)))
    cols["key"] = list(range(first_key, first_key + len(entries)))
    return pa.table(cols, schema=INDEX_SCHEMA)


def write_index(
    out_dir: str | os.PathLike[str],
    *,
    part_a: list[str],
    part_b: list[str],
    recursive: bool,
    ignore_names: list[str],
    ignore_paths: list[str],
    allowed_file_extensions: list[str],
    shard_size: int,
    file_list: str | os.PathLike[str] | None = None,
) -> int:
    """Index both partitions into ``out_dir/shard_<i>.parquet`` and ``out_dir/roots.parquet``.

    Keys are 1, 2, ... in walk order, partition A first. Every shard holds ``shard_size``
    rows but the last, which holds fewer, or up to a quarter more where the rest is that
    small; there is always at least one shard. Returns the file count.
    With ``file_list`` the listed files are used instead of walking the folders.
    """
    common = dict(recursive=recursive, ignore_names=ignore_names, ignore_paths=ignore_paths,
                  allowed_file_extensions=allowed_file_extensions)
    walks = [list_entries(file_list)] if file_list else [
        walk_partition(part_a, part_b=False, first_dir_index=0, **common),
        walk_partition(part_b, part_b=True, first_dir_index=len(part_a), **common),
    ]
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        roots = pa.table(
            {"dir_index": list(range(len(part_a) + len(part_b))),
             "path": [_norm(p) for p in part_a + part_b],
             "part_b": [0] * len(part_a) + [1] * len(part_b)},
            schema=ROOTS_SCHEMA,
        )
        pq.write_table(roots, tmp / "roots.parquet")
        shard, key = 0, 1

        def write(rows: list[FileEntry]) -> None:
            nonlocal shard, key
            pq.write_table(_table(rows, key), tmp / f"shard_{shard:05d}.parquet")
            key += len(rows)
            shard += 1

        pending: list[FileEntry] | None = None  # the last full batch, held back for the rest
        batch: list[FileEntry] = []
        for walk in walks:
            for entry in walk:
                batch.append(entry)
                if len(batch) == shard_size:
                    if pending is not None:
                        write(pending)
                    pending, batch = batch, []
        # a rest of up to a quarter shard joins the last full one instead of being a job of
        # its own (64,003 files made a ninth thumbnail job for 3 of them)
        if pending is not None and len(batch) <= shard_size // 4:
            pending, batch = None, pending + batch
        if pending is not None:
            write(pending)
        if batch or shard == 0:
            write(batch)
        logger.info("indexed %d files into %d shards", key - 1, shard)
    return key - 1


def shard_paths(index_dir: str | os.PathLike[str]) -> list[str]:
    """The shard ids written by write_index, sorted."""
    return sorted(p.stem.removeprefix("shard_") for p in Path(index_dir).glob("shard_*.parquet"))
