"""File names as the operating system has them (bytes) and as they are stored (text).

Parquet and SQLite hold text in UTF-8, but a POSIX file name is any sequence of bytes.
Python hands such names over as ``str`` with the undecodable bytes as lone surrogates
(``os.fsdecode``'s ``surrogateescape``). fast-diff stores every path twice where the two
differ:

- ``path`` (text): the name for people, each undecodable byte written ``\\xNN``
  (``display``); equal to the real name whenever that name is valid UTF-8;
- ``path_bytes`` (binary, null when the name is valid UTF-8): the exact bytes
  (``raw``), from which ``native`` gives back the name to open, move or delete.
"""

from __future__ import annotations

import os

__all__ = ["display", "raw", "native"]


def display(path: str) -> str:
    """``path`` as valid text: undecodable bytes written as ``\\xNN``."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


def raw(path: str) -> bytes | None:
    """The bytes of ``path`` when it is not valid UTF-8, else None."""
    try:
        path.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return os.fsencode(path)


def native(path: str, path_bytes: bytes | None) -> str:
    """The name to hand to the operating system for a stored ``(path, path_bytes)``."""
    return os.fsdecode(path_bytes) if path_bytes is not None else path
