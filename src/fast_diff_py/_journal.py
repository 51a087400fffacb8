"""Moving and deleting files safely: every operation is written to a journal first, no
move ever overwrites a file, and moves can be undone from the journal."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["Journal", "move_files", "delete_files", "undo_moves", "free_name"]

logger = logging.getLogger(__name__)


class Journal:
    """An append-only JSON-lines log, flushed and synced after every line."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, **entry) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **entry}
        self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
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


def _place(source: Path, target: Path) -> None:
    """Move ``source`` to exactly ``target``; FileExistsError if ``target`` exists."""
    try:
        os.link(source, target)  # atomic, and fails rather than overwrite
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        with open(source, "rb") as src, open(target, "xb") as dst:  # another file system
            shutil.copyfileobj(src, dst)
        shutil.copystat(source, target)
    source.unlink()


def _move_no_clobber(source: Path, folder: Path) -> Path:
    """Move ``source`` into ``folder`` under a name no file has; return the new path."""
    while True:
        target = free_name(folder, source.name)
        try:
            _place(source, target)
            return target
        except FileExistsError:
            continue  # taken meanwhile: try the next free name


def move_files(paths: Iterable[str], destination: str | os.PathLike[str], journal: Journal) -> list[str]:
    """Move each file into ``destination``; returns the new paths."""
    folder = Path(destination)
    folder.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in paths:
        source = Path(path)
        journal.write(action="move", state="planned", source=str(source.resolve()),
                      destination=str(folder.resolve()))
        try:
            target = _move_no_clobber(source, folder)
        except OSError as exc:
            journal.write(action="move", state="failed", source=str(source.resolve()), error=str(exc))
            logger.error("could not move %r: %s", path, exc)
            continue
        journal.write(action="move", state="done", source=str(source.resolve()), target=str(target.resolve()))
        moved.append(str(target))
    return moved


def delete_files(paths: Iterable[str], journal: Journal) -> list[str]:
    """Delete each file; returns the deleted paths."""
    deleted = []
    for path in paths:
        source = str(Path(path).resolve())
        journal.write(action="delete", state="planned", source=source)
        try:
            os.remove(path)
        except OSError as exc:
            journal.write(action="delete", state="failed", source=source, error=str(exc))
            logger.error("could not delete %r: %s", path, exc)
            continue
        journal.write(action="delete", state="done", source=source)
        deleted.append(path)
    return deleted


def undo_moves(journal_path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Move every file the journal moved back to where it was (never overwriting).

    Returns ``(from, to)`` of each file moved back; the undo is itself journalled.
    """
    entries = [json.loads(line) for line in Path(journal_path).read_text(encoding="utf-8").splitlines() if line]
    done = [e for e in entries if e["action"] == "move" and e["state"] == "done"]
    restored = []
    with Journal(journal_path) as journal:
        for e in reversed(done):
            target, source = Path(e["target"]), Path(e["source"])
            if not target.exists():
                logger.warning("%s is gone; cannot move it back to %s", target, source)
                continue
            if source.exists():
                logger.warning("%s exists again; leaving %s where it is", source, target)
                continue
            journal.write(action="undo", state="planned", source=str(target), target=str(source))
            source.parent.mkdir(parents=True, exist_ok=True)
            _place(target, source)
            journal.write(action="undo", state="done", source=str(target), target=str(source))
            restored.append((str(target), str(source)))
    return restored
