"""Indexing: walk the partitions and write the file manifest as Parquet shards."""

from __future__ import annotations

import functools
import hashlib
import logging
import marshal
import os
import shutil
import stat
import sys
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from os.path import splitext
from pathlib import Path
from stat import S_ISREG
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._formats import (
    FILE_LIST_SCHEMA,
    FOLDER_WALK,
    INDEX_SCHEMA,
    LONGEST_SHARD,
    ROOTS_FILE,
    ROOTS_SCHEMA,
    SHARD_FILES_SCHEMA,
    SHARD_FILES_SUFFIX,
    SHARDS_FILE,
    SHARDS_SCHEMA,
    inline_results_dir,
    ours,
    report_path,
    shard_file,
    shard_ids,
    summary_path,
)
from ._io import (
    arrow_array,
    atomic_path,
    files_rows,
    filter_rows,
    link_or_copy,
    match_rows,
    read_parquet,
    take_rows,
)
from ._paths import display, native, raw

__all__ = [
    "FileEntry",
    "file_list_has_part_b",
    "forget_incomplete_index",
    "folder_state",
    "own_paths",
    "record_folder_state",
    "keyed_rows",
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
    # and what they are, however reached (a link to a folder above them, a bind mount)
    excluded_ids = _identities(excluded)
    excluded_parents = {os.path.dirname(p) for p in excluded}
    extensions = {e.lower() for e in allowed_file_extensions}
    any_extension, part = "*" in extensions, int(part_b)
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
                if (st.st_dev, st.st_ino) in excluded_ids:
                    continue
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
            # every entry's absolute, normal path is this folder's and its name (scandir
            # never lists "." or ".."): normalized once per folder, not per file
            base = _norm(folder) if excluded or paths else ""
            prefix = base if base.endswith(os.sep) else base + os.sep
            # only a folder that holds one of them has entries to leave out
            near = base in excluded_parents
            named = near or bool(paths)
            for entry in entries:
                name = entry.name
                full = prefix + name if named else ""
                if near and _excluded(full, name, excluded):
                    continue
                if via_link and excluded_ids and _same_file(entry, excluded_ids):
                    continue  # the database or summary, under another name
                ignored = name in names or bool(paths) and full in paths
                try:
                    is_dir = entry.is_dir()
                    plain = not is_dir and not via_link and not entry.is_symlink()
                except OSError:
                    is_dir = plain = False
                if is_dir:
                    if recursive and not ignored:
                        if entry.is_symlink():
                            linked.append((entry.path, 1))
                        else:
                            subfolders.append((entry.path, via_link))
                    continue
                if plain:
                    # the common case, written out (a walk of millions of files): what
                    # _file_entry gives for a file reached by no link, with a UTF-8 name
                    path = entry.path
                    try:
                        st = entry.stat()
                        path.encode("utf-8")
                    except (OSError, UnicodeEncodeError):
                        pass
                    else:
                        if S_ISREG(st.st_mode):
                            # os.path.splitext's extension, without its call for the usual name
                            dot = name.rfind(".")
                            ext = name[dot:] if dot > 0 and name[0] != "." else splitext(name)[1]
                            allowed = not ignored and (any_extension or ext.lower() in extensions)
                            yield FileEntry(
                                path,
                                name,
                                part,
                                dir_index,
                                st.st_size,
                                max(st.st_ctime, -1.0),
                                int(allowed),
                                None,
                                None,
                                st.st_dev,
                                st.st_ino,
                                st.st_mtime_ns,
                                0,
                            )
                            continue
                yield _file_entry(entry, part_b, dir_index, ignored, extensions, via_link)
            stack.extend(reversed(subfolders))


def _identities(paths: Iterable[str]) -> set[tuple[int, int]]:
    """``(st_dev, st_ino)`` of each of ``paths`` that exists."""
    found = set()
    for path in paths:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            continue
        found.add((st.st_dev, st.st_ino))
    return found


def _same_file(entry: os.DirEntry, identities: set[tuple[int, int]]) -> bool:
    try:
        st = entry.stat()
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in identities


def _excluded(path: str, name: str, excluded: set[str]) -> bool:
    """Whether ``path`` (whose last part is ``name``) is one of ``excluded`` or a temporary
    file of one of them (``.name.tmp-PID``, ``.name.scratch-PID``)."""
    if path in excluded:
        return True
    if name.startswith(".") and ("tmp-" in name or "scratch-" in name):
        base = name[1:].rsplit(".", 1)[0]
        return os.path.join(os.path.dirname(path), base) in excluded
    return False


def _stat(get_stat) -> tuple[int, float, str | None, tuple[int, int, int]]:
    """``(size, created, error, (dev, inode, mtime_ns))`` of one file, never raising."""
    try:
        st = get_stat()
    except OSError as exc:
        return -1, -1.0, f"cannot stat file: {type(exc).__name__}: {exc.strerror or exc}", (-1, 0, -1)
    error = None if stat.S_ISREG(st.st_mode) else f"not a regular file (mode {stat.filemode(st.st_mode)})"
    return st.st_size, max(st.st_ctime, -1.0), error, (st.st_dev, st.st_ino, st.st_mtime_ns)


def _entry(
    path: str, part_b: int, dir_index: int, allowed: bool, get_stat, via_link: int, name: str | None = None
) -> FileEntry:
    """One file's entry; ``name`` its last part where the caller has it."""
    size, created, error, (dev, inode, mtime_ns) = _stat(get_stat)
    if name is None:
        name = os.path.basename(path)
    try:
        path.encode("utf-8")  # the common case: valid text, no bytes kept (display, raw)
        shown, path_bytes = path, None
    except UnicodeEncodeError:
        shown, path_bytes, name = display(path), raw(path), display(name)
    return FileEntry(
        shown,
        name,
        int(part_b),
        dir_index,
        size,
        created,
        int(allowed),
        error,
        path_bytes,
        dev,
        inode,
        mtime_ns,
        via_link,
    )


def _file_entry(
    entry: os.DirEntry, part_b: bool, dir_index: int, ignored: bool, extensions: set[str], via_link: int = 0
) -> FileEntry:
    """Describe one non-folder directory entry, never raising."""
    name = entry.name
    allowed = not ignored and ("*" in extensions or os.path.splitext(name)[1].lower() in extensions)
    try:
        link = entry.is_symlink()
    except OSError:
        link = False
    return _entry(entry.path, part_b, dir_index, allowed, entry.stat, int(via_link or link), name)


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


def _table(entries: list[Any], first_key: int) -> pa.Table:
    """An index shard of ``entries`` (FileEntry or its plain tuple), keyed from ``first_key``."""
    columns = zip(*entries) if entries else [[] for _ in FileEntry._fields]
    cols = dict(zip(FileEntry._fields, map(list, columns)))
    cols["key"] = list(range(first_key, first_key + len(entries)))
    cols["same_as"] = [None] * len(entries)
    cols["files_row"] = list(range(len(entries)))
    return pa.table(cols, schema=INDEX_SCHEMA)


def _mark_aliases(tables: list[pa.Table]) -> list[pa.Table]:
    """The index shards ``tables`` with every path of a file named more than once (symbolic
    or hard links) but one given the key of that one in ``same_as`` (and an error naming it).

    The file's own name is its first path that is neither a link nor under a linked folder,
    else its first path.
    """
    cols = ["key", "dev", "inode", "via_link", "path"]
    if not tables:
        return tables
    both = pa.concat_tables([t.select(cols) for t in tables])
    dev = both.column("dev").to_numpy()
    known = np.flatnonzero(dev >= 0)
    if len(known) < 2:
        return tables
    keys = both.column("key").to_numpy()[known]
    dev = dev[known]
    inode = both.column("inode").to_numpy()[known]
    via = both.column("via_link").to_numpy()[known]
    order = np.lexsort((keys, via, inode, dev))  # by file, then real names first
    d, i = dev[order], inode[order]
    first = np.ones(len(order), bool)
    first[1:] = (d[1:] != d[:-1]) | (i[1:] != i[:-1])
    if first.all():
        return tables
    head = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    alias = np.flatnonzero(~first)
    alias_keys = keys[order[alias]]
    own_rows = known[order[head[alias]]]
    own_paths = both.column("path").take(pa.array(own_rows)).to_pylist()
    same_as = dict(zip(alias_keys.tolist(), zip(keys[order[head[alias]]].tolist(), own_paths)))
    marked = []
    for table in tables:
        shard_keys = table.column("key").to_pylist()
        if any(k in same_as for k in shard_keys):
            links = table.column("via_link").to_pylist()
            target = [same_as.get(k, (None, None)) for k in shard_keys]
            errors = [
                f"same file as {p!r} ({'symbolic link' if link else 'hard link'}): not compared"
                if own is not None
                else e
                for (own, p), link, e in zip(target, links, table.column("error").to_pylist())
            ]
            table = table.set_column(
                table.schema.get_field_index("same_as"), "same_as", pa.array([own for own, _ in target], pa.int64())
            )
            table = table.set_column(table.schema.get_field_index("error"), "error", pa.array(errors, pa.string()))
        marked.append(table)
    logger.info("%d paths name a file already indexed under another path", len(same_as))
    return marked


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
    walks = _walks(
        part_a, part_b, recursive, ignore_names, ignore_paths, allowed_file_extensions, file_list, exclude_paths
    )
    return _digest_walk(part_a, part_b, walks, None)


def _digest_walk(
    part_a: list[str], part_b: list[str], walks: Iterable[Iterable[FileEntry]], out: _WalkFile | None
) -> str:
    """``folder_state``'s digest of the entries of ``walks``; with ``out``, the entries
    handed to it too, and what the walk logged (a link loop)."""
    h = hashlib.sha1()
    h.update(repr((part_a, part_b)).encode())

    def digest() -> str:
        for walk in walks:
            for entry in walk:
                # marshal's version 2 (no back-references): the same fields, the same bytes
                fields = tuple(entry)
                h.update(marshal.dumps(fields, 2))
                if out is not None:
                    out.add(fields)
        return h.hexdigest()

    if out is None:
        return digest()
    # what the walk logs is kept for the index job's log, and passed on here as it would be
    said, level, propagate = _Said(), logger.level, logger.propagate
    shown = logger.getEffectiveLevel()
    logger.addHandler(said)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        state = digest()
    finally:
        logger.removeHandler(said)
        logger.setLevel(level)
        logger.propagate = propagate
        for at, message in said.records:
            if at >= shown:
                logger.log(at, "%s", message)
    out.said = said.records
    return state


class _WalkFile:
    """The entries of a walk for a FOLDER_WALK file at ``path``: held in memory up to
    ``held`` of them (most walks: nothing is written when the file there already holds this
    walk), beyond that set aside in a scratch file as they come, a batch at a time, in
    marshal's form (this process alone reads it back); the file at ``path`` is written only
    where it does not hold this walk already. Where it cannot be written (a full disk), the
    walk is not kept and the index job walks again.

    The file has a first line naming the state (``_WALK_MAGIC`` and the digest, written
    last), a second naming the Python that wrote it (``_walk_writer``), then each batch of
    entries (a list of tuples) and last ``{"said": [(level, message), ...]}`` (what the walk
    logged), each its length and then marshal's form of it (version 2, ``_write_part``):
    Python's own, the fastest to write and read here (Snakemake's process writes it, which
    stays small: no Parquet). marshal's format may change between Python versions: a job
    that runs another Python (``--sdm conda``) walks the folders itself."""

    def __init__(self, path: Path, held: int = 100_000, batch: int = 50_000) -> None:
        self.path, self.tmp = path, path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.scratch = path.with_name(f".{path.name}.scratch-{os.getpid()}")
        self.limit, self.batch = held, batch
        self.held: list[tuple] = []
        self.said: list[tuple[int, str]] = []
        self.fh: Any = None  # the scratch file, once the walk is longer than held
        self.failed = False

    def add(self, entry: tuple) -> None:
        """One entry (a FileEntry's fields as a plain tuple)."""
        if self.failed:
            return
        self.held.append(entry)
        if len(self.held) >= (self.batch if self.fh is not None else self.limit):
            self._set_aside()

    def _set_aside(self) -> None:
        try:
            if self.fh is None:
                self.fh = open(self.scratch, "w+b")
            _write_part(self.fh, self.held)
        except (OSError, ValueError) as exc:
            self._fail(exc)
        self.held = []

    def _batches(self) -> Iterator[list[tuple]]:
        if self.fh is not None:
            self.fh.seek(0)
            while True:
                try:
                    yield _read_part(self.fh)
                except EOFError:
                    break
        yield self.held

    def _fail(self, exc: Exception) -> None:
        logger.warning("%s not written (%s): the index job walks the folders again", os.fspath(self.path), exc)
        self.failed = True
        self.close()

    def finish(self, state: str) -> bool:
        """Make the file at ``path`` hold this walk, the walk of ``state``; whether it was
        written."""
        try:
            if self.failed or walk_state(self.path) == state:
                return False
            with open(self.tmp, "wb") as out:
                out.write(_walk_header("0" * _STATE_LENGTH))
                out.write(_walk_writer())
                for batch in self._batches():
                    if batch:
                        _write_part(out, batch)
                _write_part(out, {"said": self.said})
                out.seek(0)
                out.write(_walk_header(state))  # last: a file whose state is named is whole
            os.replace(self.tmp, self.path)
            return True
        except (OSError, ValueError, EOFError) as exc:
            self._fail(exc)
            return False
        finally:
            self.tmp.unlink(missing_ok=True)
            self.close()

    def close(self) -> None:
        try:
            if self.fh is not None:
                self.fh.close()
        except OSError:
            pass  # the scratch file goes below: nothing of it is taken
        self.fh = None
        self.scratch.unlink(missing_ok=True)


_WALK_MAGIC = b"fast-diff walk 2 "
_STATE_LENGTH = 40  # folder_state's digest: SHA-1 in hex


def _walk_header(state: str) -> bytes:
    if len(state) != _STATE_LENGTH:
        raise ValueError(f"a folder state is {_STATE_LENGTH} hex digits, got {state!r}")
    return _WALK_MAGIC + state.encode("ascii") + b"\n"


def _write_part(out: Any, part: Any) -> None:
    """One part of a walk file: its length (8 bytes), then the part in marshal's form."""
    data = marshal.dumps(part, 2)
    out.write(len(data).to_bytes(8, "little") + data)


def _read_part(fh: Any) -> Any:
    """The next part of a walk file (``_write_part``: read whole, then unmarshalled, which is
    many times faster than marshal reading from the file); EOFError where it is cut short."""
    size = fh.read(8)
    data = fh.read(int.from_bytes(size, "little")) if len(size) == 8 else b""
    if len(size) != 8 or len(data) != int.from_bytes(size, "little"):
        raise EOFError("the file ends before its last part")
    return marshal.loads(data)


def _walk_writer() -> bytes:
    """The walk file's second line: the Python whose marshal wrote it."""
    return f"marshal 2 {sys.implementation.name} {sys.version_info[0]}.{sys.version_info[1]}\n".encode("ascii")


def walk_state(path: str | os.PathLike[str]) -> str | None:
    """The folder state whose entries the FOLDER_WALK file at ``path`` holds (None where
    there is none, or it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_WALK_MAGIC) + _STATE_LENGTH + 1)
    except OSError:
        return None
    if not head.startswith(_WALK_MAGIC) or not head.endswith(b"\n"):
        return None
    state = head[len(_WALK_MAGIC) : -1].decode("ascii", "replace")
    return None if state == "0" * _STATE_LENGTH else state


class _Said(logging.Handler):
    """The records logged while it is attached, as ``(level, message)``."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.getMessage()))


def _walked(walk: str | os.PathLike[str], state: str | os.PathLike[str]) -> list[tuple] | None:
    """The entries of the FOLDER_WALK file ``walk`` (each a FileEntry's fields as a plain
    tuple, as written) when they are the walk that the folder state in the file ``state``
    digests, else None (the folders are walked again)."""
    try:
        wanted = Path(state).read_text()
    except OSError:
        return None
    if walk_state(walk) != wanted:
        logger.info("%s does not hold the walk of %s: walking the folders", os.fspath(walk), os.fspath(state))
        return None
    entries: list[tuple] = []
    said = None
    try:
        with open(walk, "rb") as fh:
            fh.readline()
            writer = fh.readline()
            if writer != _walk_writer():
                raise ValueError(f"written by another Python ({writer.decode('ascii', 'replace').strip()!r})")
            while said is None:  # batches of entries, then what the walk logged
                part = _read_part(fh)
                if isinstance(part, dict):
                    said = [(int(level), str(message)) for level, message in part["said"]]
                elif isinstance(part, list) and all(
                    isinstance(row, tuple) and len(row) == len(FileEntry._fields) for row in part
                ):
                    entries.extend(part)
                else:
                    raise ValueError("a part that is no list of entries")
            if fh.read(1):
                raise ValueError("data after its last part")
    except (OSError, ValueError, TypeError, KeyError, EOFError) as exc:
        logger.info("%s not read (%s): walking the folders", os.fspath(walk), exc)
        return None
    for level, message in said:  # what the walk met, as if walked here
        logger.log(level, "%s", message)
    return entries


def own_paths(config: dict) -> list[str]:
    """Paths never indexed: ``exclude_paths``, the database, the summary and the gallery
    beside it, and the results folders (the workflow's and a run's in one process)."""
    db = config["db_path"]
    mine = [p for p in (summary_path(db), report_path(db)) if ours(p)]  # never a user's own of that name
    results = config["results_dir"]
    return [*config.get("exclude_paths", []), db, *mine, results, inline_results_dir(results)]


def record_folder_state(stamp: str | os.PathLike[str], config: dict) -> bool:
    """Write ``folder_state`` of ``config``'s partitions to ``stamp`` when it differs from the
    one there, so that a rule taking ``stamp`` as input runs again exactly when the folders
    changed; beside it, the walk's entries (FOLDER_WALK), which the index job takes instead of
    walking the folders again. Returns whether the state was written."""
    c = {**config, "exclude_paths": own_paths(config)}
    stamp = Path(stamp)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.with_name("folders.walk.jsonl").unlink(missing_ok=True)  # the walk file's earlier name (JSON)
    walk = _WalkFile(stamp.with_name(FOLDER_WALK))
    try:
        walks = _walks(
            c["part_a"],
            c["part_b"],
            c["recursive"],
            c["ignore_names"],
            c["ignore_paths"],
            c["allowed_file_extensions"],
            c.get("file_list"),
            c["exclude_paths"],
        )
        state = _digest_walk(c["part_a"], c["part_b"], walks, walk)
        walk.finish(state)
    finally:
        walk.close()
    try:
        if stamp.read_text() == state:
            return False
    except OSError:
        pass
    with atomic_path(stamp) as new:
        new.write_text(state)
    return True


def forget_incomplete_index(index_dir: str | os.PathLike[str], receipt: str | os.PathLike[str]) -> bool:
    """Index the folders and build the database again where the index folder ``index_dir``
    lacks a file since the last run: remove the folder and the database's ``receipt``.
    Returns whether they were removed.

    Snakemake does not see a file missing in the folder: the folder is there, so the index job
    counts as done, and the jobs after it would stop on the file. The job writes the folder
    whole (``write_index``), so one that lacks a file was changed since."""
    if not os.path.isdir(index_dir):
        return False
    problem = _index_problem(os.fspath(index_dir))
    if problem is None:
        return False
    foreign = _not_of_an_index(os.fspath(index_dir))
    if foreign is not None:  # never a folder of the user's: left, for the index job to refuse
        print(f"fast-diff: {problem}, and {foreign!r} is no file of an index: left as it is", file=sys.stderr)
        return False
    print(f"fast-diff: {problem}: indexing the folders and building the database again", file=sys.stderr)
    shutil.rmtree(index_dir)
    Path(receipt).unlink(missing_ok=True)
    return True


def _not_of_an_index(index_dir: str) -> str | None:
    """A path in ``index_dir`` that the index job does not write (the folder itself where it
    is a link), or None where every entry is a plain file of an index's names."""
    if os.path.islink(index_dir):
        return index_dir
    ours = {ROOTS_FILE, SHARDS_FILE, ".snakemake_timestamp"}
    with os.scandir(index_dir) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False) or not (
                entry.name in ours or fnmatchcase(entry.name, shard_file("*"))
            ):
                return entry.path
    return None


def _index_problem(index_dir: str) -> str | None:
    """What is wrong with the index in ``index_dir``: a file missing or unreadable; None."""
    for name in (ROOTS_FILE, SHARDS_FILE):
        if not os.path.isfile(os.path.join(index_dir, name)):
            return f"{os.path.join(index_dir, name)!r} is missing"
    path = os.path.join(index_dir, SHARDS_FILE)
    try:  # read here, not with read_parquet: a damaged file is this function's to handle
        with pq.ParquetFile(path) as pf:
            shards = pf.read(columns=["shard"]).column(0).to_pylist()
    except (OSError, pa.ArrowException, KeyError) as exc:
        return f"{path!r} cannot be read ({exc})"
    for shard in shards:
        for suffix in (".parquet", SHARD_FILES_SUFFIX):
            path = os.path.join(index_dir, shard_file(shard, suffix))
            if not os.path.isfile(path):
                return f"{path!r} is missing"
    return None


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
    kept: str | os.PathLike[str] | None = None,
    walked: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
) -> int:
    """Index both partitions into ``out_dir/shard_<i>.parquet`` and ``out_dir/roots.parquet``.

    Keys are 1, 2, ... in walk order, partition A first. The shards (``_shards``:
    ``shard_size`` rows on average, cut where the paths say) are named by their first path and
    listed by their first key in ``out_dir/shards.parquet``; beside each, its rows without
    keys (SHARD_FILES_SCHEMA), a thumbnail job's input. Returns the file count.
    With ``file_list`` the listed files are used instead of walking the folders; with
    ``listing`` (folders in a Snakemake storage: ``_storage``) the files listed there.
    With ``kept`` (KEPT_INDEX_DIR), the files the last index's shards hold in the same version
    stay in them (``_kept_layout``: only new and changed files go to new shards), and a shard
    file with the same bytes as the last index's keeps its modification time (``_keep_times``).
    With ``walked`` (``(FOLDER_WALK file, FOLDER_STATE file)``: ``record_folder_state``'s) the
    entries of that walk are indexed where they are the walk of that state, instead of walking
    the folders again.
    """
    from ._storage import listed_roots

    entries = _walked(*walked) if walked is not None and not listing else None
    walks = (
        [entries]
        if entries is not None
        else _walks(
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
        ids: list[str] = []
        tables: list[pa.Table] = []
        key = 1
        for rows in _shards(walks, shard_size):
            ids.append(_shard_id(rows[0][0] if rows else "", ids))  # its first path
            tables.append(_table(rows, key))
            key += len(rows)
        tables = _mark_aliases(tables)
        layout = _kept_layout(tables, ids, Path(kept), shard_size) if kept is not None else None
        taken: set[str] = set()
        if layout is not None:
            ids, tables, taken = layout
        files = []
        for shard, table in zip(ids, tables, strict=True):
            pq.write_table(table, tmp / shard_file(shard))
            files.append(len(table))
            name = shard_file(shard, SHARD_FILES_SUFFIX)
            if shard in taken:  # the shard's files as they were, its thumbnails kept with them
                shutil.copyfile(Path(kept) / name, tmp / name)  # type: ignore[arg-type]
            else:
                pq.write_table(_files_table(table), tmp / name)
        pq.write_table(pa.table({"shard": ids, "files": files}, schema=SHARDS_SCHEMA), tmp / SHARDS_FILE)
        if kept is not None:
            _keep_times(tmp, Path(kept), [shard_file(s, SHARD_FILES_SUFFIX) for s in ids])
        logger.info("indexed %d files into %d shards", key - 1, len(ids))
    return key - 1


def _kept_layout(
    tables: list[pa.Table], ids: list[str], kept: Path, shard_size: int
) -> tuple[list[str], list[pa.Table], set[str]] | None:
    """Lay the index shards ``ids`` (``tables``, cut by their paths, ``_shards``) out again
    so that the thumbnails of the last index (``kept``, its shards' files) serve every file
    they still can: each file whose row (path, version and outcome) is one of the rows of a
    kept shard's files stays in that shard, which keeps its files byte for byte (its
    thumbnail job does not run; ``files_row`` says where each file is in them); the other
    files (new, changed, or of a shard dissolved) are cut by their paths into new shards,
    whose jobs take the thumbnails of dissolved shards again. A kept shard is dissolved
    where more of its rows are gone than stay, and, where there are new files, where it
    holds fewer than a quarter of ``shard_size`` (so that small shards join the next new
    files instead of adding up). Keys stay in walk order; the shards are listed by their
    first key. Returns the shard ids, their tables and the ids of those whose files were
    kept; None where nothing is kept (the layout cut by paths stands)."""
    names = sorted(p.name for p in kept.glob(shard_file("*", SHARD_FILES_SUFFIX)))
    olds: dict[str, int] = {}
    parts, shard_of, row_of = [], [], []
    for name in names:
        shard = name[len(shard_file("")) - len(".parquet") : -len(SHARD_FILES_SUFFIX)]
        try:
            with pq.ParquetFile(kept / name) as pf:
                if not pf.schema_arrow.equals(SHARD_FILES_SCHEMA):
                    continue
                old = pf.read()
        except (OSError, pa.ArrowException):  # damaged: its files are made again
            continue
        olds[shard] = len(old)
        parts.append(old)
        shard_of += [shard] * len(old)
        row_of.append(np.arange(len(old)))
    if not sum(olds.values()):
        return None
    table = pa.concat_tables(tables)
    matched = match_rows(_files_table(table), pa.concat_tables(parts), SHARD_FILES_SCHEMA.names)
    old_rows = np.concatenate(row_of)
    found = [(shard_of[j], int(old_rows[j])) if j >= 0 else None for j in matched.tolist()]
    live: dict[str, list[int]] = {}
    for i, at in enumerate(found):
        if at is not None:
            live.setdefault(at[0], []).append(i)
    stay = {s for s, rows in live.items() if olds[s] <= 2 * len(rows)}
    pool = [i for i, at in enumerate(found) if at is None or at[0] not in stay]
    least = max(1, shard_size // 4)
    if pool:
        small = {s for s in stay if len(live[s]) < least}
        stay -= small
        pool = sorted(pool + [i for s in small for i in live[s]])
    if not stay:
        return None
    shards: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    for s in sorted(stay):
        rows = np.asarray(live[s], np.intp)
        shards.append((s, rows, np.asarray([found[i][1] for i in live[s]], np.int32)))  # type: ignore[index]
    paths = table.column("path").to_pylist()
    filenames = table.column("filename").to_pylist()
    taken = sorted(stay)
    for cut in _shards([[_Named(paths[i], filenames[i], i) for i in pool]], shard_size):
        if cut:
            taken.append(_shard_id(cut[0].path, taken))
            shards.append((taken[-1], np.asarray([c.row for c in cut], np.intp), None))
    shards.sort(key=lambda shard: int(shard[1][0]))
    laid = []
    for _, rows, in_files in shards:
        part = take_rows(table, rows)
        column = part.schema.get_field_index("files_row")
        in_files = in_files if in_files is not None else np.arange(len(rows), dtype=np.int32)
        laid.append(part.set_column(column, "files_row", arrow_array(in_files, pa.int32())))
    logger.info(
        "%d files kept in %d shards of the last index; %d in %d new shards",
        len(found) - len(pool),
        len(stay),
        len(pool),
        len(shards) - len(stay),
    )
    return [s for s, _, _ in shards], laid, stay


class _Named(NamedTuple):
    """A row's path and name, as ``_shards`` cuts them, and its row."""

    path: str
    filename: str
    row: int


def _keep_times(index: Path, kept: Path, names: list[str]) -> None:
    """Give each file ``names`` in ``index`` whose bytes equal its namesake's in ``kept`` that
    file's modification time (as if it had not been written again), then make ``kept`` hold
    exactly these files (hard links where the disk allows)."""
    kept.mkdir(parents=True, exist_ok=True)
    for name in names:
        new, old = index / name, kept / name
        try:
            was = old.stat()
            same = was.st_size == new.stat().st_size and old.read_bytes() == new.read_bytes()
        except FileNotFoundError:
            continue
        if same:
            os.utime(new, ns=(was.st_atime_ns, was.st_mtime_ns))
    for name in names:
        tmp = kept / f".{name}.tmp"
        tmp.unlink(missing_ok=True)
        link_or_copy(index / name, tmp)
        os.replace(tmp, kept / name)
    wanted = set(names)
    for path in kept.iterdir():
        if path.name not in wanted:
            path.unlink()


def shard_paths(index_dir: str | os.PathLike[str]) -> list[str]:
    """The shard ids written by write_index, in walk order."""
    return shard_ids(index_dir)


def keyed_rows(
    paths: Iterable[str | os.PathLike[str]],
    index_paths: Iterable[str | os.PathLike[str]],
    columns: list[str] | None = None,
) -> pa.Table:
    """Files of the shards (one per index shard, in the same order) whose rows name their
    file by its ``row`` in the shard's files, as one table that names it by its key instead
    (without the rows of files gone from the shard: ``files_rows``)."""
    parts = []
    for path, index_path in zip(paths, index_paths, strict=True):
        table = read_parquet(path, columns=None if columns is None else ["row", *columns])
        keys = read_parquet(index_path, columns=["key"]).column("key").to_numpy()
        row = table.column("row").to_numpy().astype(np.intp)
        at = files_rows(index_path)
        if at is not None:  # each files row's index row, -1 for a file gone
            index_row = np.full(max(int(at.max(initial=-1)), int(row.max(initial=-1))) + 1, -1, np.intp)
            index_row[at] = np.arange(len(at))
            row = index_row[row]
            table = filter_rows(table, row >= 0)
            row = row[row >= 0]
        key = arrow_array(keys[row], pa.int64())
        parts.append(table.drop_columns(["row"]).append_column("key", key))
    return pa.concat_tables(parts)


def _shards(walks: Iterable[Iterable[Any]], shard_size: int) -> Iterator[list[Any]]:
    """The entries of ``walks`` in order, cut into shards where their names say: once a
    shard holds a quarter of ``shard_size``, it ends after a file whose name (with its
    folder's: ``_ends_shard``) hashes to a multiple of ``_every(shard_size)``, so that shards
    hold ``shard_size`` paths on average, and after ``LONGEST_SHARD * shard_size`` paths at
    the latest. A shard's end depends on its own names, not on where the walk puts it (the
    same folder is cut the same way wherever it lies), so a path added or removed changes the
    shard it falls into (split in two where the path ends it, joined with the next where it
    ended it) and almost never another (where it moves a name across a shard's first
    quarter). At least one shard, empty where nothing was found."""
    least, every, most = max(1, shard_size // 4), _every(shard_size), LONGEST_SHARD * shard_size
    shard: list[Any] = []
    empty = True
    for walk in walks:
        for entry in walk:
            shard.append(entry)
            if len(shard) >= most or (len(shard) >= least and _ends_shard(entry, every)):
                yield shard
                shard, empty = [], False
    if shard or empty:
        yield shard


def _every(shard_size: int) -> int:
    """One name in this many ends a shard (past its first quarter)."""
    return max(1, shard_size - max(1, shard_size // 4) + 1)


def _ends_shard(entry: Any, every: int) -> bool:
    # the name with its folder's (copies of a folder elsewhere are not cut alike), hashed so
    # that names differing in one digit spread (a CRC does not); an entry's path and name
    # are its first two fields (FileEntry, its plain tuple, _Named)
    path, filename = entry[0], entry[1]
    head, slash, _ = path.rpartition("/")
    name = f"{_folder_name(head) if slash else ''}/{filename}"
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % every == 0


@functools.lru_cache(maxsize=4096)
def _folder_name(head: str) -> str:
    """The name of the folder of a path whose part before its last "/" is ``head``:
    ``basename(dirname(path))``, made once per folder."""
    return os.path.basename(os.path.dirname(head + "/_"))


def _shard_id(first_path: str, taken: list[str]) -> str:
    """A shard's id, from its first path: the same for the same first path in every run (its
    jobs' files keep their names), never one of ``taken``."""
    digest = hashlib.blake2b(first_path.encode("utf-8", "surrogatepass"), digest_size=6).digest()
    number = int.from_bytes(digest, "big")
    while f"{number:015d}" in taken:
        number += 1
    return f"{number:015d}"


def _files_table(table: pa.Table) -> pa.Table:
    """An index shard's SHARD_FILES_SCHEMA table: its rows without keys."""
    columns = {name: table.column(name) for name in SHARD_FILES_SCHEMA.names if name != "alias"}
    same_as = table.column("same_as")
    if same_as.null_count in (0, len(same_as)):  # all aliases or none: no compute module needed
        alias = arrow_array(np.full(len(table), same_as.null_count == 0), pa.int8())
    else:
        alias = arrow_array(np.asarray(same_as.is_valid()), pa.int8())
    return pa.table({**columns, "alias": alias}, schema=SHARD_FILES_SCHEMA)
