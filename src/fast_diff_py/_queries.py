"""Queries over the product database, with fast-diff-py 1.0.4's function names.

Large answers are iterators that stream from SQLite. SQL clauses are built from the
arguments (see ``_formats.pair_filter``), not chosen from a list of near-identical strings.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from typing import NamedTuple

from ._errors import DatabaseError
from ._formats import FileStatus, PairStatus, pair_filter

__all__ = ["FastDiffDB", "SQLiteDB", "StoredPair", "stored_pairs"]

_CLUSTER_ORDER = "file_size DESC, created ASC"


class StoredPair(NamedTuple):
    """One stored pair, as ``stored_pairs`` reads it."""

    key_a: int
    key_b: int
    dif: float
    path_a: str
    path_b: str
    path_bytes_a: bytes | None  # the name's bytes where it is not UTF-8 (``file_state``)
    path_bytes_b: bytes | None


def stored_pairs(con: sqlite3.Connection, threshold: float, include_hash_match: bool = True) -> Iterator[StoredPair]:
    """Every stored pair within ``threshold`` (``pair_filter``), by keys: the one reader of
    ``dif_table``'s pairs, for the queries, the difPy export and the pair pictures. Streams."""
    has_state = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'file_state'").fetchone()
    raw, joins = ("NULL, NULL", "")
    if has_state:
        raw = "fa.path_bytes, fb.path_bytes"
        joins = "LEFT JOIN file_state fa ON fa.key = d.key_a LEFT JOIN file_state fb ON fb.key = d.key_b "
    cur = con.execute(
        f"SELECT d.key_a, d.key_b, d.dif, a.path, b.path, {raw} FROM dif_table d "
        "JOIN directory a ON a.key = d.key_a JOIN directory b ON b.key = d.key_b "
        f"{joins}WHERE {pair_filter(include_hash_match)} ORDER BY d.key_a, d.key_b",
        (threshold,),
    )
    try:
        for row in cur:
            yield StoredPair(*row)
    finally:
        cur.close()


class FastDiffDB:
    """Read (and trim) a database written by the workflow.

    Parameters
    ----------
    db_path
        The SQLite file (``db_path`` of the configuration).
    """

    def __init__(self, db_path: str | os.PathLike[str]):
        if not os.path.isfile(db_path):
            raise DatabaseError(f"no database at {os.fspath(db_path)!r}: run the workflow first")
        self.db_path = os.fspath(db_path)
        self.con = sqlite3.connect(self.db_path)
        tables = {r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = {"directory", "hash_table", "dif_table"} - tables
        if missing:
            self.con.close()
            raise DatabaseError(f"{self.db_path!r} lacks the table(s) {sorted(missing)}")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> FastDiffDB:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _stream(self, sql: str, args: tuple = ()) -> Iterator[tuple]:
        cur = self.con.execute(sql, args)
        try:
            yield from cur
        finally:
            cur.close()

    # --- directory table -------------------------------------------------------------------

    def get_directory_errors(self) -> Iterator[tuple[str, str]]:
        """``(path, error)`` of every file that could not be read or decoded."""
        return self._stream(
            "SELECT path, error FROM directory WHERE success = ? ORDER BY key", (int(FileStatus.ERROR),)
        )

    def get_directory_disallowed(self) -> Iterator[str]:
        """Paths of files that were indexed but not decoded (extension or ignore rules)."""
        return (r[0] for r in self._stream("SELECT path FROM directory WHERE allowed = 0 ORDER BY key"))

    def set_deleted(self, key: int, deleted: bool = True) -> None:
        """Mark a file as deleted (the file itself is not touched)."""
        self.con.execute("UPDATE directory SET deleted = ? WHERE key = ?", (int(deleted), key))
        self.con.commit()

    # --- hash table --------------------------------------------------------------------------

    def get_hash_cluster_count(self) -> int:
        """Number of hashes carried more than once (each file carries one per rotation)."""
        return self.con.execute("SELECT COUNT(*) FROM hash_table WHERE count > 1").fetchone()[0]

    def get_ith_hash_cluster(self, i: int, include_deleted: bool = True) -> tuple[str, list[str]]:
        """The ``i``-th hash carried more than once and the paths carrying it (largest first).

        Raises IndexError past the last cluster.
        """
        row = self.con.execute(
            "SELECT key, hash FROM hash_table WHERE count > 1 ORDER BY key LIMIT 1 OFFSET ?", (i,)
        ).fetchone()
        if row is None:
            raise IndexError(f"hash cluster {i} does not exist ({self.get_hash_cluster_count()} clusters)")
        return row[1], self._hash_members(row[0], include_deleted)

    def _hash_members(self, hash_key: int, include_deleted: bool) -> list[str]:
        deleted = "" if include_deleted else " AND deleted = 0"
        sql = (
            f"SELECT path FROM directory WHERE ? IN (hash_0, hash_90, hash_180, hash_270){deleted} "
            f"ORDER BY {_CLUSTER_ORDER}"
        )
        return [r[0] for r in self.con.execute(sql, (hash_key,))]

    def get_all_hash_clusters(self, include_deleted: bool = True) -> Iterator[tuple[str, list[str]]]:
        """Every hash carried more than once, with the paths carrying it."""
        for key, h in self._stream("SELECT key, hash FROM hash_table WHERE count > 1 ORDER BY key"):
            yield h, self._hash_members(key, include_deleted)

    # --- dif table ---------------------------------------------------------------------------

    def get_pair_count_diff(self) -> int:
        """Number of rows of ``dif_table``."""
        return self.con.execute("SELECT COUNT(*) FROM dif_table").fetchone()[0]

    def drop_diff(self, threshold: float) -> int:
        """Delete the pairs with ``dif > threshold``; returns how many were deleted."""
        cur = self.con.execute("DELETE FROM dif_table WHERE dif > ?", (threshold,))
        self.con.commit()
        return cur.rowcount

    def get_dif_errors(self) -> Iterator[tuple[str, str | None, str]]:
        """``(path_a, path_b, error)`` of pairs whose comparison failed."""
        return self._stream(
            "SELECT a.path, b.path, d.error FROM dif_table d JOIN directory a ON a.key = d.key_a "
            "LEFT JOIN directory b ON b.key = d.key_b WHERE d.success = ? ORDER BY d.key",
            (int(PairStatus.ERROR),),
        )

    def get_duplicate_pairs(self, delta: float, include_hash_match: bool = False) -> Iterator[tuple[str, str, float]]:
        """``(path_a, path_b, dif)`` of every pair with ``dif <= delta``."""
        return ((p.path_a, p.path_b, p.dif) for p in stored_pairs(self.con, delta, include_hash_match))

    @staticmethod
    def _sides(part_a: bool) -> tuple[str, str]:
        return ("key_a", "key_b") if part_a else ("key_b", "key_a")

    def get_cluster_count(self, delta: float, part_a: bool = True, include_hash_match: bool = True) -> int:
        """Number of files (of A with ``part_a``, else of the other side) with a match."""
        head, _ = self._sides(part_a)
        return self.con.execute(
            f"SELECT COUNT(DISTINCT d.{head}) FROM dif_table d WHERE {pair_filter(include_hash_match)}", (delta,)
        ).fetchone()[0]

    def _cluster(
        self, head_key: int, delta: float, part_a: bool, include_hash_match: bool, include_deleted: bool
    ) -> list[tuple[str, float]]:
        head, other = self._sides(part_a)
        deleted = "" if include_deleted else " AND m.deleted = 0"
        return [
            tuple(r)
            for r in self.con.execute(
                f"SELECT m.path, d.dif FROM dif_table d JOIN directory m ON m.key = d.{other} "
                f"WHERE d.{head} = ? AND {pair_filter(include_hash_match)}{deleted} "
                "ORDER BY m.file_size DESC, m.created ASC",
                (head_key, delta),
            )
        ]

    def _heads(self, delta: float, part_a: bool, include_hash_match: bool) -> str:
        head, _ = self._sides(part_a)
        return (
            f"SELECT DISTINCT d.{head}, h.path FROM dif_table d JOIN directory h ON h.key = d.{head} "
            f"WHERE {pair_filter(include_hash_match)} ORDER BY d.{head}"
        )

    def get_ith_diff_cluster(
        self,
        index: int,
        delta: float,
        part_a: bool = True,
        include_hash_match: bool = True,
        include_deleted: bool = True,
    ) -> tuple[str, list[tuple[str, float]]]:
        """The ``index``-th cluster: a file and its matches ``[(path, dif)]``, largest first.

        Raises IndexError past the last cluster.
        """
        row = self.con.execute(
            self._heads(delta, part_a, include_hash_match) + " LIMIT 1 OFFSET ?", (delta, index)
        ).fetchone()
        if row is None:
            raise IndexError(
                f"diff cluster {index} does not exist "
                f"({self.get_cluster_count(delta, part_a, include_hash_match)} clusters)"
            )
        return row[1], self._cluster(row[0], delta, part_a, include_hash_match, include_deleted)

    def get_all_cluster(
        self, delta: float, group_a: bool = True, include_hash_match: bool = True
    ) -> Iterator[tuple[str, list[tuple[str, float]]]]:
        """Every cluster: ``(path, [(matching path, dif), ...])`` grouped by the A side
        (``group_a``) or by the other side."""
        for key, path in self._stream(self._heads(delta, group_a, include_hash_match), (delta,)):
            yield path, self._cluster(key, delta, group_a, include_hash_match, True)

    def get_max_cluster_size(self) -> int:
        """Largest number of matches of one file, on either side."""
        return max(
            self.con.execute(
                f"SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM dif_table GROUP BY {col})"
            ).fetchone()[0]
            for col in ("key_a", "key_b")
        )


SQLiteDB = FastDiffDB  # fast-diff-py's name
