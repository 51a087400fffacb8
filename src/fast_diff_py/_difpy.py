"""difPy 4.2.1's three output files, computed from the product database.

Values are in difPy's unit: ``mse = dif / 3`` (mean over pixels and channels). Matches are
grouped without ever keeping and removing the same file: within each connected group of
matches the highest-resolution file is kept and its direct matches are its lower-quality
copies; the rest of the group is grouped again the same way.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ._formats import DIF_PER_MSE, FileStatus
from ._io import atomic_path
from ._queries import stored_pairs

__all__ = ["DIF_PER_MSE", "difpy_parameters", "difpy_report", "write_difpy_files"]


UNSUPPORTED = "Unsupported file type"  # difPy's log text for a file it does not read


def _display(path: str, dir_index: int, roots: dict[int, tuple[str, str]]) -> str:
    """The path as the user named its folder (relative stays relative, as in difPy)."""
    absolute, given = roots[dir_index]
    rel = os.path.relpath(path, absolute)
    return os.path.normpath(given if rel == "." else os.path.join(given, rel))


def _groups(
    members: Iterable[int], adj: dict[int, dict[int, float]], rank: dict[int, tuple]
) -> list[tuple[int, list[int]]]:
    remaining = set(members)
    out = []
    while remaining:
        best = max(remaining, key=lambda k: rank[k])
        direct = [m for m in adj[best] if m in remaining]
        remaining.discard(best)
        if direct:
            out.append((best, direct))
            remaining.difference_update(direct)
    return out


def difpy_parameters(
    *,
    recursive: bool,
    in_folder: bool,
    limit_extensions: bool,
    px_size: int,
    similarity: float,
    rotate: bool,
    same_dim: bool,
    processes: int,
    chunksize: int | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``build`` and ``search`` parameters difPy's stats file reports, in its structure."""
    build = {
        "recursive": recursive,
        "in_folder": in_folder,
        "limit_extensions": limit_extensions,
        "px_size": px_size,
        "processes": processes,
    }
    search = {
        "similarity_mse": similarity,
        "rotate": rotate,
        "same_dim": same_dim,
        "processes": processes,
        "chunksize": chunksize,
    }
    return build, search


def difpy_report(
    db_path: str | os.PathLike[str],
    *,
    similarity: float,
    in_folder: bool = False,
    given_roots: Sequence[str] | None = None,
    limit_extensions: bool = True,
    build_parameters: dict[str, Any] | None = None,
    search_parameters: dict[str, Any] | None = None,
    durations: dict[str, dict[str, Any]] | None = None,
    plan: list[tuple[int, int]] | None = None,
) -> tuple[dict, list[str], dict]:
    """``(results, lower_quality, stats)`` with difPy 4.2.1's structure.

    ``similarity`` is difPy's mse threshold (inclusive). ``given_roots`` are the folders as
    the user typed them, in ``dir_index`` order (default: as stored). ``plan``, when given,
    is extended by ``(lower key, kept key)`` for each lower-quality file, in the order of
    ``lower_quality``.
    """
    con = sqlite3.connect(db_path)
    try:
        stored = dict(con.execute("SELECT dir_index, path FROM dir_index_lookup"))
        given = list(given_roots) if given_roots is not None else [stored[i] for i in sorted(stored)]
        roots = {i: (stored[i], given[i]) for i in stored}
        files = {
            row[0]: row[1:]
            for row in con.execute(
                "SELECT key, path, dir_index, px, py, success, allowed, error, file_size FROM directory"
            )
        }
        pairs = [(p.key_a, p.key_b, p.dif) for p in stored_pairs(con, similarity * DIF_PER_MSE)]
    finally:
        con.close()

    def show(key: int) -> str:
        return _display(files[key][0], files[key][1], roots)

    adj: dict[int, dict[int, float]] = defaultdict(dict)
    for a, b, dif in pairs:
        if in_folder and files[a][1] != files[b][1]:
            continue
        mse = round(dif / DIF_PER_MSE, 4)
        adj[a][b] = adj[b][a] = mse
    # connected components
    parent = {k: k for k in adj}

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a in adj:
        for b in adj[a]:
            parent[find(a)] = find(b)
    components: dict[int, list[int]] = defaultdict(list)
    for k in adj:
        components[find(k)].append(k)
    # difPy keeps the largest width + height; of equal resolutions the larger file (the
    # better-quality encoding), then the larger path string (difPy's own tie-break)
    rank = {k: (files[k][2] + files[k][3], files[k][7], show(k)) for k in adj}

    flat: dict[str, list[list]] = {}
    grouped: dict[str, dict[str, list[list]]] = defaultdict(dict)
    lower: list[str] = []
    duplicates = similar = 0
    for members in sorted(components.values(), key=lambda m: min(m)):
        for kept, matches in _groups(members, adj, rank):
            entry = [[show(m), adj[kept][m]] for m in sorted(matches, key=lambda m: (adj[kept][m], show(m)))]
            lower.extend(show(m) for m in matches)
            if plan is not None:
                plan.extend((m, kept) for m in matches)
            duplicates += sum(1 for m in matches if adj[kept][m] == 0)
            similar += sum(1 for m in matches if adj[kept][m] != 0)
            if in_folder:
                grouped[roots[files[kept][1]][1]][show(kept)] = entry
            else:
                flat[show(kept)] = entry
    results = dict(grouped) if in_folder else flat

    logs = {}
    for key in sorted(files):
        path, d, _, _, ok, allowed, err, _ = files[key]
        if ok == FileStatus.ERROR:
            logs[_display(path, d, roots)] = err
        elif not allowed and limit_extensions:
            logs[_display(path, d, roots)] = UNSUPPORTED
    durations = durations or {}
    stats = {
        "directory": given,
        "total_files": len(files),
        "invalid_files": {"count": len(logs), "logs": logs},
        "process": {
            "build": {
                "duration": durations.get("build", {"start": None, "end": None, "seconds_elapsed": None}),
                "parameters": build_parameters or {},
            },
            "search": {
                "duration": durations.get("search", {"start": None, "end": None, "seconds_elapsed": None}),
                "parameters": search_parameters or {},
                "files_searched": sum(1 for f in files.values() if f[4] == FileStatus.SUCCESS),
                "matches_found": {"duplicates": duplicates, "similar": similar},
            },
        },
    }
    return results, lower, stats


def write_difpy_files(
    results: dict,
    lower: list[str],
    stats: dict,
    results_path: str | os.PathLike,
    lower_path: str | os.PathLike,
    stats_path: str | os.PathLike,
) -> None:
    """Write the three files (each whole or not at all)."""
    for path, text in (
        (results_path, json.dumps(results, ensure_ascii=False)),
        (lower_path, repr(list(lower))),
        (stats_path, json.dumps(stats, ensure_ascii=False)),
    ):
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
