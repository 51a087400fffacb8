"""The SQLite product: the tables fast-diff-py 1.0.4 documents, built in bulk."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq

from ._codes import HASH_COLUMNS
from ._io import read_parquet


__all__ = ["TABLES_SQL", "INDEXES_SQL", "build_database"]

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
"""

INDEXES_SQL = """
CREATE INDEX directory_part_b ON directory (part_b, success);
CREATE INDEX directory_hash_0 ON directory (hash_0);
CREATE INDEX directory_hash_90 ON directory (hash_90);
CREATE INDEX directory_hash_180 ON directory (hash_180);
CREATE INDEX directory_hash_270 ON directory (hash_270);
CREATE INDEX dif_table_key_b ON dif_table (key_b);
CREATE INDEX dif_table_dif ON dif_table (dif);
"""

_DIR_COLUMNS = ("key", "path", "filename", "error", "success", "px", "py", "allowed",
                "file_size", "created", "dir_index", "part_b")
_BATCH = 50_000


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
    tmp = db_path.with_name(f".{db_path.name}.tmp-{os.getpid()}")
    scratch = db_path.with_name(f".{db_path.name}.scratch-{os.getpid()}")
    for p in (tmp, scratch):
        p.unlink(missing_ok=True)
    try:
        con = sqlite3.connect(tmp)
        try:
            _fill(con, scratch, roots_path, index_paths, meta_paths, pair_paths)
        finally:
            con.close()
        os.replace(tmp, db_path)
    finally:
        tmp.unlink(missing_ok=True)
        scratch.unlink(missing_ok=True)


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
    con.executemany("INSERT INTO dir_index_lookup VALUES (?, ?, ?)",
                    _rows(roots, ["dir_index", "path", "part_b"]))
    placeholders = ", ".join("?" * (len(_DIR_COLUMNS) + 4))
    insert_dir = (f"INSERT INTO scratch.dir ({', '.join(_DIR_COLUMNS)}, h0, h90, h180, h270) "
                  f"VALUES ({placeholders})")
    for index_path, meta_path in zip(index_paths, meta_paths, strict=True):
        index = read_parquet(index_path, columns=["key", "path", "filename", "allowed",
                                                   "file_size", "created", "dir_index", "part_b"])
        meta = read_parquet(meta_path, columns=["key", "error", "success", "px", "py", *HASH_COLUMNS])
        if not index.column("key").equals(meta.column("key")):
            raise ValueError(f"{meta_path} does not describe the files of {index_path}")
        cols = {name: index.column(name) for name in index.column_names}
        cols.update({name: meta.column(name) for name in meta.column_names})
        data = [cols[c].to_pylist() for c in (*_DIR_COLUMNS, *HASH_COLUMNS)]
        con.executemany(insert_dir, zip(*data))
    for pair_path in pair_paths:
        pf = pq.ParquetFile(pair_path)
        for batch in pf.iter_batches(batch_size=_BATCH):
            con.executemany("INSERT INTO scratch.pairs VALUES (?, ?, ?, ?)",
                            zip(*(batch.column(i).to_pylist() for i in range(4))))
    con.commit()
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
        INSERT INTO dif_table (key_a, key_b, dif, success)
            SELECT key_a, key_b, dif, success FROM scratch.pairs ORDER BY key_a, key_b;
        """
    )
    con.executescript(INDEXES_SQL)
    con.commit()
    con.execute("DETACH DATABASE scratch")
    n_dir = con.execute("SELECT COUNT(*) FROM directory").fetchone()[0]
    n_dif = con.execute("SELECT COUNT(*) FROM dif_table").fetchone()[0]
    logger.info("database: %d files, %d pairs", n_dir, n_dif)
