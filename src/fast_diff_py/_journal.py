"""Moving and deleting files safely.

- Every operation is written to a journal (JSON lines, synced) before it happens, naming
  the path acted on, and its outcome after.
- A file is acted on only while it is still the file that was compared: ``Action.check``
  (in ``_actions``) decides that; this module carries the operations out.
- A move never overwrites a file and never leaves part of one: on the same file system it is
  a hard link and an unlink; across file systems a copy under a temporary name, synced,
  linked to its free name and only then the source removed. Any failure (a full disk
  included) removes what was written and leaves the source in place.
- A delete moves the file to the freedesktop.org trash of its file system (the home trash,
  ``$XDG_DATA_HOME/Trash``, where the file lies on the same file system, else
  ``<top of its file system>/.Trash-<uid>``): a rename, never a copy, with the
  ``.trashinfo`` file desktop trash tools read to restore it. The space is freed when the
  trash is emptied.
- ``undo_moves`` moves every file a journal moved or deleted back, reporting each failure.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ._io import fsync_dir

__all__ = [
    "Journal",
    "JournalError",
    "Outcome",
    "move_file",
    "delete_file",
    "move_files",
    "delete_files",
    "undo_moves",
    "ALREADY_THERE",
    "free_name",
    "trash_dir",
    "trash_file",
]

logger = logging.getLogger(__name__)


class JournalError(Exception):
    """A journal file cannot be read as one; the message names it."""


class Outcome(NamedTuple):
    """What happened to one file: ``state`` is done, failed or skipped."""

    source: str
    state: str
    target: str | None = None
    reason: str | None = None


def _dumps(entry: dict) -> str:
    """One JSON line; a name that is not valid UTF-8 keeps its bytes as ``\\udcXX`` escapes,
    which ``json.loads`` turns back into the same name."""
    try:
        line = json.dumps(entry, ensure_ascii=False)
        line.encode("utf-8")
        return line
    except UnicodeEncodeError:
        return json.dumps(entry, ensure_ascii=True)


class Journal:
    """An append-only JSON-lines log, flushed and synced after every line."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, **entry) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **entry}
        self._fh.write(_dumps(entry) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem (1).ext``, ... : the first that does not exist."""
    target = folder / name
    stem, suffix = os.path.splitext(name)
    n = 1
    while target.exists() or target.is_symlink():
        target = folder / f"{stem} ({n}){suffix}"
        n += 1
    return target


def _copy_whole(source: Path, partial: Path) -> None:
    """Copy ``source`` to the new file ``partial`` with its times and mode, synced to disk."""
    with open(source, "rb") as src, open(partial, "xb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
        if os.fstat(dst.fileno()).st_size != os.fstat(src.fileno()).st_size:
            raise OSError(errno.EIO, f"copy of {source} is incomplete")
    shutil.copystat(source, partial)


def _place(source: Path, target: Path) -> None:
    """Move ``source`` to exactly ``target``; FileExistsError if ``target`` exists, and on any
    failure nothing new is left behind and ``source`` stays where it was."""
    try:
        os.link(source, target)  # atomic, and fails rather than overwrite
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        # another file system: a whole, synced copy under a name no photo has, then linked
        # to the free name (which fails rather than overwrite)
        partial = target.with_name(f".{target.name}.fast-diff-partial-{os.getpid()}")
        try:
            _copy_whole(source, partial)
            os.link(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        fsync_dir(target.parent)
    try:
        source.unlink()
    except OSError:
        target.unlink(missing_ok=True)  # the source stays: take the copy back
        raise
    fsync_dir(source.parent)


def _move_no_clobber(source: Path, folder: Path) -> Path:
    """Move ``source`` into ``folder`` under a name no file has; return the new path."""
    while True:
        target = free_name(folder, source.name)
        try:
            _place(source, target)
            return target
        except FileExistsError:
            continue  # taken meanwhile: try the next free name


def _error(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"


# the reason a file is not moved that lies in the folder it would be moved to
ALREADY_THERE = "it is already in the folder it would be moved to"


def _already_in(source: Path, folder: Path) -> bool:
    """Whether ``source`` lies directly in ``folder`` (however either is spelled or linked)."""
    try:
        return os.path.samefile(source.parent, folder)
    except OSError:
        return False


def move_file(path: str, destination: Path, journal: Journal) -> Outcome:
    """Move one file into ``destination``, journalled (the path is used as given, never
    resolved)."""
    source = Path(os.path.abspath(path))
    if _already_in(source, destination):
        # moving it would only rename it ("name (1).jpg"): a rerun with the same -mv folder
        journal.write(action="move", state="skipped", source=str(source), reason=ALREADY_THERE)
        return Outcome(str(source), "skipped", reason=ALREADY_THERE)
    journal.write(action="move", state="planned", source=str(source), destination=str(destination))
    try:
        target = _move_no_clobber(source, destination)
        st = os.stat(target)
    except OSError as exc:
        journal.write(action="move", state="failed", source=str(source), error=_error(exc))
        logger.error("could not move %r: %s", path, _error(exc))
        return Outcome(str(source), "failed", reason=_error(exc))
    journal.write(
        action="move",
        state="done",
        source=str(source),
        target=str(target),
        dev=st.st_dev,
        inode=st.st_ino,
        file_size=st.st_size,
    )
    return Outcome(str(source), "done", str(target))


def trash_dir(path: str | os.PathLike[str]) -> Path:
    """The trash a file at ``path`` goes to (freedesktop.org Trash specification): the home
    trash when it lies on the file's file system, else ``.Trash-<uid>`` at the top of the
    file's file system."""
    path = Path(os.path.abspath(path))
    dev = os.lstat(path).st_dev
    home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "Trash"
    existing = home
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if os.stat(existing).st_dev == dev:
        return home
    top = path.parent
    while top.parent != top and os.stat(top.parent).st_dev == dev:
        top = top.parent
    return top / f".Trash-{os.getuid()}"


def trash_file(source: Path) -> Path:
    """Move ``source`` to its trash (``trash_dir``) under a free name, with its
    ``.trashinfo``; returns where it went."""
    trash = trash_dir(source)
    files, info = trash / "files", trash / "info"
    for folder in (files, info):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    while True:
        target = free_name(files, source.name)
        record = info / f"{target.name}.trashinfo"
        try:
            with open(record, "x", encoding="utf-8") as fh:
                fh.write(f"[Trash Info]\nPath={urllib.parse.quote(os.fsencode(source))}\nDeletionDate={stamp}\n")
        except FileExistsError:
            continue
        try:
            os.link(source, target)  # the trash is on the file's own file system
        except FileExistsError:
            record.unlink()
            continue
        except OSError:
            record.unlink()
            raise
        try:
            source.unlink()
        except OSError:
            target.unlink(missing_ok=True)
            record.unlink(missing_ok=True)
            raise
        return target


def delete_file(path: str, journal: Journal) -> Outcome:
    """Delete one file to its trash (``trash_file``), journalled (the path is used as given,
    never resolved); ``undo_moves`` brings it back."""
    source = os.path.abspath(path)
    journal.write(action="delete", state="planned", source=source)
    try:
        target = trash_file(Path(source))
        st = os.lstat(target)
    except OSError as exc:
        journal.write(action="delete", state="failed", source=source, error=_error(exc))
        logger.error("could not delete %r: %s", path, _error(exc))
        return Outcome(source, "failed", reason=_error(exc))
    journal.write(
        action="delete",
        state="done",
        source=source,
        target=str(target),
        dev=st.st_dev,
        inode=st.st_ino,
        file_size=st.st_size,
    )
    return Outcome(source, "done", str(target))


def move_files(paths: Iterable[str], destination: str | os.PathLike[str], journal: Journal) -> list[str]:
    """Move each file into ``destination``; returns the new paths of those moved."""
    folder = Path(os.path.abspath(destination))
    folder.mkdir(parents=True, exist_ok=True)
    return [o.target for o in (move_file(p, folder, journal) for p in paths) if o.state == "done" and o.target]


def delete_files(paths: Iterable[str], journal: Journal) -> list[str]:
    """Delete each file; returns the deleted paths."""
    return [o.source for o in (delete_file(p, journal) for p in paths) if o.state == "done"]


def _entries(journal_path: str | os.PathLike[str]) -> list[dict]:
    path = Path(journal_path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise JournalError(f"journal {os.fspath(path)!r} does not exist") from None
    except UnicodeDecodeError:
        raise JournalError(f"{os.fspath(path)!r} is not a difpy journal (not UTF-8 text)") from None
    except OSError as exc:
        raise JournalError(f"cannot read journal {os.fspath(path)!r}: {exc.strerror or exc}") from None
    entries = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or "action" not in entry or "state" not in entry:
            raise JournalError(f"{os.fspath(path)!r} is not a difpy journal (line {n} is not a journal entry)")
        entries.append(entry)
    return entries


def undo_moves(journal_path: str | os.PathLike[str]) -> tuple[list[tuple[str, str]], list[Outcome]]:
    """Move every file the journal moved, or deleted to the trash, back to where it was
    (never overwriting).

    Returns ``(restored, failures)``: ``(from, to)`` of each file moved back, and an Outcome
    with the reason for each file that could not be. The undo is itself journalled.

    Raises
    ------
    JournalError
        When the file is missing or is not a journal.
    """
    entries = _entries(journal_path)
    done = [e for e in entries if e["action"] in ("move", "delete") and e["state"] == "done" and "target" in e]
    undone = {e["source"] for e in entries if e["action"] == "undo" and e["state"] == "done"}
    restored, failures = [], []
    with Journal(journal_path) as journal:
        for e in reversed(done):
            target, source = Path(e["target"]), Path(e["source"])
            if str(target) in undone:
                continue  # moved back by an earlier undo
            reason = None
            try:
                st = os.lstat(target)
                if "inode" in e and (st.st_dev, st.st_ino, st.st_size) != (e["dev"], e["inode"], e["file_size"]):
                    reason = f"{target} is no longer the file moved there"
            except FileNotFoundError:
                reason = f"{target} is gone"
            if reason is None and (source.exists() or source.is_symlink()):
                reason = f"{source} exists again"
            if reason is None:
                journal.write(action="undo", state="planned", source=str(target), target=str(source))
                try:
                    source.parent.mkdir(parents=True, exist_ok=True)
                    _place(target, source)
                except OSError as exc:
                    reason = _error(exc)
            if reason is not None:
                journal.write(action="undo", state="failed", source=str(target), target=str(source), error=reason)
                logger.error("cannot move %s back to %s: %s", target, source, reason)
                failures.append(Outcome(str(target), "failed", str(source), reason))
                continue
            if e["action"] == "delete":  # out of the trash: its record goes too
                (target.parent.parent / "info" / f"{target.name}.trashinfo").unlink(missing_ok=True)
            journal.write(action="undo", state="done", source=str(target), target=str(source))
            restored.append((str(target), str(source)))
    return restored, failures
