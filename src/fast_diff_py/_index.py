"""Indexing: walk the partitions and write the file manifest as Parquet shards."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._formats import (
    FILE_LIST_SCHEMA,
    INDEX_SCHEMA,
    ROOTS_FILE,
    ROOTS_SCHEMA,
    ours,
    report_path,
    shard_file,
    shard_ids,
    shard_name,
    summary_path,
)
from ._io import atomic_path, read_parquet
from ._paths import display, native, raw

__all__ = [
    "FileEntry",
    "file_list_has_part_b",
    "folder_state",
    "own_paths",
    "record_folder_state",
    "shard_paths",
    "walk_partition",
    "write_file_list",
    "write_index",
]

logger = logging.getLogger(__name__)


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
    path_bytes: bytes | None = None
    dev: int = -1
    inode: int = 0
    mtime_ns: int = -1
    via_link: int = 0


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
    exclude_paths: Iterable[str] = (),
) -> Iterator[FileEntry]:
    """Yield every file under ``roots`` in a deterministic (sorted, depth-first) order.

    Files that are ignored or have a disallowed extension are yielded with ``allowed = 0``;
    a folder that cannot be listed is yielded as an entry with its error. Symbolic links to
    folders are followed, but each folder is visited once, so link loops end.
    """
    names = set(ignore_names)
    paths = {_norm(p) for p in ignore_paths}
    excluded = {_norm(p) for p in exclude_paths}
    extensions = {e.lower() for e in allowed_file_extensions}
    for offset, root in enumerate(roots):
        dir_index = first_dir_index + offset
        visited: set[tuple[int, int]] = set()
        # Folders reached through a symbolic link wait until every real folder is done, so
        # a folder reachable both ways is listed under its real path.
        stack: list[tuple[str, int]] = [(root, 0)]
        linked: list[tuple[str, int]] = []
        while stack or linked:
            folder, via_link = stack.pop() if stack else linked.pop(0)
            try:
                st = os.stat(folder)
                if (st.st_dev, st.st_ino) in visited:
                    logger.info("skipping %r: folder already visited (link loop)", display(folder))
                    continue
                visited.add((st.st_dev, st.st_ino))
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                logger.warning("cannot list folder %r: %s", display(folder), exc)
                yield FileEntry(
                    display(folder),
                    display(os.path.basename(folder)),
                    int(part_b),
                    dir_index,
                    -1,
                    -1.0,
                    0,
                    f"cannot list folder: {type(exc).__name__}: {exc.strerror or exc}",
                    raw(folder),
                    via_link=via_link,
                )
                continue
            subfolders = []
            for entry in entries:
                if excluded and _excluded(_norm(entry.path), excluded):
                    continue
                ignored = entry.name in names or bool(paths) and _norm(entry.path) in paths
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    if recursive and not ignored:
                        if entry.is_symlink():
                            linked.append((entry.path, 1))
                        else:
                            subfolders.append((entry.path, via_link))
                    continue
                yield _file_entry(entry, part_b, dir_index, ignored, extensions, via_link)
            stack.extend(reversed(subfolders))


def _excluded(path: str, excluded: set[str]) -> bool:
    """Whether ``path`` is one of ``excluded`` or a temporary file of one of them
    (``.name.tmp-PID``, ``.name.scratch-PID``)."""
    if path in excluded:
        return True
    folder, name = os.path.split(path)
    if name.startswith(".") and ("tmp-" in name or "scratch-" in name):
        base = name[1:].rsplit(".", 1)[0]
        return os.path.join(folder, base) in excluded
    return False


def _stat(get_stat) -> tuple[int, float, str | None, tuple[int, int, int]]:
    """``(size, created, error, (dev, inode, mtime_ns))`` of one file, never raising."""
    try:
        st = get_stat()
    except OSError as exc:
        return -1, -1.0, f"cannot stat file: {type(exc).__name__}: {exc.strerror or exc}", (-1, 0, -1)
    error = None if stat.S_ISREG(st.st_mode) else f"not a regular file (mode {stat.filemode(st.st_mode)})"
    return st.st_size, max(st.st_ctime, -1.0), error, (st.st_dev, st.st_ino, st.st_mtime_ns)


def _entry(path: str, part_b: int, dir_index: int, allowed: bool, get_stat, via_link: int) -> FileEntry:
    size, created, error, (dev, inode, mtime_ns) = _stat(get_stat)
    return FileEntry(
        display(path),
        display(os.path.basename(path)),
        int(part_b),
        dir_index,
        size,
        created,
        int(allowed),
        error,
        raw(path),
        dev,
        inode,
        mtime_ns,
        via_link,
    )


def _file_entry(
    entry: os.DirEntry, part_b: bool, dir_index: int, ignored: bool, extensions: set[str], via_link: int = 0
) -> FileEntry:
    """Describe one non-folder directory entry, never raising."""
    allowed = not ignored and ("*" in extensions or os.path.splitext(entry.name)[1].lower() in extensions)
    try:
        link = entry.is_symlink()
    except OSError:
        link = False
    return _entry(entry.path, part_b, dir_index, allowed, entry.stat, int(via_link or link))


def list_entries(file_list: str | os.PathLike[str]) -> Iterator[FileEntry]:
    """Entries of a caller-supplied file list (partition A first, then B, each in list order).

    A listed path that cannot be read becomes an entry with its error.
    """
    table = read_parquet(file_list)
    if "path_bytes" not in table.column_names:
        table = table.append_column("path_bytes", pa.nulls(len(table), pa.binary()))
    rows = table.select(["path", "part_b", "allowed", "path_bytes"]).to_pylist()
    for part in (0, 1):
        for row in rows:
            if row["part_b"] != part:
                continue
            path = native(row["path"], row["path_bytes"])
            via_link = int(
                os.path.islink(path)
                or os.path.realpath(os.path.dirname(os.path.abspath(path))) != os.path.dirname(os.path.abspath(path))
            )
            yield _entry(path, part, -1, bool(row["allowed"]), functools.partial(os.stat, path), via_link)


def file_list_has_part_b(file_list: str | os.PathLike[str] | None) -> bool:
    """Whether a file list names any file of partition B."""
    if not file_list or not os.path.exists(file_list):
        return False
    return bool(read_parquet(file_list, columns=["part_b"]).column("part_b").to_numpy().any())


def write_file_list(
    out: str | os.PathLike[str], part_a: Iterable[tuple[str, bool]], part_b: Iterable[tuple[str, bool]]
) -> None:
    """Write a file list for ``file_list``: ``(path, allowed)`` pairs per partition."""
    rows = [
        {"path": display(p), "part_b": b, "allowed": int(a), "path_bytes": raw(p)}
        for b, part in ((0, part_a), (1, part_b))
        for p, a in part
    ]
    with atomic_path(out) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=FILE_LIST_SCHEMA), tmp)


def _table(entries: list[FileEntry], first_key: int) -> pa.Table:
    columns = zip(*entries) if entries else [[] for _ in FileEntry._fields]
    cols = dict(zip(FileEntry._fields, map(list, columns)))
    cols["key"] = list(range(first_key, first_key + len(entries)))
    cols["same_as"] = [None] * len(entries)
    return pa.table(cols, schema=INDEX_SCHEMA)


def _mark_aliases(index_dir: Path) -> int:
    """Give every path of a file named more than once (symbolic or hard links) but one the
    key of that one in ``same_as``, rewriting the shards that hold such paths.

    The file's own name is its first path that is neither a link nor under a linked folder,
    else its first path. Returns the number of aliases.
    """
    shards = sorted(index_dir.glob(shard_file("*")))
    cols = ["key", "dev", "inode", "via_link", "path"]
    tables = [read_parquet(p, columns=cols) for p in shards]
    if not tables:
        return 0
    both = pa.concat_tables(tables)
    dev = both.column("dev").to_numpy()
    known = np.flatnonzero(dev >= 0)
    if len(known) < 2:
        return 0
    keys = both.column("key").to_numpy()[known]
    dev = dev[known]
    inode = both.column("inode").to_numpy()[known]
    via = both.column("via_link").to_numpy()[known]
    order = np.lexsort((keys, via, inode, dev))  # by file, then real names first
    d, i = dev[order], inode[order]
    first = np.ones(len(order), bool)
    first[1:] = (d[1:] != d[:-1]) | (i[1:] != i[:-1])
    if first.all():
        return 0
    head = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    alias = np.flatnonzero(~first)
    alias_keys = keys[order[alias]]
    own_rows = known[order[head[alias]]]
    own_paths = both.column("path").take(pa.array(own_rows)).to_pylist()
    same_as = dict(zip(alias_keys.tolist(), zip(keys[order[head[alias]]].tolist(), own_paths)))
    for path in shards:
        table = read_parquet(path)
        shard_keys = table.column("key").to_pylist()
        if not any(k in same_as for k in shard_keys):
            continue
        links = table.column("via_link").to_pylist()
        target = [same_as.get(k, (None, None)) for k in shard_keys]
        errors = [
            f"same file as {p!r} ({'symbolic link' if link else 'hard link'}): not compared" if own is not None else e
            for (own, p), link, e in zip(target, links, table.column("error").to_pylist())
        ]
        table = table.set_column(
            table.schema.get_field_index("same_as"), "same_as", pa.array([own for own, _ in target], pa.int64())
        )
        table = table.set_column(table.schema.get_field_index("error"), "error", pa.array(errors, pa.string()))
        pq.write_table(table, path)
    logger.info("%d paths name a file already indexed under another path", len(same_as))
    return len(same_as)


def _walks(
    part_a: list[str],
    part_b: list[str],
    recursive: bool,
    ignore_names: list[str],
    ignore_paths: list[str],
    allowed_file_extensions: list[str],
    file_list: str | os.PathLike[str] | None,
    exclude_paths: Iterable[str] = (),
    listing: str | os.PathLike[str] | None = None,
) -> list[Iterable[FileEntry]]:
    """The entries write_index indexes, in key order: a storage listing's, the file list's,
    or both walks."""
    if listing:
        from ._storage import listed_entries

        return [listed_entries(listing)]
    common: dict[str, Any] = dict(
        recursive=recursive,
        ignore_names=ignore_names,
        ignore_paths=ignore_paths,
        allowed_file_extensions=allowed_file_extensions,
        exclude_paths=exclude_paths,
    )
    if file_list:
        return [list_entries(file_list)]
    return [
        walk_partition(part_a, part_b=False, first_dir_index=0, **common),
        walk_partition(part_b, part_b=True, first_dir_index=len(part_a), **common),
    ]


def folder_state(
    *,
    part_a: list[str],
    part_b: list[str],
    recursive: bool,
    ignore_names: list[str],
    ignore_paths: list[str],
    allowed_file_extensions: list[str],
    file_list: str | os.PathLike[str] | None = None,
    exclude_paths: Iterable[str] = (),
    **_: object,
) -> str:
    """A digest of everything write_index would record now (each path with its identity,
    size and times; a stat walk, no file read): equal digests mean an equal index."""
    h = hashlib.sha1()
    h.update(repr((part_a, part_b)).encode())
    for walk in _walks(
        part_a, part_b, recursive, ignore_names, ignore_paths, allowed_file_extensions, file_list, exclude_paths
    ):
        for entry in walk:
            h.update(repr(tuple(entry)).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def own_paths(config: dict) -> list[str]:
    """Paths never indexed: ``exclude_paths``, the database, the summary and the gallery
    beside it, and the results folder."""
    db = config["db_path"]
    mine = [p for p in (summary_path(db), report_path(db)) if ours(p)]  # never a user's own of that name
    return [*config.get("exclude_paths", []), db, *mine, config["results_dir"]]


def record_folder_state(stamp: str | os.PathLike[str], config: dict) -> bool:
    """Write ``folder_state`` of ``config``'s partitions to ``stamp`` when it differs from the
    one there, so that a rule taking ``stamp`` as input runs again exactly when the folders
    changed. Returns whether it was written."""
    state = folder_state(**{**config, "exclude_paths": own_paths(config)})
    stamp = Path(stamp)
    try:
        if stamp.read_text() == state:
            return False
    except OSError:
        pass
    with atomic_path(stamp) as tmp:
        tmp.write_text(state)
    return True


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
    exclude_paths: Iterable[str] = (),
    listing: str | os.PathLike[str] | None = None,
) -> int:
    """Index both partitions into ``out_dir/shard_<i>.parquet`` and ``out_dir/roots.parquet``.

    Keys are 1, 2, ... in walk order, partition A first. Every shard holds ``shard_size``
    rows but the last, which holds fewer, or up to a quarter more where the rest is that
    small; there is always at least one shard. Returns the file count.
    With ``file_list`` the listed files are used instead of walking the folders; with
    ``listing`` (folders in a Snakemake storage: ``_storage``) the files listed there.
    """
    from ._storage import listed_roots

    walks = _walks(
        part_a,
        part_b,
        recursive,
        ignore_names,
        ignore_paths,
        allowed_file_extensions,
        file_list,
        exclude_paths,
        listing,
    )
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        roots = pa.table(
            {
                "dir_index": list(range(len(part_a) + len(part_b))),
                "path": [_norm(p) for p in part_a + part_b] if not listing else listed_roots(listing),
                "part_b": [0] * len(part_a) + [1] * len(part_b),
            },
            schema=ROOTS_SCHEMA,
        )
        pq.write_table(roots, tmp / ROOTS_FILE)
        shard, key = 0, 1

        def write(rows: list[FileEntry]) -> None:
            nonlocal shard, key
            pq.write_table(_table(rows, key), tmp / shard_file(shard_name(shard)))
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
        # its own
        if pending is not None and len(batch) <= shard_size // 4:
            batch = pending + batch
            pending = None
        if pending is not None:
            write(pending)
        if batch or shard == 0:
            write(batch)
        _mark_aliases(tmp)
        logger.info("indexed %d files into %d shards", key - 1, shard)
    return key - 1


def shard_paths(index_dir: str | os.PathLike[str]) -> list[str]:
    """The shard ids written by write_index, sorted."""
    return shard_ids(index_dir)
