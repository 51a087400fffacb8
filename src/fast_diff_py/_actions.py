"""Acting on results: a file is moved or deleted only while it is still the file that was
compared, and only while the file it matched is too.

``check`` is the one definition of "still the file that was compared": the path is the
file's own name (no symbolic link, no folder link below its search folder, no other name of
the same file in the collection), the file is the version that was read (device, inode,
size, mtime) and its thumbnail made again equals the one that was compared.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._formats import INDEX_DIR, SHARDS_FILE, THUMBNAIL_DIR, shard_file, shard_ids
from ._io import open_stack, read_in_index_order, read_parquet
from ._journal import Journal, Outcome, delete_file, move_file
from ._paths import native

__all__ = ["Target", "load_targets", "StoredThumbnails", "check", "act"]


class Target(NamedTuple):
    """One file of the database, as it was when it was compared."""

    key: int
    path: str  # the name to hand to the operating system
    shown: str  # the name as stored in directory.path
    identity: tuple[int, int, int, int]  # dev, inode, size, mtime_ns (FileIdentity)
    root: str | None  # the search folder it was found under (None for a file list)
    aliases: int  # other names of the same file in the collection


def load_targets(db_path: str | os.PathLike[str], keys: Sequence[int]) -> dict[int, Target]:
    """The ``Target`` of each key."""
    con = sqlite3.connect(db_path)
    try:
        con.execute("CREATE TEMP TABLE wanted (key INTEGER PRIMARY KEY)")
        con.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", ((int(k),) for k in keys))
        rows = con.execute(
            """SELECT d.key, d.path, f.path_bytes, f.dev, f.inode, f.file_size, f.mtime_ns, l.path,
                      COALESCE(a.n, 0)
               FROM wanted w JOIN directory d ON d.key = w.key JOIN file_state f ON f.key = d.key
               LEFT JOIN dir_index_lookup l ON l.dir_index = d.dir_index
               LEFT JOIN (SELECT same_as, COUNT(*) AS n FROM file_state WHERE same_as IS NOT NULL
                          GROUP BY same_as) a ON a.same_as = d.key"""
        ).fetchall()
    finally:
        con.close()
    out = {}
    for key, shown, raw, dev, inode, size, mtime, root, aliases in rows:
        inode = inode + (1 << 64) if inode < 0 else inode
        out[key] = Target(key, native(shown, raw), shown, (dev, inode, size, mtime), root, aliases)
    return out


class StoredThumbnails:
    """The thumbnails a run compared, by key, from its results folder."""

    def __init__(self, results_dir: str | os.PathLike[str]):
        self._where: dict[int, tuple[Path, int]] = {}
        self._stacks: dict[Path, np.ndarray] = {}  # each shard's stack, mapped once
        folder, index = Path(results_dir, THUMBNAIL_DIR), Path(results_dir, INDEX_DIR)
        # none kept: every file is then refused (check)
        for shard in shard_ids(index) if (index / SHARDS_FILE).is_file() else []:
            meta = folder / shard_file(shard)
            if not meta.is_file():
                continue
            index_shard = index / shard_file(shard)
            table = read_in_index_order(meta, index_shard, ["thumb_row"])
            keys = read_parquet(index_shard, columns=["key"]).column("key")
            for key, row in zip(keys.to_pylist(), table.column("thumb_row").to_pylist(), strict=True):
                if row >= 0:
                    self._where[key] = (meta.with_suffix(".npy"), row)

    def get(self, key: int) -> np.ndarray | None:
        if key not in self._where:
            return None
        path, row = self._where[key]
        if path not in self._stacks:
            self._stacks[path] = open_stack(path)
        return np.array(self._stacks[path][row])


def _own_name(target: Target) -> str | None:
    """Why ``target.path`` is not the file's own name inside its search folder, or None."""
    path = target.path
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "it is gone"
    except OSError as exc:
        return f"cannot stat it: {exc.strerror or exc}"
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link (fast-diff never acts through a link)"
    if not stat.S_ISREG(st.st_mode):
        return f"it is no longer a regular file (mode {stat.filemode(st.st_mode)})"
    if target.aliases:
        return f"{target.aliases} other name(s) in the collection (links) lead to the same file"
    folder = os.path.dirname(os.path.abspath(path))
    expected = folder
    if target.root is not None:
        relative = os.path.relpath(folder, target.root)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            return "it lies outside its search folder"
        expected = os.path.normpath(os.path.join(os.path.realpath(target.root), relative))
    if os.path.realpath(folder) != expected:
        return f"it is reached through a folder link (its real folder is {os.path.realpath(folder)!r})"
    return None


def _same_version(target: Target, thumbnails: StoredThumbnails, size: int, method: str) -> str | None:
    """Why the file at ``target.path`` is not the version that was compared, or None."""
    from ._decode import decode_thumbnail
    from ._errors import ImageReadError
    from ._files import FileIdentity

    try:
        st = os.stat(target.path)
    except OSError as exc:
        return f"cannot stat it: {exc.strerror or exc}"
    compared = FileIdentity(*target.identity)
    now = FileIdentity.of(st)
    if now != compared:
        return "it changed since it was compared (" + ", ".join(compared.differences(now)) + ")"
    stored = thumbnails.get(target.key)
    if stored is None:
        return "its compared thumbnail is no longer available"
    try:
        thumb, _, _ = decode_thumbnail(target.path, size, method, expected=compared)  # type: ignore[arg-type]
    except ImageReadError as exc:
        return f"it cannot be read again: {exc}"
    if not np.array_equal(thumb, stored):
        return "its content differs from the version that was compared"
    return None


def check(target: Target, kept: Target, thumbnails: StoredThumbnails, *, size: int, method: str) -> str | None:
    """None when ``target`` may be moved or deleted as a lower-quality copy of ``kept``;
    else the reason it may not."""
    problem = _own_name(target) or _same_version(target, thumbnails, size, method)
    if problem:
        return problem
    if kept.identity[:2] == target.identity[:2]:
        return f"it is the same file as {kept.shown!r}"
    problem = _same_version(kept, thumbnails, size, method)
    if problem:
        return f"the file it matched, {kept.shown!r}: {problem}"
    return None


def act(
    plan: Sequence[tuple[int, int]],
    db_path: str | os.PathLike[str],
    results_dir: str | os.PathLike[str],
    journal: Journal,
    *,
    size: int,
    method: str,
    move_to: str | os.PathLike[str] | None = None,
) -> list[Outcome]:
    """Move (``move_to``) or delete each lower-quality file of ``plan`` (pairs ``(lower key,
    kept key)``) that passes ``check``; a file that does not is skipped, with its reason in
    the journal. Returns one Outcome per file."""
    targets = load_targets(db_path, [k for pair in plan for k in pair])
    thumbnails = StoredThumbnails(results_dir)
    folder = None
    if move_to is not None:
        folder = Path(os.path.abspath(move_to))
        folder.mkdir(parents=True, exist_ok=True)
    outcomes = []
    action = "move" if folder is not None else "delete"
    for lower, kept in plan:
        target = targets[lower]
        reason = check(target, targets[kept], thumbnails, size=size, method=method)
        if reason is not None:
            journal.write(action=action, state="skipped", source=os.path.abspath(target.path), reason=reason)
            outcomes.append(Outcome(target.shown, "skipped", reason=reason))
            continue
        if folder is not None:
            outcomes.append(move_file(target.path, folder, journal))
        else:
            outcomes.append(delete_file(target.path, journal))
    return outcomes
