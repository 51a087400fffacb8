"""What a run found, in a few lines and as ``summary.json``: files found, decoded, broken and
skipped, pairs stored, groups of duplicates, time per stage, and where everything is.

One definition for every entry point: the workflow writes the summary in the job that builds
the database (rule ``merge_database``, after the database and the gallery) and prints it at
the end of the run; ``difpy``, ``fastdiffpy`` and the API print the same lines.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from ._errors import OutputError
from ._formats import SUMMARY_MARK, FileStatus, ours, pair_filter
from ._io import atomic_path

__all__ = [
    "PRINT_ENV",
    "Found",
    "LastRun",
    "current_summary",
    "format_summary",
    "print_summary",
    "read_summary",
    "stage_times",
    "summarize",
    "write_summary",
]
# the errors named one by one on the terminal (summary.json holds up to ERRORS_KEPT)
ERRORS_SHOWN = 5
ERRORS_KEPT = 1000
# benchmark files (rule name prefixes) by stage, in the order the stages run
STAGES = {
    "index": ("index_files",),
    "thumbnails": ("make_thumbnails",),
    "plan": ("plan_blocks",),
    "compare": ("compare_blocks", "match_hashes"),
    # the job that writes the summary times these itself (_report.finish_run): its benchmark
    # file is written once it ends
    "merge": ("merge_database",),
    "report": (),
}
logger = logging.getLogger(__name__)
ALL_ERRORS_SQL = "SELECT path, error FROM directory WHERE success = 0 ORDER BY key"


def stage_times(benchmarks: str | os.PathLike[str], since: float | None = None) -> dict[str, dict[str, float]]:
    """Per stage, from Snakemake's benchmark files under ``benchmarks``: its jobs, their
    seconds summed, and the wall span from the first job's start to the last one's end (a
    job's end is its file's time, its start that less its seconds). With ``since`` (a time
    in seconds since the epoch), only the jobs that ended after it: a rerun keeps the files
    of the jobs it did not need to run again, and their time is not this run's."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for tsv in Path(benchmarks).rglob("*.tsv"):
        stage = next((s for s, rules in STAGES.items() if tsv.stem.startswith(rules)), None)
        if stage is None:
            continue
        try:
            with open(tsv, newline="") as fh:
                seconds = float(next(csv.DictReader(fh, delimiter="\t"))["s"])
            end = tsv.stat().st_mtime
        except (OSError, StopIteration, KeyError, ValueError):
            continue  # a benchmark being written or from another version: no time for it
        if since is not None and end < since:
            continue
        spans.setdefault(stage, []).append((end - seconds, end))
    return {
        stage: {
            "jobs": len(spans[stage]),
            "job_seconds": round(sum(e - s for s, e in spans[stage]), 2),
            "wall_seconds": round(max(e for _, e in spans[stage]) - min(s for s, _ in spans[stage]), 2),
        }
        for stage in STAGES
        if stage in spans
    }


def _groups(pairs: Iterable[tuple[int, int]]) -> tuple[int, list[list[int]]]:
    """How many pairs there are, and the connected groups of files they join, largest first
    (the pairs are streamed: memory grows with the files in groups, not with the pairs)."""
    parent: dict[int, int] = {}
    n = 0

    def root(k: int) -> int:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in pairs:
        n += 1
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for k in parent:
        members.setdefault(root(k), []).append(k)
    return n, sorted(members.values(), key=lambda g: (-len(g), min(g)))


def _files(con: sqlite3.Connection, db: str, table: str) -> None:
    """Each file of the database ``db`` (a schema name) into ``table``: its key, its name
    (path, its bytes where they are not UTF-8, partition) and its version (device, inode,
    size, modification and inode change times), indexed by name."""
    con.execute(
        f"CREATE TABLE {table} (key INTEGER PRIMARY KEY, path TEXT, raw BLOB, part_b INTEGER, "
        "dev INTEGER, inode INTEGER, size INTEGER, mtime_ns INTEGER, created REAL)"
    )
    con.execute(
        f"INSERT INTO {table} SELECT d.key, d.path, IFNULL(s.path_bytes, x''), d.part_b, "
        f"s.dev, s.inode, d.file_size, s.mtime_ns, d.created "
        f"FROM {db}.directory d LEFT JOIN {db}.file_state s ON s.key = d.key"
    )
    con.execute(f"CREATE INDEX {table}_name ON {table} (path, raw, part_b)")


def _pairs(con: sqlite3.Connection, db: str, files: str, table: str, threshold: float) -> None:
    """Each pair of the database ``db`` within ``threshold`` into ``table``, by the names
    of its files (``files``: the table ``_files`` wrote of it), the lesser name first."""
    lesser = "(a.path, a.raw, a.part_b) <= (b.path, b.raw, b.part_b)"
    columns = ", ".join(
        f"CASE WHEN {lesser} THEN a.{c} ELSE b.{c} END AS {c}1, CASE WHEN {lesser} THEN b.{c} ELSE a.{c} END AS {c}2"
        for c in ("path", "raw", "part_b")
    )
    con.execute(
        f"CREATE TABLE {table} AS SELECT DISTINCT {columns} FROM {db}.dif_table d "
        f"JOIN {files} a ON a.key = d.key_a JOIN {files} b ON b.key = d.key_b WHERE {pair_filter()}",
        (threshold,),
    )


# what changed between the files and pairs of the last run (files, pairs) and of this one
# (now_files, now_pairs): each name counted once (a file list may name a file twice)
_CHANGES_SQL = {
    "last": "SELECT COUNT(*) FROM (SELECT DISTINCT path, raw, part_b FROM files)",
    "now": "SELECT COUNT(*) FROM (SELECT DISTINCT path, raw, part_b FROM now_files)",
    "same": "SELECT COUNT(*), IFNULL(SUM(changed), 0) FROM (SELECT DISTINCT n.path, n.raw, n.part_b, "
    "(l.dev, l.inode, l.size, l.mtime_ns, l.created) IS NOT (n.dev, n.inode, n.size, n.mtime_ns, n.created) "
    "AS changed FROM now_files n JOIN files l ON l.path = n.path AND l.raw = n.raw AND l.part_b = n.part_b)",
    "pairs_new": "SELECT COUNT(*) FROM (SELECT * FROM now_pairs EXCEPT SELECT * FROM pairs)",
    "pairs_gone": "SELECT COUNT(*) FROM (SELECT * FROM pairs EXCEPT SELECT * FROM now_pairs)",
}


class Found(NamedTuple):
    """The stored pairs within the threshold (rows of ``dif_table``) and the groups of files
    they join (``_groups``), where the caller has them: ``summarize`` then reads no pair."""

    pairs: int
    groups: list[list[int]]


class LastRun:
    """What changed since the last run: the files and the pairs within a threshold of the
    database a run replaces, read as it begins (``read``) and compared with those of the
    database it writes (``compare``, then ``changes``). SQLite holds them in a temporary
    database of its own and compares them there, in a thread of its own (SQLite's work, run
    while the run's own goes on), so that a run of millions of files makes no Python object
    per file for it, and its memory stays SQLite's page cache."""

    def __init__(self, con: sqlite3.Connection, threshold: float, db_path: str | os.PathLike[str]) -> None:
        self._con, self.threshold, self._db = con, threshold, os.fspath(db_path)
        self._pool = ThreadPoolExecutor(1)
        self._read = self._pool.submit(self._take)
        self._compared: Future[dict[str, int] | None] | None = None

    @classmethod
    def read(cls, db_path: str | os.PathLike[str], threshold: float) -> LastRun | None:
        """The last run's, from the fast-diff database at ``db_path`` (opened here: a
        database that replaces it from now on is not read), read in the background; None
        where there is none of this version (a first run, another program's file)."""
        from ._db import database_problem

        if database_problem(db_path) is not None:
            return None
        # a temporary database on disk (SQLite's own file, gone when closed)
        con = sqlite3.connect("", uri=True, isolation_level=None, check_same_thread=False)
        try:
            con.execute("ATTACH DATABASE ? AS last", (_read_only(db_path),))
            con.execute("SELECT COUNT(*) FROM last.sqlite_master").fetchone()
        except sqlite3.Error as exc:
            con.close()
            logger.warning("%s: the last run's files not read (%s): no changes shown", os.fspath(db_path), exc)
            return None
        return cls(con, threshold, db_path)

    def _take(self) -> bool:
        try:
            _files(self._con, "last", "files")
            _pairs(self._con, "last", "files", "pairs", self.threshold)
            self._con.execute("DETACH DATABASE last")
        except sqlite3.Error as exc:
            logger.warning("%s: the last run's files not read (%s): no changes shown", self._db, exc)
            return False
        return True

    def compare(self, db_path: str | os.PathLike[str]) -> None:
        """Begin comparing the last run with the database at ``db_path`` (``changes``)."""
        self._compared = self._pool.submit(self._compare, os.fspath(db_path))

    def _compare(self, db_path: str) -> dict[str, int] | None:
        if not self._read.result():
            return None
        con = self._con
        try:
            con.execute("ATTACH DATABASE ? AS now", (_read_only(db_path),))
            try:
                _files(con, "now", "now_files")
                _pairs(con, "now", "now_files", "now_pairs", self.threshold)
                counts = {name: con.execute(sql).fetchone() for name, sql in _CHANGES_SQL.items()}
            finally:
                con.execute("DETACH DATABASE now")
        except sqlite3.Error as exc:
            logger.warning("%s: not compared with the last run (%s): no changes shown", db_path, exc)
            return None
        same, changed = counts["same"]
        return {
            "added": counts["now"][0] - same,
            "changed": changed,
            "removed": counts["last"][0] - same,
            "pairs_new": counts["pairs_new"][0],
            "pairs_gone": counts["pairs_gone"][0],
        }

    def changes(self, db_path: str | os.PathLike[str]) -> dict[str, int] | None:
        """What changed from the last run to the database at ``db_path`` (``compare``d
        already, or now): files added, removed and changed (the same name, another
        version: replaced, written again or touched), and pairs new and gone (a renamed
        file's pairs are new: its name is); None where it could not be read."""
        if self._compared is None:
            self.compare(db_path)
        assert self._compared is not None
        return self._compared.result()

    def close(self) -> None:
        """End the thread and remove the temporary database."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._con.close()

    def __enter__(self) -> LastRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_only(db_path: str | os.PathLike[str]) -> str:
    """A SQLite URI that opens ``db_path`` read-only."""
    return "file:" + quote(os.path.abspath(db_path)) + "?mode=ro"


def summarize(
    db_path: str | os.PathLike[str],
    threshold: float,
    benchmarks: str | os.PathLike[str] | None = None,
    gallery: str | os.PathLike[str] | None = None,
    since: float | None = None,
    last_run: LastRun | None = None,
    found: Found | None = None,
) -> dict[str, Any]:
    """What the database at ``db_path`` holds, as ``summary.json`` has it. Groups join the
    stored pairs with ``dif <= threshold``; their best file is the one difPy's rules keep (the
    highest resolution, then the largest file). The stages' times are those of the jobs
    that ended after ``since`` (``stage_times``). With ``last_run`` (that of the database
    this one replaced, at the same threshold), what changed since (``LastRun.changes``). With
    ``found``, the pairs and groups are those (the gallery's, of the same database)."""
    con = sqlite3.connect(f"file:{os.fspath(db_path)}?mode=ro", uri=True)
    try:
        outcomes = Counter(dict(con.execute("SELECT success, COUNT(*) FROM directory GROUP BY success")))
        not_allowed = con.execute(
            "SELECT COUNT(*) FROM directory WHERE success = ? AND allowed = 0", (int(FileStatus.NOT_COMPUTED),)
        ).fetchone()[0]
        skipped_files = con.execute(
            f"SELECT path, allowed, error FROM directory WHERE success = ? ORDER BY key LIMIT {ERRORS_KEPT}",
            (int(FileStatus.NOT_COMPUTED),),
        ).fetchall()
        errors = con.execute(
            f"SELECT path, error FROM directory WHERE success = ? ORDER BY key LIMIT {ERRORS_KEPT}",
            (int(FileStatus.ERROR),),
        ).fetchall()
        pairs, groups = found or _groups(
            con.execute(f"SELECT key_a, key_b FROM dif_table d WHERE {pair_filter()}", (threshold,))
        )
        largest = None
        if groups:
            rows = con.execute(
                f"SELECT key, path, px, py, file_size FROM directory WHERE key IN ({','.join('?' * len(groups[0]))})",
                groups[0],
            ).fetchall()
            best = max(rows, key=lambda r: (r[2] + r[3], r[4], r[1]))
            largest = {"files": len(groups[0]), "best": best[1], "paths": sorted(r[1] for r in rows)}
    finally:
        con.close()
    since_last = last_run.changes(db_path) if last_run is not None else None
    skipped = outcomes[int(FileStatus.NOT_COMPUTED)]
    return {
        "made_by": SUMMARY_MARK,
        "database": os.path.abspath(db_path),
        "files": sum(outcomes.values()),
        "decoded": outcomes[int(FileStatus.SUCCESS)],
        "errors": outcomes[int(FileStatus.ERROR)],
        "skipped": skipped,
        "skipped_not_images": not_allowed,
        "skipped_other_names": skipped - not_allowed,
        "error_files": [{"path": p, "error": e} for p, e in errors],
        "skipped_files": [
            {"path": p, "reason": "not an image extension" if not allowed else (e or "not compared")}
            for p, allowed, e in skipped_files
        ],
        "all_errors_sql": ALL_ERRORS_SQL,
        "threshold": threshold,
        "pairs": pairs,
        "groups": len(groups),
        "files_in_groups": sum(len(g) for g in groups),
        "largest_group": largest,
        "since_last_run": since_last,
        "stages": stage_times(benchmarks, since) if benchmarks is not None else {},
        "gallery": os.path.abspath(gallery) if gallery is not None else None,
    }


def write_summary(summary: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``summary`` to ``path``, replacing only a summary fast-diff wrote.

    Raises
    ------
    OutputError
        Where ``path`` is a file or folder of the user's.
    """
    if not ours(path):
        raise OutputError(
            f"{os.fspath(path)!r} exists and is not a fast-diff summary: left as it is; "
            "move it, or set db_path to another folder"
        )
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")


def read_summary(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The summary at ``path``, or None where there is none (or it cannot be read)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def current_summary(path: str | os.PathLike[str], receipt: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The summary at ``path`` when it describes the database the receipt names (written
    after that database: the receipt holds its time), else None."""
    try:
        written = json.loads(Path(receipt).read_text())["mtime_ns"]
        if os.stat(path).st_mtime_ns < written:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return read_summary(path)


# set to 0 by callers that show the summary themselves (difpy, fastdiffpy, the API)
PRINT_ENV = "FAST_DIFF_PRINT_SUMMARY"


def print_summary(path: str | os.PathLike[str], receipt: str | os.PathLike[str]) -> None:
    """Print the summary at ``path`` where it describes the current database (unless the
    environment's PRINT_ENV is 0)."""
    if os.environ.get(PRINT_ENV) == "0":
        return
    summary = current_summary(path, receipt)
    if summary is not None:
        print(format_summary(summary, path), flush=True)


def format_changes(c: dict[str, int]) -> str:
    """``changes`` in words: "3 files added, 1 changed, 0 removed; 2 pairs new, 0 gone"."""
    if not any(c.values()):
        return "no file added, changed or removed; no pair new or gone"
    files = "file" if c["added"] == 1 else "files"
    pairs = "pair" if c["pairs_new"] == 1 else "pairs"
    return (
        f"{c['added']} {files} added, {c['changed']} changed, {c['removed']} removed; "
        f"{c['pairs_new']} {pairs} new, {c['pairs_gone']} gone"
    )


def format_summary(
    summary: dict[str, Any], summary_path: str | os.PathLike[str] | None = None, *, database: bool = True
) -> str:
    """The summary as the few lines a run ends with (without the database's path where
    ``database`` is false: a run that removes it)."""
    s = summary
    skipped = []
    if s["skipped_not_images"]:
        skipped.append(f"{s['skipped_not_images']} not an image extension")
    if s["skipped_other_names"]:
        skipped.append(f"{s['skipped_other_names']} other names of files compared")
    lines = [
        f"fast-diff: {s['files']} files: {s['decoded']} decoded, {s['errors']} could not be read"
        + (f", {s['skipped']} skipped ({'; '.join(skipped)})" if s["skipped"] else "")
    ]
    for e in s["error_files"][:ERRORS_SHOWN]:
        lines.append(f"  error: {e['path']}: {e['error']}")
    if s["errors"] > ERRORS_SHOWN:
        where = f"sqlite3 {s['database']} '{s['all_errors_sql']}'" if database else "the results"
        lines.append(f"  ... {s['errors'] - ERRORS_SHOWN} more: {where}")
    for e in s["skipped_files"][:ERRORS_SHOWN]:
        lines.append(f"  skipped: {e['path']}: {e['reason']}")
    if s["skipped"] > ERRORS_SHOWN:
        lines.append(f"  ... {s['skipped'] - ERRORS_SHOWN} more skipped (success = -1 in the database)")
    found = f"{s['pairs']} pairs with dif <= {s['threshold']:g}"
    if s["groups"]:
        big = s["largest_group"]
        found += (
            f" in {s['groups']} groups of duplicates ({s['files_in_groups']} files); "
            f"the largest has {big['files']} files, best {big['best']}"
        )
    lines.append(f"  found: {found}")
    if s.get("since_last_run"):
        lines.append("  since the last run: " + format_changes(s["since_last_run"]))
    if s["stages"]:
        lines.append("  time: " + ", ".join(f"{stage} {t['wall_seconds']:.1f} s" for stage, t in s["stages"].items()))
    if database:
        lines.append(f"  database: {s['database']}")
    if s.get("gallery"):
        lines.append(f"  gallery: {s['gallery']}")
    if summary_path is not None:
        where = os.fspath(summary_path)
        lines.append(f"  summary: {where if '://' in where else os.path.abspath(where)}")
    return "\n".join(lines)
