"""Photos in a Snakemake storage (``--default-storage-provider``), for nodes that share no disk.

Where the DAG is built, the searched folders are listed in the storage (its inventory: each
object's size and time, no content read) into a listing that the index job takes as input
(uploaded only when it changed, so that a rerun indexes again exactly when the folders
changed); the index is written from that listing in the order a walk of the same folders
would give; each thumbnail job declares its shard's photos as inputs, so that Snakemake stages
them, and reads the staged copies (``photos_to_read``: one definition of which files a job
reads, for the rule and the job).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ._errors import FolderError
from ._formats import STORAGE_LISTING_SCHEMA
from ._io import read_parquet

__all__ = ["fetch", "list_storage", "photos_to_read", "print_stored_summary", "record_storage_listing", "storage_query"]

# the listing's own digest, in its Parquet metadata: equal digests, equal listings
_DIGEST_KEY = b"fast_diff.listing_digest"
# the searched folders as the storage names them (the database's dir_index_lookup)
_ROOTS_KEY = b"fast_diff.roots"


def storage_query(prefix: str, path: str | os.PathLike[str]) -> str:
    """The storage query Snakemake's default storage gives ``path`` under ``prefix``."""
    return f"{prefix.rstrip('/')}/{os.path.normpath(os.fspath(path))}"


# where the workflow keeps its own copies of files of the storage (read where the DAG is built,
# or compared before an upload): never Snakemake's local copies, which it tracks itself
OWN_COPIES = Path(".snakemake") / "fast-diff-storage"


def _own_copy(provider: Any, query: str) -> Any:
    """A storage object of ``query`` whose local copy is the workflow's own."""
    obj = provider.object(query)
    obj.set_local_path(OWN_COPIES / obj.local_suffix())
    return obj


class _Inventory:
    """What a storage object's ``inventory`` fills in: existence, times and sizes by key."""

    def __init__(self) -> None:
        self.exists_local: dict[str, bool] = {}
        self.exists_in_storage: dict[str, bool] = {}
        self.mtime: dict[str, Any] = {}
        self.size: dict[str, int] = {}
        self.checksum: dict[str, str | None] = {}


def _objects_under(provider: Any, prefix: str, root: str) -> dict[str, tuple[int, int]]:
    """Every object below the folder ``root`` of the storage: ``{relative path: (size,
    mtime_ns)}``, from one inventory of the provider (a listing, no object read)."""
    base = storage_query(prefix, root)
    top = provider.object(base).cache_key()
    import asyncio  # here: only a storage's listing needs it

    cache = _Inventory()
    asyncio.run(provider.object(f"{base}/_").inventory(cache))
    found = {}
    for key, size in cache.size.items():
        if not key.startswith(top + "/") or key.endswith("/"):
            continue  # a neighbour sharing the prefix (photos2/), or a folder marker
        mtime = cache.mtime.get(key)
        seconds = mtime.storage() if mtime is not None else None
        found[key[len(top) + 1 :]] = (int(size), -1 if seconds is None else round(seconds * 1e9))
    return found


def _walk_order(relative: str) -> tuple[tuple[int, str], ...]:
    """Sort key giving a folder walk's order: a folder's files by name, then its subfolders
    by name, each whole (``_index.walk_partition``)."""
    parts = relative.split("/")
    return (*((1, p) for p in parts[:-1]), (0, parts[-1]))


def list_storage(
    provider: Any,
    prefix: str,
    *,
    part_a: list[str],
    part_b: list[str],
    recursive: bool,
    ignore_names: Iterable[str],
    ignore_paths: Iterable[str],
    allowed_file_extensions: Iterable[str],
    exclude_paths: Iterable[str] = (),
    file_list: str | None = None,
    **_: object,
) -> pa.Table:
    """The files of ``part_a`` and ``part_b`` in the storage of ``provider`` under
    ``prefix`` (STORAGE_LISTING_SCHEMA), in the order and with the rules of a walk of the
    same folders: ignored names and paths are rows not allowed (ignored folders are not
    entered), excluded paths are no rows.

    Raises
    ------
    FolderError
        When a folder holds no object (it does not exist in the storage), or with a
        ``file_list`` (not read from a storage).
    """
    from ._index import _excluded, _norm

    if file_list:
        raise FolderError(
            f"config key 'file_list' ({file_list!r}) is not read from a storage: give the folders in part_a / part_b"
        )
    names = set(ignore_names)
    ignored_paths = {_norm(p) for p in ignore_paths}
    excluded = {_norm(p) for p in exclude_paths}
    extensions = {e.lower() for e in allowed_file_extensions}
    rows: list[dict] = []
    roots = [(r, 0, "part_a") for r in part_a] + [(r, 1, "part_b") for r in part_b]
    for dir_index, (root, part, key) in enumerate(roots):
        objects = _objects_under(provider, prefix, root)
        if not objects:
            raise FolderError(
                f"config key '{key}': folder {root!r} holds no file in the storage ({storage_query(prefix, root)})"
            )
        for relative in sorted(objects, key=_walk_order):
            parts = relative.split("/")
            if not recursive and len(parts) > 1:
                continue
            folders = [os.path.join(root, *parts[: i + 1]) for i in range(len(parts) - 1)]
            path = os.path.join(root, relative)
            if any(_excluded(_norm(p), os.path.basename(p), excluded) for p in [*folders, path]):
                continue
            if any(p in names for p in parts[:-1]) or any(_norm(f) in ignored_paths for f in folders):
                continue  # a walk does not enter an ignored folder
            ignored = parts[-1] in names or _norm(path) in ignored_paths
            allowed = not ignored and ("*" in extensions or os.path.splitext(parts[-1])[1].lower() in extensions)
            size, mtime_ns = objects[relative]
            rows.append(
                {
                    "path": path,
                    "part_b": part,
                    "dir_index": dir_index,
                    "file_size": size,
                    "mtime_ns": mtime_ns,
                    "allowed": int(allowed),
                }
            )
    table = pa.Table.from_pylist(rows, schema=STORAGE_LISTING_SCHEMA)
    digest = hashlib.sha1(repr((part_a, part_b, table.to_pydict())).encode()).hexdigest()
    roots_named = json.dumps([storage_query(prefix, r) for r, _, _ in roots])
    return table.replace_schema_metadata({_DIGEST_KEY: digest.encode(), _ROOTS_KEY: roots_named.encode()})


def _digest(path: str | os.PathLike[str]) -> bytes | None:
    try:
        return (pq.read_schema(path).metadata or {}).get(_DIGEST_KEY)
    except (OSError, pa.ArrowInvalid):
        return None


def record_storage_listing(provider: Any, prefix: str, path: str | os.PathLike[str], listing: pa.Table) -> bool:
    """Store ``listing`` as ``path`` of the storage unless the one stored there is equal, so
    that the index job, which takes it as input, runs again exactly when the folders
    changed. Returns whether it was stored."""
    obj = _own_copy(provider, storage_query(prefix, path))
    local = Path(obj.local_path())
    local.parent.mkdir(parents=True, exist_ok=True)
    new = (listing.schema.metadata or {}).get(_DIGEST_KEY)
    if obj.exists():
        obj.retrieve_object()
        if new is not None and _digest(local) == new:
            return False
    pq.write_table(listing, local)
    obj.store_object()
    return True


def listed_entries(listing: str | os.PathLike[str]) -> list[Any]:
    """The index entries (``_index.FileEntry``) of a storage listing, in its order: sizes
    and times from the storage, no device or inode (no two paths are one file there)."""
    from ._index import FileEntry

    rows = read_parquet(listing).to_pylist()
    return [
        FileEntry(
            r["path"],
            os.path.basename(r["path"]),
            r["part_b"],
            r["dir_index"],
            r["file_size"],
            r["mtime_ns"] / 1e9 if r["mtime_ns"] >= 0 else -1.0,
            r["allowed"],
            None,
            mtime_ns=r["mtime_ns"],
        )
        for r in rows
    ]


def listed_roots(listing: str | os.PathLike[str]) -> list[str]:
    """The searched folders of a storage listing, as the storage names them."""
    return json.loads((pq.read_schema(listing).metadata or {})[_ROOTS_KEY])


def photos_to_read(shard_files: str | os.PathLike[str]) -> list[str]:
    """The paths a thumbnail job of ``shard_files`` (an index shard's SHARD_FILES_SCHEMA file)
    reads, in index order: the rule's declared photos, and the job's key to the copies staged
    for them."""
    from ._thumbnails import _to_read

    rows = read_parquet(shard_files, columns=["path", "allowed", "error", "alias"]).to_pylist()
    return [r["path"] for r in rows if _to_read(r)]


# the copies retrieved by this process: each is retrieved once, and again once removed
_fetched: set[str] = set()


def fetch(path: Any) -> Any:
    """A local copy of ``path`` where it is a file or folder of a storage (a checkpoint's
    output that the workflow reads where the DAG is built), else ``path`` itself; retrieved
    anew the first time this process asks, and whenever it was removed since."""
    flagged = getattr(path, "flags", {}).get("storage_object")
    if flagged is None:
        return path
    obj = _own_copy(flagged.provider, flagged.query)
    local = Path(obj.local_path())
    if os.fspath(local) not in _fetched or not local.exists():
        if local.is_dir():
            import shutil

            shutil.rmtree(local)  # a folder's retrieval adds files, it removes none
        local.parent.mkdir(parents=True, exist_ok=True)
        obj.retrieve_object()
        _fetched.add(os.fspath(local))
    return os.fspath(local)


def print_stored_summary(provider: Any, prefix: str, path: str | os.PathLike[str]) -> None:
    """Print the summary stored as ``path`` in the storage (``_summary.print_summary`` for a
    run whose files are in a storage)."""
    from ._summary import PRINT_ENV, format_summary, read_summary

    if os.environ.get(PRINT_ENV) == "0":
        return
    obj = _own_copy(provider, storage_query(prefix, path))
    if not obj.exists():
        return
    local = Path(obj.local_path())
    local.parent.mkdir(parents=True, exist_ok=True)
    obj.retrieve_object()
    summary = read_summary(local)
    if summary is not None:
        print(format_summary(summary, storage_query(prefix, path)), flush=True)
