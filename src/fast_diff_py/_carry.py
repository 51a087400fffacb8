"""Pairs compared once: what a run found among its files, taken again by the next run.

Once the database is built, the run keeps (``keep_pairs``, in ``results_dir/kept_pairs/``) the
version of every file it decoded (path, device, inode, size, modification and inode change
time as indexed, and its partition) and every pair it stored, under the settings that shaped
them and its threshold (``pairs_fingerprint``). The next run's plan (``carried_pairs``) calls
a decoded file of the same version unchanged: the pairs of two unchanged files are the kept
ones with ``dif`` within the new threshold, exactly, since the kept run judged every pair of
its files; only the pairs with an added or changed file are planned for comparison.

The kept pairs are taken only under the same settings and a threshold no higher than the
kept one (a higher threshold asks for pairs the kept run did not store: everything is
compared then); never with a user's difference or hash function (their code can change
while no setting does), nor with ``keep_non_matching_aspects`` (its rows depend on the
plan's pruning).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._formats import PAIR_SCHEMA, PairStatus
from ._io import (
    arrow_table,
    as_schema,
    atomic_path,
    filter_rows,
    match_rows,
    read_in_index_order,
    read_parquet,
)
from ._reuse import _VERSION, fingerprint

__all__ = ["VERSION_COLUMNS", "carried_pairs", "keep_pairs", "pairs_fingerprint"]

logger = logging.getLogger(__name__)

# the index columns that name one version of a file (as _reuse has them), and its partition
VERSION_COLUMNS = [*_VERSION, "part_b"]
_FILES, _PAIRS, _META = "files.parquet", "pairs.parquet", "kept.json"


def pairs_fingerprint(config: dict[str, Any], has_part_b: bool) -> str | None:
    """A digest of the settings that shape the stored pairs of two files (their thumbnails,
    hashes and comparison, not the threshold); None where kept pairs are never taken."""
    first, second = config["first_loop"], config["second_loop"]
    if config["cpu_diff"] or config["gpu_diff"] or config["hash_fn"] or second["keep_non_matching_aspects"]:
        return None
    return fingerprint(
        size=config["compression_target"],
        method=config["thumbnail_method"],
        crop_tolerance=config["crop_tolerance"],
        rotate=config["rotate"],
        mirror=config["mirror"],
        max_image_pixels=config["max_image_pixels"],
        max_file_bytes=config["max_file_bytes"],
        compute_hash=first["compute_hash"],
        shift_amount=first["shift_amount"],
        skip_matching_hash=second["skip_matching_hash"],
        match_aspect_by=second["match_aspect_by"],
        has_part_b=has_part_b,
    )


def _sha1(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha1").hexdigest()


def keep_pairs(
    out_dir: str | os.PathLike[str],
    index_paths: list[str],
    meta_paths: list[str],
    pair_paths: list[str],
    *,
    pairs_fingerprint: str | None,
    threshold: float,
) -> int:
    """Keep the decoded files of a run (its index and thumbnail shards) and its stored pairs
    (``pair_paths``: the compare jobs' and the carried pairs) in ``out_dir``, replacing what
    was kept there, for the next run's ``carried_pairs``. Nothing is kept without a
    fingerprint (what was kept before stays: it still describes its files). Returns the
    number of pairs kept."""
    if pairs_fingerprint is None:
        return 0
    files = []
    for index_path, meta_path in zip(index_paths, meta_paths, strict=True):
        index = read_parquet(index_path, columns=["key", *VERSION_COLUMNS])
        success = read_in_index_order(meta_path, index_path, ["success"]).column("success")
        files.append(filter_rows(index, success.to_numpy() == 1))
    pairs = [as_schema(read_parquet(p), PAIR_SCHEMA) for p in pair_paths]
    table = pa.concat_tables(pairs) if pairs else PAIR_SCHEMA.empty_table()
    table = filter_rows(table, table.column("success").to_numpy() == int(PairStatus.COMPUTED))
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        pq.write_table(pa.concat_tables(files) if files else pa.table({}), tmp / _FILES)
        pq.write_table(table, tmp / _PAIRS)
        meta = {
            "fingerprint": pairs_fingerprint,
            "threshold": threshold,
            "files_sha1": _sha1(tmp / _FILES),
            "pairs_sha1": _sha1(tmp / _PAIRS),
        }
        (tmp / _META).write_text(json.dumps(meta, indent=1) + "\n")
    logger.info("kept %d pairs of %d files for the next run", len(table), sum(len(f) for f in files))
    return len(table)


def _read_kept(kept_dir: Path, pairs_fingerprint: str, threshold: float) -> tuple[pa.Table, pa.Table] | None:
    """The kept files and pairs when they may be taken under these settings, else None
    (with the reason in the log)."""
    try:
        meta = json.loads((kept_dir / _META).read_text())
    except FileNotFoundError:
        logger.info("no pairs kept from a last run: every pair is compared")
        return None
    except (OSError, ValueError) as exc:
        logger.warning("%r: the kept pairs are not read (%s): every pair is compared", os.fspath(kept_dir), exc)
        return None
    if meta.get("fingerprint") != pairs_fingerprint:
        logger.info("the kept pairs were made under other settings: every pair is compared")
        return None
    if not threshold <= meta.get("threshold", -1):
        logger.info(
            "the kept pairs hold dif <= %s only, below the threshold %s: every pair is compared",
            meta.get("threshold"),
            threshold,
        )
        return None
    try:
        damaged = [n for n, key in ((_FILES, "files_sha1"), (_PAIRS, "pairs_sha1")) if _sha1(kept_dir / n) != meta[key]]
        if damaged:
            raise ValueError(f"{', '.join(damaged)} changed since they were written")
        return read_parquet(kept_dir / _FILES), read_parquet(kept_dir / _PAIRS)
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        logger.warning("%r: the kept pairs are not read (%s): every pair is compared", os.fspath(kept_dir), exc)
        return None


def _newest_first(folders: list[str | os.PathLike[str]]) -> list[str | os.PathLike[str]]:
    """``folders`` where pairs were kept, the most recently kept first (each a run's whole
    set: the newest covers most of the files as they are now); the first one where none were
    kept, for its message, when none was."""

    def kept_at(folder: str | os.PathLike[str]) -> float:
        try:
            return os.stat(Path(folder) / _META).st_mtime
        except OSError:
            return -1.0

    times = [kept_at(f) for f in folders]
    newest = sorted(range(len(folders)), key=lambda i: -times[i])
    return [folders[i] for i in newest if times[i] >= 0] or folders[:1]


def carried_pairs(
    kept_dir: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    pairs_fingerprint: str | None,
    threshold: float,
    decoded: pa.Table,
    has_part_b: bool,
) -> tuple[np.ndarray, pa.Table]:
    """Which of the ``decoded`` files (their ``key`` and VERSION_COLUMNS) are unchanged since
    the run that kept ``kept_dir``, as a mask, and their pairs with ``dif <= threshold`` as
    that run stored them, in this run's keys (PAIR_SCHEMA; ``key_a`` the lower key, or the
    partition A side with ``has_part_b``). Nothing is unchanged where the kept pairs may
    not be taken. ``kept_dir`` may be several folders (the two ways of running over the same
    settings): the newest one kept that may be taken is."""
    n = len(decoded)
    nothing = np.zeros(n, bool), PAIR_SCHEMA.empty_table()
    if kept_dir is None or pairs_fingerprint is None or n == 0:
        return nothing
    folders = [kept_dir] if isinstance(kept_dir, (str, os.PathLike)) else list(kept_dir)
    kept = None
    for folder in _newest_first(folders):
        kept = _read_kept(Path(folder), pairs_fingerprint, threshold)
        if kept is not None:
            break
    if kept is None:
        return nothing
    files, pairs = kept
    keys = decoded.column("key").to_numpy()
    # each decoded file's key in the kept run, where a row there has its version (one row at
    # most: a file named twice is decoded under one of its names, the other an alias)
    at = match_rows(decoded.select(VERSION_COLUMNS), files.select(VERSION_COLUMNS), VERSION_COLUMNS)
    old_key = np.full(n, -1, np.int64)
    old_key[at >= 0] = files.column("key").to_numpy()[at[at >= 0]]
    unchanged = old_key >= 0
    kept_a = pairs.column("key_a").to_numpy()
    kept_b = pairs.column("key_b").to_numpy()
    top = max(int(old_key.max(initial=0)), int(kept_a.max(initial=0)), int(kept_b.max(initial=0)))
    now = np.full(top + 1, -1, np.int64)  # old key -> this run's key, -1 for files not unchanged
    now[old_key[unchanged]] = keys[unchanged]
    a, b, dif = now[kept_a], now[kept_b], pairs.column("dif").to_numpy()
    take = (a >= 0) & (b >= 0) & (dif <= threshold)
    a, b, dif = a[take], b[take], dif[take]
    if not has_part_b:  # the kept run's order by key may differ from this run's
        a, b = np.minimum(a, b), np.maximum(a, b)
    columns = {"key_a": a, "key_b": b, "dif": dif, "success": np.full(len(a), int(PairStatus.COMPUTED))}
    carried = arrow_table(columns, PAIR_SCHEMA)
    logger.info(
        "%d of %d decoded files unchanged since the kept run: %d of their pairs taken again, not compared",
        int(unchanged.sum()),
        n,
        len(carried),
    )
    return unchanged, carried
