"""The SQLite product: the tables fast-diff-py 1.0.4 documents, built in bulk."""

from __future__ import annotations

import glob
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ._errors import DatabaseError
from ._formats import HASH_COLUMNS, USER_VERSION
from ._io import (
    atomic_path,
    damaged_parquet,
    files_rows,
    fsync_dir,
    in_index_order,
    process_running,
    read_in_index_order,
    read_parquet,
)

__all__ = [
    "TABLES_SQL",
    "INDEXES_SQL",
    "build_database",
    "database_problem",
    "write_receipt",
    "receipt_problem",
    "forget_changed_database",
    "forget_unfinished_database",
    "forget_missing_product",
]

logger = logging.getLogger(__name__)

TABLES_SQL = """
CREATE TABLE directory (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT,
    filename TEXT,
    error TEXT,
    success INTEGER DEFAULT -1 CHECK (directory.success IN (-2, -1, 0, 1)),
    px INTEGER DEFAULT -1 CHECK (directory.px >= -1),
    py INTEGER DEFAULT -1 CHECK (directory.py >= -1),
    allowed INTEGER DEFAULT 0 CHECK (directory.allowed IN (0, 1)),
    file_size INTEGER DEFAULT -1 CHECK (directory.file_size >= -1),
    created REAL DEFAULT -1 CHECK (directory.created >= -1),
    dir_index INTEGER DEFAULT -1 CHECK (directory.dir_index >= -1),
    part_b INTEGER DEFAULT 0 CHECK (directory.part_b IN (0, 1)),
    hash_0 INTEGER,
    hash_90 INTEGER,
    hash_180 INTEGER,
    hash_270 INTEGER,
    deleted INTEGER DEFAULT 0 CHECK (directory.deleted IN (0, 1)),
    UNIQUE (path, part_b));
CREATE TABLE hash_table (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT UNIQUE,
    count INTEGER CHECK (hash_table.count >= 0));
CREATE TABLE dif_table (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    key_a INTEGER NOT NULL,
    key_b INTEGER NOT NULL,
    dif REAL CHECK (dif_table.dif >= -1) DEFAULT -1,
    success INT CHECK (dif_table.success IN (0, 1, 2, 3)) DEFAULT 1,
    error TEXT,
    UNIQUE (key_a, key_b));
CREATE TABLE dir_index_lookup (
    dir_index INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    part_b INTEGER NOT NULL CHECK (dir_index_lookup.part_b IN (0, 1)));
CREATE TABLE file_state (
    key INTEGER PRIMARY KEY,
    path_bytes BLOB,
    dev INTEGER,
    inode INTEGER,
    file_size INTEGER,
    mtime_ns INTEGER,
    same_as INTEGER);
"""
# fast-diff's own table beside fast-diff-py's: for each directory row, the exact bytes of a
# path that is not valid UTF-8 (_paths), the version of the file that was read (device,
# inode as a signed 64-bit integer, size, mtime in ns; -1 where none was read) and, for a
# second name of a file (a symbolic or hard link), the key of the name it was read under.

INDEXES_SQL = """
CREATE INDEX directory_part_b ON directory (part_b, success);
CREATE INDEX directory_hash_0 ON directory (hash_0);
CREATE INDEX directory_hash_90 ON directory (hash_90);
CREATE INDEX directory_hash_180 ON directory (hash_180);
CREATE INDEX directory_hash_270 ON directory (hash_270);
CREATE INDEX dif_table_key_b ON dif_table (key_b);
CREATE INDEX dif_table_dif ON dif_table (dif);
"""

_DIR_COLUMNS = (
    "key",
    "path",
    "filename",
    "error",
    "success",
    "px",
    "py",
    "allowed",
    "file_size",
    "created",
    "dir_index",
    "part_b",
)
_BATCH = 50_000
# what a directory row takes from its index shard, and file_state from the thumbnail job's
# metadata (the version of the file that was read)
_INDEX_COLUMNS = ("key", "path", "filename", "allowed", "file_size", "created", "dir_index", "part_b")
_READ_COLUMNS = ("dev", "inode", "file_size", "mtime_ns")


def _rows(table, columns):
    data = [table.column(c).to_pylist() for c in columns]
    return zip(*data)


def build_database(
    db_path: str | os.PathLike[str],
    *,
    roots_path: str,
    index_paths: Sequence[str],
    meta_paths: Sequence[str],
    pair_paths: Sequence[str],
) -> None:
    """Stream the index, thumbnail metadata and pair files into a new SQLite database.

    The database is built under a temporary name next to ``db_path`` and renamed onto it
    when complete, so ``db_path`` is either the previous file or the whole new one. Rows of
    ``dif_table`` are inserted ordered by ``(key_a, key_b)``, so the table does not depend on
    how the comparison was split into blocks. Hash strings go to ``hash_table`` (with the
    number of rotations of all files carrying them) and ``directory.hash_*`` hold their keys.
    """
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(db_path)
    tmp = db_path.with_name(f".{db_path.name}.tmp-{os.getpid()}")
    scratch = db_path.with_name(f".{db_path.name}.scratch-{os.getpid()}")
    for p in (tmp, scratch):
        p.unlink(missing_ok=True)
    try:
        con = sqlite3.connect(tmp)
        try:
            _fill(con, scratch, roots_path, index_paths, meta_paths, pair_paths)
            problem = con.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise DatabaseError(
                    f"{os.fspath(db_path)!r}: the new database fails SQLite's check "
                    f"({problem}); the previous file is kept"
                )
        finally:
            con.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _keep_foreign(db_path)
        os.replace(tmp, db_path)
        fsync_dir(db_path.parent)
    finally:
        tmp.unlink(missing_ok=True)
        scratch.unlink(missing_ok=True)


def _keep_foreign(db_path: Path) -> None:
    """Rename a file at ``db_path`` that is not a fast-diff database out of the way (to
    ``<name>.not-fast-diff-<time>``) rather than replace it: it may be someone's data."""
    problem = database_problem(db_path)
    if problem is None or problem == "missing" or problem.startswith("damaged"):
        return
    aside = db_path.with_name(f"{db_path.name}.not-fast-diff-{time.strftime('%Y%m%d%H%M%S')}")
    logger.warning("%s: %s; kept as %s", db_path, problem, aside)
    os.rename(db_path, aside)


def remove_stale_temporaries(db_path: Path) -> list[Path]:
    """Remove the temporary files of builds of ``db_path`` whose process is gone."""
    removed = []
    for p in db_path.parent.glob(f".{glob.escape(db_path.name)}.*-*"):
        kind, _, pid = p.name[len(db_path.name) + 2 :].rpartition("-")
        if kind not in ("tmp", "scratch") or not pid.isdigit() or process_running(int(pid)):
            continue
        logger.info("removing %s, left by an earlier run that stopped", p)
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


_SQLITE_MAGIC = b"SQLite format 3\x00"


def database_problem(db_path: str | os.PathLike[str]) -> str | None:
    """None when ``db_path`` holds a database written by this fast-diff (its header and
    ``user_version`` read, not its contents); else what it is instead: "missing", "not a
    SQLite database", "written by ...", or "damaged ..." for a truncated file."""
    try:
        with open(db_path, "rb") as fh:
            header = fh.read(100)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if len(header) < 100 or header[:16] != _SQLITE_MAGIC:
        return "not a SQLite database"
    version = int.from_bytes(header[60:64], "big")
    if version != USER_VERSION:
        return f"written by another program or version (user_version {version}, expected {USER_VERSION})"
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(header[28:32], "big")
    if size < page * pages:
        return f"damaged: {size} bytes, its header says {page * pages}"
    return None


def write_receipt(receipt: str | os.PathLike[str], db_path: str | os.PathLike[str]) -> None:
    """Record which file ``db_path`` holds now (its identity), for ``receipt_problem``."""
    st = os.stat(db_path)
    data = {
        "db_path": os.path.abspath(db_path),
        "file_size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "inode": st.st_ino,
        "dev": st.st_dev,
        "user_version": USER_VERSION,
    }
    with atomic_path(receipt) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def receipt_problem(receipt: str | os.PathLike[str], db_path: str | os.PathLike[str]) -> str | None:
    """Why ``db_path`` is no longer the database the merge described in ``receipt`` (deleted,
    replaced, changed, damaged), or None while it is."""
    try:
        data = json.loads(Path(receipt).read_text())
    except (OSError, ValueError):
        return "its receipt is unreadable"
    problem = database_problem(db_path)
    if problem is not None:
        return problem
    st = os.stat(db_path)
    now = {
        "db_path": os.path.abspath(db_path),
        "file_size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "inode": st.st_ino,
        "dev": st.st_dev,
    }
    changed = [k for k, v in now.items() if data.get(k) != v]
    return f"changed since it was written ({', '.join(changed)})" if changed else None


def _fill(con, scratch, roots_path, index_paths, meta_paths, pair_paths) -> None:
    con.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
    con.executescript(TABLES_SQL)
    con.execute("ATTACH DATABASE ? AS scratch", (str(scratch),))
    con.executescript(
        """
        PRAGMA scratch.journal_mode = OFF;
        CREATE TABLE scratch.dir AS SELECT * FROM main.directory WHERE 0;
        ALTER TABLE scratch.dir ADD COLUMN h0 TEXT;
        ALTER TABLE scratch.dir ADD COLUMN h90 TEXT;
        ALTER TABLE scratch.dir ADD COLUMN h180 TEXT;
        ALTER TABLE scratch.dir ADD COLUMN h270 TEXT;
        CREATE TABLE scratch.pairs (key_a INTEGER, key_b INTEGER, dif REAL, success INTEGER);
        """
    )
    roots = read_parquet(roots_path)
    con.executemany("INSERT INTO dir_index_lookup VALUES (?, ?, ?)", _rows(roots, ["dir_index", "path", "part_b"]))
    # hash strings go through scratch.dir to become keys of hash_table; without any (no
    # compute_hash), the rows go straight into directory, with the same values
    hashed = _any_hash(meta_paths, index_paths)
    hash_columns = HASH_COLUMNS if hashed else []
    placeholders = ", ".join("?" * (len(_DIR_COLUMNS) + len(hash_columns)))
    if hashed:
        insert_dir = f"INSERT INTO scratch.dir ({', '.join(_DIR_COLUMNS)}, h0, h90, h180, h270) VALUES ({placeholders})"
    else:
        insert_dir = f"INSERT INTO directory ({', '.join(_DIR_COLUMNS)}, deleted) VALUES ({placeholders}, 0)"
    for index_path, meta_path in zip(index_paths, meta_paths, strict=True):
        # each file read once: the shard's rows, and its thumbnail job's metadata of them
        index = read_parquet(index_path, columns=[*_INDEX_COLUMNS, "path_bytes", "same_as"])
        rows = files_rows(index_path)  # one row per row of the shard's files, in its order
        meta = read_parquet(meta_path, columns=["error", "success", "px", "py", *hash_columns, *_READ_COLUMNS])
        meta = in_index_order(meta, rows, meta_path)
        if len(meta) != len(index):
            raise ValueError(f"{meta_path} does not describe the files of {index_path}")
        cols = {name: index.column(name) for name in _INDEX_COLUMNS}
        cols.update({name: meta.column(name) for name in ("error", "success", "px", "py", *hash_columns)})
        data = [cols[c].to_pylist() for c in (*_DIR_COLUMNS, *hash_columns)]
        con.executemany(insert_dir, zip(*data))
        # the version that was read (the metadata's size, not the index's)
        inodes = [i - (1 << 64) if i >= 1 << 63 else i for i in meta.column("inode").to_pylist()]
        con.executemany(
            "INSERT INTO file_state VALUES (?, ?, ?, ?, ?, ?, ?)",
            zip(
                index.column("key").to_pylist(),
                index.column("path_bytes").to_pylist(),
                meta.column("dev").to_pylist(),
                inodes,
                meta.column("file_size").to_pylist(),
                meta.column("mtime_ns").to_pylist(),
                index.column("same_as").to_pylist(),
            ),
        )
    for pair_path in pair_paths:
        try:
            pf = pq.ParquetFile(pair_path)
            for batch in pf.iter_batches(batch_size=_BATCH):
                con.executemany(
                    "INSERT INTO scratch.pairs VALUES (?, ?, ?, ?)",
                    zip(*(batch.column(i).to_pylist() for i in range(4))),
                )
        except (pa.ArrowException, OSError) as exc:
            raise damaged_parquet(pair_path, exc) from exc
    con.commit()
    _keys_of_hashes(con)  # without hashes scratch.dir is empty: SQLite's sequences alike
    con.executescript(
        """
        INSERT INTO dif_table (key_a, key_b, dif, success)
            SELECT key_a, key_b, dif, success FROM scratch.pairs ORDER BY key_a, key_b;
        """
    )
    con.executescript(INDEXES_SQL)
    con.execute(f"PRAGMA user_version = {USER_VERSION}")
    con.commit()
    con.execute("DETACH DATABASE scratch")
    n_dir = con.execute("SELECT COUNT(*) FROM directory").fetchone()[0]
    n_dif = con.execute("SELECT COUNT(*) FROM dif_table").fetchone()[0]
    logger.info("database: %d files, %d pairs", n_dir, n_dif)


def _any_hash(meta_paths: Sequence[str], index_paths: Sequence[str]) -> bool:
    """Whether any file of the index shards ``index_paths`` has a hash in the thumbnail
    metadata ``meta_paths``: a file whose statistics say every hash is null has none, and is
    not read (runs without compute_hash); the others are read in their shard's order."""
    for path, index_path in zip(meta_paths, index_paths, strict=True):
        if _hashes_all_null(path):
            continue
        table = read_in_index_order(path, index_path, HASH_COLUMNS)
        if any(column.null_count < len(column) for column in table.columns):
            return True
    return False


def _hashes_all_null(path: str) -> bool:
    """Whether the Parquet statistics of ``path`` say that all its hash columns are null
    (False where they do not say, or the file cannot be read: it is then read whole)."""
    try:
        with pq.ParquetFile(path) as pf:
            meta = pf.metadata
            for group in range(meta.num_row_groups):
                row_group = meta.row_group(group)
                chunks = {row_group.column(c).path_in_schema: row_group.column(c) for c in range(meta.num_columns)}
                for name in HASH_COLUMNS:
                    stats = chunks[name].statistics
                    if stats is None or not stats.has_null_count or stats.null_count != row_group.num_rows:
                        return False
    except (pa.ArrowException, OSError, ValueError, KeyError):
        return False
    return True


def _keys_of_hashes(con: sqlite3.Connection) -> None:
    """hash_table from the hash strings of scratch.dir (keys in the order of the first file
    that has each), and directory from scratch.dir with those keys."""
    con.executescript(
        """
        INSERT INTO hash_table (hash, count)
            SELECT hash, COUNT(*) FROM (
                SELECT key, h0 AS hash FROM scratch.dir UNION ALL
                SELECT key, h90 FROM scratch.dir UNION ALL
                SELECT key, h180 FROM scratch.dir UNION ALL
                SELECT key, h270 FROM scratch.dir)
            WHERE hash IS NOT NULL GROUP BY hash ORDER BY MIN(key), hash;
        INSERT INTO directory
            SELECT key, path, filename, error, success, px, py, allowed, file_size, created,
                   dir_index, part_b,
                   (SELECT key FROM hash_table WHERE hash = d.h0),
                   (SELECT key FROM hash_table WHERE hash = d.h90),
                   (SELECT key FROM hash_table WHERE hash = d.h180),
                   (SELECT key FROM hash_table WHERE hash = d.h270),
                   0
            FROM scratch.dir AS d ORDER BY key;
        """
    )


def forget_missing_product(receipt: str | os.PathLike[str], product: str | os.PathLike[str], what: str) -> bool:
    """Remove ``receipt`` when ``product`` (``what``: a file the job that wrote the receipt
    made beside the database, such as the gallery or the summary) is gone, so that the
    workflow writes it again. Returns whether the receipt was removed."""
    if not os.path.exists(receipt) or os.path.exists(product):
        return False
    print(f"fast-diff: {what} {os.fspath(product)!r} is missing: writing it again", file=sys.stderr)
    os.unlink(receipt)
    return True


def forget_unfinished_database(receipt: str | os.PathLike[str], stages: Sequence[str | os.PathLike[str]]) -> bool:
    """Remove ``receipt`` when one of ``stages`` (the outputs of the checkpoints the database
    is made after: the index, the plan) is missing: a run stopped or failed after one of them
    began and before the merge, which this run must then do. Snakemake does not see that by
    itself: a job whose inputs come from a checkpoint whose outputs are missing counts as done
    while its own outputs exist. Returns whether the receipt was removed."""
    if not os.path.exists(receipt):
        return False
    gone = [os.fspath(p) for p in stages if not os.path.exists(p)]
    if not gone:
        return False
    print(
        f"fast-diff: {gone[0]!r} is missing (a run that stopped before its end): building the database again",
        file=sys.stderr,
    )
    os.unlink(receipt)
    return True


def forget_changed_database(receipt: str | os.PathLike[str], db_path: str | os.PathLike[str]) -> str | None:
    """Remove ``receipt`` when ``db_path`` is no longer the database it describes, so that
    the workflow builds the database again (a deleted, damaged or replaced product is
    rebuilt rather than trusted). Returns the reason, or None when nothing was removed."""
    if not os.path.exists(receipt):
        return None
    problem = receipt_problem(receipt, db_path)
    if problem is not None:
        print(f"fast-diff: {os.fspath(db_path)!r} is {problem}: building it again", file=sys.stderr)
        os.unlink(receipt)
    return problem
