"""Thumbnails made once per file version.

A thumbnail job keeps what it made for its shard (hard links to its outputs, in a folder of
the shard's own under ``thumbnails/reuse/``) with the version of each file it decoded: path,
device, inode, size, modification time and inode change time as indexed. The next job for
that shard (the index changed: files added, removed or changed anywhere before or in it)
takes the thumbnail, crop thumbnails, gallery preview and pixel size of every file whose
version is the same from what that shard and its two neighbours kept, now and one run before
(files added or removed before a shard move files across its ends), instead of decoding it
again, as long as they would be made the same way (``fingerprint``: the settings that shape
them and the versions of the decoders) and still have the channel sums they were made with
(copied into the job's stack a store and a chunk at a time, and the copies checked).
Their hashes and canonical digests are taken with them where they were made with the same
settings (``HashKeys``; never those of a hash function of the user's), else made again from
the thumbnails, as for decoded files.

The inode change time changes with every write to a file and cannot be set back, so a file
rewritten in place with its old size and modification time restored is decoded again. Only
the job of a shard writes that shard's folder; a neighbour reading it meanwhile reads the old
version whole or not at all.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._formats import HASH_COLUMNS, INDEX_SCHEMA, META_VERSION, FileStatus, shard_ids
from ._io import atomic_path
from ._kernel import channel_sums

__all__ = ["HashKeys", "Kept", "Previous", "fingerprint", "forget_shards", "keep", "reuse_folders"]

logger = logging.getLogger(__name__)

# what a kept shard records of each decoded file (its version as indexed, and what the
# decoding gave beside the thumbnail)
_VERSION = ("path", "path_bytes", "created", "dev", "inode", "file_size", "mtime_ns")
_ROWS_SCHEMA = pa.schema(
    [
        *(INDEX_SCHEMA.field(name) for name in _VERSION),
        ("px", pa.int64()),
        ("py", pa.int64()),
        # the channel sums of its thumbnail and of each crop, as made: what is taken again
        # must still have them (the kept files share their data with the shard's outputs)
        ("sums", pa.list_(pa.int64())),
    ]
)
_ROWS, _THUMBS, _CROPS, _PREVIEWS, _FINGERPRINT = "rows.parquet", "thumbs.npy", "crops.npy", "previews", "fingerprint"
# the hashes and canonical digests made of the kept thumbnails, rows as in _ROWS, and the
# settings they were made with (HashKeys) in the file's metadata
_HASHES = "hashes.parquet"
_HASHES_SCHEMA = pa.schema(
    [*((h, pa.string()) for h in HASH_COLUMNS), ("canonical", pa.string())],
)
# the version a folder held before: a neighbour that reads the folder just after its job
# replaced it still finds the files that moved across the shards' common end
_CARRY = "before"


def fingerprint(**settings: Any) -> str:
    """A digest of what shapes a file's thumbnails: ``settings`` and the versions of
    fast-diff and of the decoders."""
    text = json.dumps({"settings": settings, "versions": _versions()}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


@functools.cache
def _versions() -> dict[str, Any]:
    """The versions of fast-diff and of the decoders (once a process)."""
    from . import __version__

    dists = ("opencv-python-headless", "opencv-python", "simplejpeg", "pillow-heif", "numpy")
    return {"fast-diff": __version__, "meta": META_VERSION, **installed_versions(dists)}


def _normal_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def installed_versions(dists: Sequence[str]) -> dict[str, str | None]:
    """The installed version of each distribution of ``dists`` (None where there is none), as
    ``importlib.metadata.version`` finds it: the first metadata folder of that name on
    ``sys.path``, whose name ends in the version. Read from the folders' names only: loading
    importlib.metadata costs a small run a noticeable part of its time."""
    wanted = {_normal_name(d): d for d in dists}
    found: dict[str, str | None] = {}
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:  # not a folder (a zip archive), or gone
            continue
        for name in names:
            stem, _, suffix = name.rpartition(".")
            if suffix not in ("dist-info", "egg-info"):
                continue
            dist, _, version = stem.partition("-")
            key = _normal_name(dist)
            if key in wanted and wanted[key] not in found and version:
                # an egg's folder may name its Python too: name-version-py3.11.egg-info
                found[wanted[key]] = version.partition("-")[0]
    return {d: found.get(d) for d in dists}


# the most folders of shards no longer in the index that a job reads (after a change that
# renamed many shards, such as a renamed folder, few of their files are the same versions)
_MOST_GONE = 16


def reuse_folders(
    index_dir: str | os.PathLike[str],
    shard: str,
    root: str | os.PathLike[str],
    also: Sequence[str | os.PathLike[str]] = (),
) -> list[str]:
    """Where the thumbnail job of ``shard`` looks for kept thumbnails besides its own folder
    (``root/<shard>``): the folders of the shards before and after it in the index in
    ``index_dir``, and those of shards no longer in it (their files are in other shards now:
    a shard whose first file went, or two shards made one); then, under each root of
    ``also`` (the other way of running over the same settings: the workflow's and a run's
    in one process, for a folder that grew past or shrank below what runs in one process),
    the folder of the same shard and the others."""

    ids = shard_ids(index_dir)
    at = ids.index(shard)
    near = [ids[i] for i in (at - 1, at + 1) if 0 <= i < len(ids)]
    current = set(ids)
    gone = [p for p in _shard_folders(root) if p not in current]
    if len(gone) > _MOST_GONE:
        logger.info("%d shards left the index: reading what the first %d kept", len(gone), _MOST_GONE)
    found = [os.path.join(root, s) for s in near + gone[:_MOST_GONE]]
    for other in also:
        there = sorted(_shard_folders(other), key=lambda s: s != shard)  # the same shard first
        found += [os.path.join(other, s) for s in there[:_MOST_GONE]]
    return found


def _shard_folders(root: str | os.PathLike[str]) -> list[str]:
    """The names of the shard folders under ``root`` (none where it cannot be listed)."""
    try:
        return sorted(p.name for p in Path(root).iterdir() if p.is_dir())
    except OSError:
        return []


def forget_shards(
    index_dir: str | os.PathLike[str], folders: Sequence[str | os.PathLike[str]], root: str | os.PathLike[str]
) -> int:
    """Remove the files of shards no longer in the index in ``index_dir``: those named
    ``<name>_<shard id>.<suffix>`` in ``folders`` (the jobs' outputs, logs and benchmarks)
    and what their jobs kept under ``root``; run once every thumbnail job of the index has
    run. Returns the number of shards forgotten."""
    import re
    import shutil

    current = set(shard_ids(index_dir))
    gone = set()
    for folder in folders:
        for path in Path(folder).glob("*_*.*"):
            named = re.fullmatch(r"[a-z_]+_(\d+)\..+", path.name)
            if named and named[1] not in current and path.is_file() and not path.is_symlink():
                path.unlink()
                gone.add(named[1])
    if Path(root).is_dir():
        for path in Path(root).iterdir():
            if path.name not in current and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
                gone.add(path.name)
    if gone:
        logger.info("removed the files of %d shards no longer in the index", len(gone))
    return len(gone)


def _version(row: dict) -> tuple:
    return tuple(row[c] for c in _VERSION)


@dataclass(frozen=True)
class HashKeys:
    """The settings a thumbnail's hashes and canonical digest were made with: ``hashes``
    those of ``hash_stack`` (shift_amount and rotate; None where none were made, or made by
    a hash function of the user's, which may not give the same again), ``digests`` those of
    ``canonical_digests`` (rotate and mirror; None where none were made). What was kept
    under the same keys is what hashing the same thumbnail again gives."""

    hashes: str | None = None
    digests: str | None = None

    def encode(self) -> dict[bytes, bytes]:
        return {b"fast_diff.hash_keys": json.dumps([self.hashes, self.digests]).encode()}

    @classmethod
    def decode(cls, metadata: dict[bytes, bytes] | None) -> HashKeys:
        hashes, digests = json.loads((metadata or {}).get(b"fast_diff.hash_keys", b"[null, null]"))
        return cls(hashes, digests)


class Kept:
    """Where a thumbnail taken again was kept: its store and row there."""

    __slots__ = ("store", "row")

    def __init__(self, store: _Kept, row: int) -> None:
        self.store, self.row = store, row

    def hashes(self, key: str | None) -> tuple[str | None, ...] | None:
        """The hashes made of it with settings ``key``, where they were kept."""
        return self.store.hashes(self.row, key) if key is not None else None

    def digest(self, key: str | None) -> str | None:
        """Its canonical digest made with settings ``key``, where it was kept."""
        return self.store.digest(self.row, key) if key is not None else None


class Previous:
    """What the last jobs of some shards kept, looked up by file version. A folder that holds
    nothing, was made another way, or cannot be read whole is left out (its files are decoded
    then); each is read from one version, even while its own job replaces it."""

    def __init__(self, folders: Sequence[str | os.PathLike[str]], fingerprint: str) -> None:
        self._at: dict[tuple, tuple[_Kept, int]] = {}
        for folder in folders:
            for where in (Path(folder), Path(folder) / _CARRY):
                kept = _Kept.read(where, fingerprint)
                if kept is not None:
                    for i, version in enumerate(kept.versions):
                        self._at.setdefault(version, (kept, i))

    def __len__(self) -> int:
        return len(self._at)

    def take_into(
        self, rows: Sequence[dict], size: int, variants: int, stack: np.ndarray, crop_stack: np.ndarray
    ) -> dict[int, tuple[int, int, bytes | None, Kept]]:
        """Copy the kept thumbnails (and crops) of the file versions of index rows ``rows``
        into ``stack[row["row"]]`` (and ``crop_stack``), store by store, a chunk at a time,
        where they are of ``size`` with ``variants`` crops and the copy still has the channel
        sums they were made with (a kept file shares its data with a shard's output, which a
        later job may have replaced; the copy is what is checked, so a change at any moment
        is found); return ``px, py``, the preview and where each was kept, by ``row["row"]``.
        A row left out is decoded."""
        by_store: dict[int, tuple[_Kept, list[int], list[int]]] = {}
        for row in rows:
            found = self._at.get(_version(row))
            if found is not None:
                entry = by_store.setdefault(id(found[0]), (found[0], [], []))
                entry[1].append(row["row"])
                entry[2].append(found[1])
        out: dict[int, tuple[int, int, bytes | None, Kept]] = {}
        for kept, targets, at in by_store.values():
            fits = kept.thumbs.shape[1:] == (size, size, 3) and (
                not variants or (kept.crops is not None and kept.crops.shape[1:] == (variants, size, size, 3))
            )
            expected = kept.sums(1 + variants) if fits else None
            if expected is None:
                continue
            previews = kept.previews()
            for lo in range(0, len(at), _CHECK_CHUNK):
                rows_at = np.array(at[lo : lo + _CHECK_CHUNK], np.int64)
                into = np.array(targets[lo : lo + _CHECK_CHUNK], np.int64)
                thumbs = np.asarray(kept.thumbs[rows_at])  # a copy
                sums = channel_sums(thumbs)
                crops = None
                if variants:
                    assert kept.crops is not None
                    crops = np.asarray(kept.crops[rows_at])
                    crop_sums = channel_sums(crops.reshape(len(rows_at) * variants, size, size, 3))
                    sums = np.concatenate([sums, crop_sums.reshape(len(rows_at), variants * 3)], axis=1)
                whole = (sums == expected[rows_at]).all(axis=1)
                stack[into[whole]] = thumbs[whole]
                if crops is not None:
                    crop_stack[into[whole]] = crops[whole]
                for target, i, ok in zip(into.tolist(), rows_at.tolist(), whole.tolist()):
                    if ok:
                        out[target] = (kept.px[i], kept.py[i], previews[i], Kept(kept, i))
                    else:
                        logger.warning(
                            "the thumbnail kept for %r changed since it was made: decoding the file", kept.path(i)
                        )
        return out


# kept thumbnails copied and checked at once (their rows read together from the kept files)
_CHECK_CHUNK = 2048


class _Kept:
    """What one folder kept: each row's file version and what its decoding gave, column by
    column; the stacks mapped, the previews and hashes read on first use (from the files
    opened with the rest)."""

    def __init__(
        self,
        rows: pa.Table,
        thumbs: np.ndarray,
        crops: np.ndarray | None,
        previews: pq.ParquetFile,
        keys: HashKeys,
        hashed: pa.Table | None,
    ) -> None:
        self.versions = list(zip(*(rows.column(c).to_pylist() for c in _VERSION)))
        self.px, self.py = rows.column("px").to_pylist(), rows.column("py").to_pylist()
        self._sums_column = rows.column("sums").combine_chunks()
        self.thumbs, self.crops, self.keys = thumbs, crops, keys
        self._previews_file: pq.ParquetFile | None = previews
        self._previews: list[bytes | None] | None = None
        self._hashed = hashed
        self._hashes: list[tuple[str | None, ...]] | None = None
        self._digests: list[str | None] | None = None
        self._sums: dict[int, np.ndarray | None] = {}

    def __len__(self) -> int:
        return len(self.versions)

    def path(self, i: int) -> str:
        return self.versions[i][0]

    def previews(self) -> list[bytes | None]:
        """Every row's preview (read on first use)."""
        if self._previews is None:
            assert self._previews_file is not None
            self._previews = self._previews_file.read(columns=["jpeg"]).column("jpeg").to_pylist()
            self._previews_file = None
        return self._previews

    def hashes(self, i: int, key: str) -> tuple[str | None, ...] | None:
        if self._hashed is None or self.keys.hashes != key:
            return None
        if self._hashes is None:
            self._hashes = list(zip(*(self._hashed.column(h).to_pylist() for h in HASH_COLUMNS)))
        return self._hashes[i]

    def digest(self, i: int, key: str) -> str | None:
        if self._hashed is None or self.keys.digests != key:
            return None
        if self._digests is None:
            self._digests = self._hashed.column("canonical").to_pylist()
        return self._digests[i]

    def sums(self, thumbnails: int) -> np.ndarray | None:
        """The channel sums each row was kept with (rows x 3 ``thumbnails``: the thumbnail's,
        then each crop's); None where they are not all of that length."""
        if thumbnails not in self._sums:
            column = self._sums_column
            offsets = column.offsets.to_numpy()
            found = None
            if column.null_count == 0 and (np.diff(offsets) == 3 * thumbnails).all():
                values = column.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
                found = values.astype(np.int64).reshape(len(self), 3 * thumbnails)
            self._sums[thumbnails] = found
        return self._sums[thumbnails]

    @classmethod
    def read(cls, folder: Path, fingerprint: str) -> _Kept | None:
        # every file opened through the folder's own descriptor: when its job replaces the
        # folder meanwhile, the files of the old one are gone (an error: not used), never
        # mixed with the new one's; the previews are read later through the file opened now
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return None
        try:
            with _open(_FINGERPRINT, fd) as fh:
                if fh.read().decode() != fingerprint:
                    logger.info("thumbnails kept in %r were made another way: decoding its files", os.fspath(folder))
                    return None
            with _open(_ROWS, fd) as fh:
                rows = pq.ParquetFile(fh).read()  # not read_table: see _io.read_parquet
            previews = pq.ParquetFile(_open(_PREVIEWS, fd))
            thumbs = _map(_THUMBS, fd)
            try:
                crops = _map(_CROPS, fd)
            except FileNotFoundError:
                crops = None
            keys, hashed = _read_hashes(folder, fd, len(rows))
            kept = cls(rows, thumbs, crops, previews, keys, hashed)
        except Exception as exc:  # noqa: BLE001 - a damaged store is only no help
            if not isinstance(exc, FileNotFoundError):
                logger.warning("thumbnails kept in %r cannot be read (%s): decoding its files", os.fspath(folder), exc)
            return None
        finally:
            os.close(fd)
        n = len(kept)
        if not (n == len(thumbs) == previews.metadata.num_rows) or (crops is not None and len(crops) != n):
            logger.warning("thumbnails kept in %r do not match their rows: decoding its files", os.fspath(folder))
            return None
        return kept


def _read_hashes(folder: Path, fd: int, rows: int) -> tuple[HashKeys, pa.Table | None]:
    """The hashes and digests kept in ``folder`` (open as ``fd``) for its ``rows`` rows, with
    their keys; nothing where there are none or they cannot be read whole (they are made
    again)."""
    try:
        with _open(_HASHES, fd) as fh:
            kept = pq.ParquetFile(fh)
            keys = HashKeys.decode(kept.schema_arrow.metadata)
            table = kept.read()
        if table.schema.remove_metadata() != _HASHES_SCHEMA:
            raise ValueError(f"columns {table.schema.names}, expected {_HASHES_SCHEMA.names}")
    except FileNotFoundError:
        return HashKeys(), None
    except Exception as exc:  # noqa: BLE001 - a damaged file is only no help
        logger.warning("hashes kept in %r cannot be read (%s): hashing its files again", os.fspath(folder), exc)
        return HashKeys(), None
    if len(table) != rows:
        logger.warning("hashes kept in %r do not match their rows: hashing its files again", os.fspath(folder))
        return HashKeys(), None
    return keys, table


def _open(name: str, fd: int):
    return os.fdopen(os.open(name, os.O_RDONLY, dir_fd=fd), "rb")


def _map(name: str, fd: int) -> np.ndarray:
    """An ``.npy`` file mapped read-only, opened in folder ``fd``."""
    with _open(name, fd) as fh:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(fh)
        if fortran or dtype != np.uint8:
            raise ValueError(f"{name}: not a C-ordered uint8 stack")
        if not np.prod(shape):
            return np.zeros(shape, np.uint8)
        return np.memmap(fh, dtype=dtype, mode="r", offset=fh.tell(), shape=shape)


def keep(
    folder: str | os.PathLike[str],
    index: list[dict],
    rows: list[dict],
    stack: np.ndarray,
    crop_stack: np.ndarray,
    thumbs: str | os.PathLike[str],
    crops: str | os.PathLike[str] | None,
    previews: str | os.PathLike[str],
    fingerprint: str,
    keys: HashKeys = HashKeys(),
    hashes: Sequence[tuple[str | None, ...]] | None = None,
    digests: Sequence[str] | None = None,
) -> None:
    """Keep a shard's outputs (hard links where the file system has them, else copies) with
    the version of each file decoded (``index``: the shard's index rows; ``rows``: the meta
    rows the job made of them, in the same order; ``stack`` and ``crop_stack``, the decoded
    files' thumbnails and crops as written), in place of what was kept before, which is kept
    one run longer beside it. With ``hashes`` and ``digests`` (rows as in ``stack``) also
    those, made with the settings ``keys`` names (None: not kept)."""

    decoded = [(i, r) for i, r in zip(index, rows, strict=True) if r["success"] == FileStatus.SUCCESS]
    n, variants = len(decoded), crop_stack.shape[1]
    crop_sums = channel_sums(crop_stack.reshape(n * variants, *stack.shape[1:])).reshape(n, variants * 3)
    sums = np.concatenate([channel_sums(stack), crop_sums], axis=1)
    table = pa.table(
        {
            **{c: [i[c] for i, _ in decoded] for c in ("path", "path_bytes", "created")},
            **{c: [r[c] for _, r in decoded] for c in ("dev", "inode", "file_size", "mtime_ns", "px", "py")},
            "sums": sums.tolist(),
        },
        schema=_ROWS_SCHEMA,
    )
    try:
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            (tmp / _CARRY).mkdir()
            for name in (_ROWS, _THUMBS, _CROPS, _PREVIEWS, _FINGERPRINT, _HASHES):
                if (Path(folder) / name).is_file():
                    _link(Path(folder) / name, tmp / _CARRY / name)
            _link(thumbs, tmp / _THUMBS)
            if crops is not None:
                _link(crops, tmp / _CROPS)
            _link(previews, tmp / _PREVIEWS)
            pq.write_table(table, tmp / _ROWS)
            keys = HashKeys(keys.hashes if hashes is not None else None, keys.digests if digests is not None else None)
            if keys.hashes or keys.digests:
                columns = list(zip(*hashes)) if keys.hashes and hashes else [[None] * n] * len(HASH_COLUMNS)
                made = {h: list(c) for h, c in zip(HASH_COLUMNS, columns, strict=True)}
                made["canonical"] = list(digests) if keys.digests and digests is not None else [None] * n
                pq.write_table(pa.table(made, schema=_HASHES_SCHEMA.with_metadata(keys.encode())), tmp / _HASHES)
            (tmp / _FINGERPRINT).write_text(fingerprint)
    except OSError as exc:  # the shard's outputs are written: keeping them is only a help
        logger.warning("cannot keep the thumbnails in %r for the next run (%s)", os.fspath(folder), exc)


def _link(source: str | os.PathLike[str], target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        import shutil

        shutil.copyfile(source, target)
