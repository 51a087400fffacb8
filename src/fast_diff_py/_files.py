"""Reading one file of the collection: never blocking, bounded, and only the version indexed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import NamedTuple

from ._errors import ImageReadError

__all__ = [
    "MAX_FILE_BYTES",
    "READ_AHEAD_BYTES",
    "READ_AHEAD_FILES",
    "FileIdentity",
    "advise",
    "read_ahead",
    "read_file",
]

# the largest file read (config max_file_bytes)
MAX_FILE_BYTES = 512 << 20
# how far ahead of its decoding a thread asks the kernel to read files, so that waiting on
# storage overlaps decoding: up to this many files and, beyond the next one, this many bytes
# (sized on a cold page cache: bench/README.md)
READ_AHEAD_FILES = 512
READ_AHEAD_BYTES = 64 << 20


class FileIdentity(NamedTuple):
    """What names one version of a file: where it lives, and its size and time."""

    dev: int
    inode: int
    file_size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _known(self) -> tuple[bool, ...]:
        # a copy staged from a storage is known by its size only: no device, inode or time
        # of its own (dev -1, mtime_ns -1)
        return (self.dev >= 0, self.dev >= 0, True, self.mtime_ns >= 0)

    def differences(self, other: FileIdentity) -> list[str]:
        """The fields known here that differ, as ``name a -> b``."""
        return [
            f"{name} {a} -> {b}"
            for name, a, b, known in zip(self._fields, self, other, self._known())
            if known and a != b
        ]


def read_file(
    path: str, expected: FileIdentity | None = None, max_bytes: int = MAX_FILE_BYTES
) -> tuple[bytes, FileIdentity]:
    """The bytes of the regular file ``path`` and the identity they were read under.

    Never blocks (a FIFO or device is refused after a non-blocking open) and never reads
    more than ``max_bytes``. With ``expected``, a file that is no longer that version is
    refused.

    Raises
    ------
    ImageReadError
        Naming what is wrong: unreadable, not a regular file, changed, too large, or a size
        that changed while it was read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ImageReadError(f"cannot read file: {type(exc).__name__}: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageReadError(f"not a regular file (mode {stat.filemode(st.st_mode)})")
        found = FileIdentity.of(st)
        if expected is not None and expected.differences(found):
            raise ImageReadError(
                "file changed since it was indexed ("
                + ", ".join(expected.differences(found))
                + "); run again to index it anew"
            )
        if st.st_size > max_bytes:
            raise ImageReadError(f"file of {st.st_size} bytes exceeds max_file_bytes ({max_bytes})")
        # one read of the whole file in the common case (no copy); one byte more than its
        # size tells a file that grew meanwhile
        chunks, got = [], 0
        while got <= st.st_size:
            chunk = os.read(fd, st.st_size + 1 - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got != st.st_size:
            raise ImageReadError(f"file size changed while it was read ({st.st_size} -> {got} bytes or more)")
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return data, found
    except OSError as exc:
        raise ImageReadError(f"cannot read file: {type(exc).__name__}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def advise(path: str | None) -> None:
    """Ask the kernel to start reading ``path`` into its page cache and return at once
    (``posix_fadvise(WILLNEED)``; nothing where the platform has none). Errors are left to
    the file's own read, which reports them."""
    if path is None or not hasattr(os, "posix_fadvise"):
        return
    try:
        # O_NONBLOCK: a FIFO among the files must not block here (it changes nothing for a file)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_ahead(sizes: list[int], files: int, budget: int) -> Iterator[range]:
    """For each of a run of files (``sizes`` in bytes), the files to ask for before working on
    it: every file once, before its turn, never ``files`` or more ahead of the current one,
    and the files asked for and not yet worked on within ``budget`` bytes beyond the next."""
    ahead = window = 0  # files [i, ahead) have been asked for, ``window`` bytes of them
    for i in range(len(sizes)):
        start = ahead
        while ahead < len(sizes) and ahead - i < files and (ahead == i or window + sizes[ahead] <= budget):
            window += sizes[ahead]
            ahead += 1
        yield range(start, ahead)
        window -= sizes[i]
