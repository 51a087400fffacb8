"""Planning: order the decoded images into blocks and list the block pairs that can match.

Images of each partition are sorted by their total pixel sum and cut into blocks of
``block_size``. Each block then covers a narrow range of per-channel sums, and for two blocks
the smallest possible difference of those sums bounds the ``dif`` of every pair between them
from below (see :func:`fast_diff_py._kernel.range_bound` and ``channel_bound_mask``). Block pairs whose bound
exceeds the threshold cannot hold a match and get no job.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._errors import IntermediateError
from ._files import FileIdentity
from ._formats import (
    BLOCK_DIR,
    BLOCK_PAIRS_SCHEMA,
    BLOCKS_SCHEMA,
    CARRIED_PAIRS,
    CROP_STACK_SUFFIX,
    HASH_COLUMNS,
    KEPT_BLOCKS_DIR,
    PAIR_SCHEMA,
    FileStatus,
    block_file,
    crop_sum_columns,
)
from ._io import (
    arrow_array,
    arrow_table,
    as_schema,
    atomic_path,
    filter_rows,
    link_or_copy,
    match_rows,
    open_stack,
    read_in_index_order,
    read_parquet,
    remove_damaged,
    take_rows,
)
from ._kernel import channel_limit, channel_sums, range_bound, with_total

__all__ = [
    "make_plan",
    "plan_pairs",
    "assign_blocks",
    "read_block",
    "block_pair_ids",
    "block_partners",
    "load_thumbnails",
    "block_stack",
]

logger = logging.getLogger(__name__)

_BLOCK_COLUMNS = ["px", "py", "thumb_row", "sum_0", "sum_1", "sum_2", *HASH_COLUMNS]


def table_sums(table: pa.Table) -> np.ndarray:
    """The per-channel pixel sums of a thumbnail table (n x 3, int64)."""
    return np.stack([table.column(f"sum_{c}").to_numpy() for c in range(3)], axis=1).astype(np.int64)


def _decoded(meta_paths: list[str], index_paths: list[str], versions: bool = False) -> pa.Table:
    """Decoded images of all shards with their shard id and partition (and, with
    ``versions``, the index's other VERSION_COLUMNS)."""
    from ._carry import VERSION_COLUMNS

    parts = []
    for shard, (meta_path, index_path) in enumerate(zip(meta_paths, index_paths, strict=True)):
        meta = read_in_index_order(meta_path, index_path, ["success", *_BLOCK_COLUMNS])
        index = read_parquet(index_path, columns=["key", *(VERSION_COLUMNS if versions else ["part_b"])])
        for name in index.column_names:
            meta = meta.append_column(name, index.column(name))
        meta = filter_rows(meta, meta.column("success").to_numpy() == int(FileStatus.SUCCESS))
        meta = meta.drop_columns(["success"])
        parts.append(meta.append_column("shard", arrow_array(np.full(len(meta), shard), pa.int32())))
    return pa.concat_tables(parts)


def make_plan(
    meta_paths: list[str],
    index_paths: list[str],
    out_dir: str | os.PathLike[str],
    *,
    size: int,
    block_size: int,
    threshold: float,
    has_part_b: bool,
    prune: bool = True,
    digest_paths: list[str] | None = None,
    crop_sums_paths: list[str] | None = None,
    thumb_paths: Sequence[str] | None = None,
    crop_paths: Sequence[str] | None = None,
    kept: tuple[str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None, str | None] | None = None,
    keep_blocks: bool = False,
) -> int:
    """Write ``out_dir/blocks.parquet`` (one row per decoded image with its block),
    ``out_dir/block_pairs.parquet`` (the block pairs to compare) and, block by block in
    ``out_dir/blocks`` (``block_file``), its rows and, for a block of a listed pair, from
    the shards' stacks ``thumb_paths`` (and crop stacks ``crop_paths``), its thumbnails (and
    crops) in the same order: a compare job then reads exactly the thumbnails it compares.
    Without ``thumb_paths`` the plan holds no thumbnails (for studies of the plan alone).
    Returns the pair count.

    Without partition B every unordered pair of A-blocks (a block with itself included) is
    listed; with B, every A-block x B-block pair. ``prune=False`` lists them all.

    With ``threshold == 0`` images are ordered by their canonical digest instead (equal for
    thumbnails equal up to a rotation; ``digest_paths``, one ``make_digests`` file per shard)
    and only blocks sharing a digest are paired, so the number of jobs grows linearly with
    the number of images.

    With crop thumbnails (``crop_sums_paths``, one per shard: crop_tolerance) a block's
    ranges of sums also cover its images' crops, so that the bound holds for every
    comparison the crops add; no digests then (a crop can match at 0 whatever the digests).

    With ``kept`` (``(folder, pairs_fingerprint)`` of the pairs a last run kept, or
    ``(folders, pairs_fingerprint)``: the newest that may be taken; ``fast_diff_py._carry``)
    the pairs of two files unchanged since then are taken from there into
    ``out_dir/carried_pairs.parquet`` (PAIR_SCHEMA) instead of being planned: the
    unchanged and the other files are cut into blocks apart, and only block pairs with a
    block of other files are listed, each in the job of a block of other files (``block_a``):
    as many compare jobs as such blocks. Not for the digest plan of threshold 0.

    With ``keep_blocks`` as well (and no crops) the plan keeps its block thumbnails beside
    ``out_dir`` (KEPT_BLOCKS_DIR, ``_keep_blocks``), and takes the last plan's blocks of
    unchanged files again (``_kept_blocks``): such a block keeps its files and its
    thumbnails (a hard link; its rows' ``block_row`` name theirs), the other unchanged files
    are cut into blocks as above. The pairs are the same: any grouping is, for the bounds
    are those of each block's own files.
    """
    table = _decoded(meta_paths, index_paths, versions=kept is not None)
    features = with_total(table_sums(table))  # 3 channel sums and their total
    part_b = table.column("part_b").to_numpy()
    keys = table.column("key").to_numpy()
    spread = _crop_spread(crop_sums_paths, index_paths, keys, features) if crop_sums_paths else None
    carried = PAIR_SCHEMA.empty_table()
    fixed: list[_Fixed] = []
    if prune and threshold == 0 and spread is None:
        canonical = _digests(digest_paths, index_paths, keys)
        block, block_part, _, _ = assign_blocks(canonical.astype(str), part_b, keys, features, block_size)
        pairs_a, pairs_b = _blocks_sharing(block, part_b, canonical, has_part_b)
        candidates = _all_pairs(block_part, has_part_b)
    else:
        unchanged = None
        if kept is not None:
            from ._carry import carried_pairs

            unchanged, carried = carried_pairs(*kept, threshold, table, has_part_b)
            if keep_blocks and thumb_paths is not None and not crop_paths and unchanged.any():
                fixed = _kept_blocks(_kept_dir(out_dir), kept[1], table, unchanged, block_size)
        limit = channel_limit(size, threshold) if prune else np.inf
        block, pairs_a, pairs_b, candidates = plan_pairs(
            features,
            part_b,
            keys,
            block_size=block_size,
            limit=limit,
            has_part_b=has_part_b,
            spread=spread,
            unchanged=unchanged if unchanged is not None and unchanged.any() else None,
            fixed=[f.members for f in fixed],
        )
    reuse = {int(block[f.members[0]]): f for f in fixed}
    # the block thumbnails kept for the next plan, and the sums of the shard stacks it checked
    made_as = kept[1] if kept is not None else None
    keeping = keep_blocks and thumb_paths is not None and not crop_paths and made_as is not None
    order = np.lexsort((keys, block))
    # each file's row in its block's thumbnails: its place in the block, or in a kept block's
    # thumbnails (the rows of its files, in key order as the block's)
    in_block = np.arange(len(order)) - np.searchsorted(block[order], block[order])
    block_row = np.empty(len(order), np.int64)
    block_row[order] = in_block
    for f in fixed:
        if f.rows is not None:
            block_row[f.members] = f.rows
    table = table.append_column("block", arrow_array(block, pa.int32()))
    table = table.append_column("block_row", arrow_array(block_row, pa.int32()))
    ordered = take_rows(table, order)
    blocks = as_schema(ordered.select(BLOCKS_SCHEMA.names), BLOCKS_SCHEMA)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        pq.write_table(blocks, tmp / "blocks.parquet", row_group_size=max(block_size, 1024))
        pq.write_table(
            arrow_table({"block_a": pairs_a, "block_b": pairs_b}, BLOCK_PAIRS_SCHEMA),
            tmp / "block_pairs.parquet",
        )
        pq.write_table(carried, tmp / CARRIED_PAIRS)
        (tmp / BLOCK_DIR).mkdir()
        compared = set(np.concatenate([pairs_a, pairs_b]).tolist()) if len(pairs_a) else set()
        summed = _summed_before(_kept_dir(out_dir), thumb_paths) if keeping and thumb_paths is not None else None
        _write_blocks(blocks, tmp / BLOCK_DIR, thumb_paths, crop_paths, compared, reuse, summed)
    if keeping and made_as is not None:
        _keep_blocks(_kept_dir(out_dir), made_as, ordered, Path(out_dir) / BLOCK_DIR, reuse, summed)
    logger.info(
        "%d images in %d blocks; %d of %d block pairs can hold a match",
        len(table),
        int(block.max(initial=-1)) + 1,
        len(pairs_a),
        candidates,
    )
    return len(pairs_a)


def _write_blocks(
    blocks: pa.Table,
    out: Path,
    thumb_paths: Sequence[str] | None,
    crop_paths: Sequence[str] | None,
    compared: set[int],
    reuse: dict[int, _Fixed] | None = None,
    summed: dict[str, _Summed] | None = None,
) -> None:
    """Each block's rows, and for each of ``compared`` (the blocks of the listed block
    pairs) its thumbnails and crops gathered from the shards' stacks, in files of its own:
    one block in memory at a time. A block no job compares (files unchanged since the kept
    run, paired with no block of other files) has no thumbnails to gather: they are only
    checked where they lie (``_check_unread``). A block of ``reuse`` (``_kept_blocks``) takes
    the last plan's thumbnails, a hard link, instead of gathering them from the shards' stacks
    (its rows' ``block_row`` name theirs; the compare job checks what it reads). ``summed``:
    the channel sums of shard stacks by path, taken for a stack of the same identity and
    updated with those summed here (``_check_unread``)."""
    ids = blocks.column("block").to_numpy()
    cuts = np.flatnonzero(np.diff(ids)) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(ids)]) if len(ids) else ():
        rows = blocks.slice(int(lo), int(hi - lo))
        b = int(ids[lo])
        pq.write_table(rows, out / block_file(b))
        if thumb_paths is not None and b in compared:
            kept = reuse.get(b) if reuse else None
            if kept is not None:
                link_or_copy(kept.stack, out / block_file(b, ".npy"))
            else:
                thumbs = _unchanged(load_thumbnails(rows, thumb_paths), rows, thumb_paths)
                np.save(out / block_file(b, ".npy"), thumbs)
        if crop_paths and b in compared:
            np.save(out / block_file(b, CROP_STACK_SUFFIX), load_thumbnails(rows, crop_paths))
    if thumb_paths is not None:
        _check_unread(filter_rows(blocks, ~np.isin(ids, list(compared))), thumb_paths, summed)


class _Fixed:
    """A block of the last plan kept (``_kept_blocks``): its files now (rows of the decoded
    table, in key order), its kept thumbnails, and their rows there (None: all, in order:
    of a block that lost none)."""

    __slots__ = ("members", "stack", "rows")

    def __init__(self, members: np.ndarray, stack: Path, rows: np.ndarray | None) -> None:
        self.members, self.stack, self.rows = members, stack, rows


# the files of KEPT_BLOCKS_DIR: the version of each kept thumbnail's file, by block and row,
# and the settings they were made under (pairs_fingerprint)
_MEMBERS, _MADE_AS = "members.parquet", "made_as.txt"


def _kept_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Where a plan written to ``out_dir`` keeps its block thumbnails."""
    return Path(out_dir).parent / KEPT_BLOCKS_DIR


def _kept_blocks(
    kept: Path, made_as: str | None, table: pa.Table, unchanged: np.ndarray, block_size: int
) -> list[_Fixed]:
    """The blocks of the last plan (kept in ``kept`` under settings ``made_as``) to keep:
    those whose files still are ``unchanged`` files of ``table`` (its VERSION_COLUMNS), at
    least half of each block's kept thumbnails and at most ``block_size``, and (where there
    are other files, which a small block then joins) at least a quarter of ``block_size``.
    None where nothing was kept under the same settings, or it cannot be read (an empty list)."""
    from ._carry import VERSION_COLUMNS

    try:
        if made_as is None or (kept / _MADE_AS).read_text() != made_as:
            return []
        members = read_parquet(kept / _MEMBERS)
        if not members.select(VERSION_COLUMNS).schema.equals(table.select(VERSION_COLUMNS).schema):
            return []
        old_block = members.column("block").to_numpy()
        old_row = members.column("row").to_numpy()
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return []
    idx = np.flatnonzero(unchanged)
    at = match_rows(take_rows(table.select(VERSION_COLUMNS), idx), members, VERSION_COLUMNS)
    # the unchanged files found there, by kept block and their row in it
    now, then = idx[at >= 0], at[at >= 0]
    found_block, found_row = old_block[then].astype(np.int64), old_row[then].astype(np.int64)
    order = np.lexsort((now, found_row, found_block))
    now, found_block, found_row = now[order], found_block[order], found_row[order]
    cuts = np.flatnonzero(np.diff(found_block)) + 1
    keys = table.column("key").to_numpy()
    least = max(1, block_size // 4) if not unchanged.all() else 1
    fixed = []
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(now)]) if len(now) else ():
        b = int(found_block[lo])
        stack = kept / block_file(b, ".npy")
        try:
            total = len(np.load(stack, mmap_mode="r"))
        except (OSError, ValueError, EOFError):
            continue
        rows = found_row[lo:hi].astype(np.intp)
        members = now[lo:hi].astype(np.intp)
        if not least <= len(rows) <= block_size or 2 * len(rows) < total or rows.max() >= total:
            continue
        if len(members) > 1 and not (np.diff(keys[members]) > 0).all():
            continue  # (keys keep the walk order of unchanged files: never so)
        whole = len(rows) == total and bool((rows == np.arange(total)).all())
        fixed.append(_Fixed(members, stack, None if whole else rows))
    return fixed


def _keep_blocks(
    kept: Path,
    made_as: str,
    ordered: pa.Table,
    written: Path,
    reuse: dict[int, _Fixed],
    summed: dict[str, _Summed] | None = None,
) -> None:
    """Keep, in ``kept`` (replaced whole), the thumbnails of the blocks of a plan (``ordered``:
    its decoded files by block and key, with their VERSION_COLUMNS and ``block_row``): hard
    links of those in ``written``, and of the last plan's that a kept block still holds where
    it has none there, with the version of the file of each row named, under ``made_as``; and
    the channel sums of the shard stacks in ``summed`` (``_keep_summed``)."""
    from ._carry import VERSION_COLUMNS

    ids = ordered.column("block").to_numpy()
    cuts = np.flatnonzero(np.diff(ids)) + 1
    parts, blocks, rows = [], [], []
    with atomic_path(kept) as tmp:
        tmp.mkdir(parents=True)
        at = ordered.column("block_row").to_numpy()
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(ids)]) if len(ids) else ():
            b = int(ids[lo])
            source = written / block_file(b, ".npy")
            if not source.exists():
                if b not in reuse:
                    continue
                source = reuse[b].stack
            link_or_copy(source, tmp / block_file(b, ".npy"))
            parts.append(np.arange(lo, hi))
            blocks.append(np.full(hi - lo, b, np.int32))
            rows.append(np.asarray(at[lo:hi], np.int32))
        take = np.concatenate(parts) if parts else np.zeros(0, np.intp)
        members = take_rows(ordered.select(VERSION_COLUMNS), take)
        none = np.zeros(0, np.int32)
        members = members.append_column("block", arrow_array(np.concatenate([none, *blocks]), pa.int32()))
        members = members.append_column("row", arrow_array(np.concatenate([none, *rows]), pa.int32()))
        pq.write_table(members, tmp / _MEMBERS)
        (tmp / _MADE_AS).write_text(made_as)
        if summed:
            _keep_summed(tmp, summed)


# rows of a shard stack summed at a time (_check_unread)
_CHECK_ROWS = 4096
# in KEPT_BLOCKS_DIR: the shard stacks summed (path and identity) and their sums, in order
_SUMMED, _SUMMED_SUMS = "summed.json", "summed.sums"  # (.npy format; no .npy name: not a block's)


class _Summed:
    """The channel sums of every thumbnail of a shard stack, and the identity of the stack's
    file they were taken from (``_identity``)."""

    __slots__ = ("identity", "sums")

    def __init__(self, identity: FileIdentity, sums: np.ndarray) -> None:
        self.identity, self.sums = identity, sums


def _identity(path: str | os.PathLike[str]) -> FileIdentity | None:
    """The identity of the file at ``path`` (a file written again, or written to in place, has
    another); None where it cannot be read."""
    try:
        return FileIdentity.of(os.stat(path))
    except OSError:
        return None


def _summed_before(kept: Path, thumb_paths: Sequence[str]) -> dict[str, _Summed]:
    """The sums the last plan kept (``_keep_summed``) of those of ``thumb_paths`` whose file
    has the same identity now; none where they cannot be read."""
    try:
        listed = json.loads((kept / _SUMMED).read_text())
        sums = np.load(kept / _SUMMED_SUMS)
        out, at = {}, 0
        wanted = set(thumb_paths)
        for path, identity, n in listed:
            if path in wanted and _identity(path) == tuple(identity):
                out[path] = _Summed(FileIdentity(*identity), sums[at : at + n])
            at += n
        if at != len(sums) or sums.ndim != 2 or sums.shape[1:] != (3,):
            return {}
        return out
    except (OSError, ValueError, TypeError, EOFError):
        return {}


def _keep_summed(folder: Path, summed: dict[str, _Summed]) -> None:
    """Write ``summed`` into ``folder`` for the next plan (``_summed_before``)."""
    listed = [(path, list(s.identity), len(s.sums)) for path, s in summed.items()]
    parts = [s.sums.astype(np.int64) for s in summed.values()]
    with open(folder / _SUMMED_SUMS, "wb") as fh:
        np.save(fh, np.concatenate(parts) if parts else np.zeros((0, 3), np.int64))
    (folder / _SUMMED).write_text(json.dumps(listed))


def _check_unread(rows: pa.Table, thumb_paths: Sequence[str], summed: dict[str, _Summed] | None = None) -> None:
    """The check of ``_unchanged`` for thumbnails no block file holds (``rows``: of blocks
    that no job compares): each shard stack holding some is summed where it lies, a slice at
    a time, rather than gathered, so that a stack damaged since its job is found in every
    plan, whether or not this one reads it. With ``summed`` (the sums of stacks summed
    before, by path: each taken only while its file keeps the identity it had then), a stack
    of the same identity is not read again, and those summed here are added to it: a stack
    is read once for each version of its file."""
    shards = rows.column("shard").to_numpy()
    at = rows.column("thumb_row").to_numpy()
    want = table_sums(rows)
    damaged, differ, taken, read = [], 0, 0, 0
    for s in sorted(set(shards.tolist())):  # (np.unique would load numpy.ma)
        sel = np.flatnonzero(shards == s)
        path = thumb_paths[s]
        known = summed.get(path) if summed is not None else None
        if known is not None:  # (``summed`` holds a stack's sums only while its identity holds)
            sums = known.sums
            taken += 1
        else:
            read += 1
            identity = _identity(path)
            stack = open_stack(path)  # unmapped again below
            sums = np.concatenate(
                [channel_sums(stack[lo : lo + _CHECK_ROWS]) for lo in range(0, len(stack), _CHECK_ROWS)]
                or [np.zeros((0, 3), np.int64)]
            )
            del stack
            if summed is not None:
                summed.pop(path, None)
                if identity is not None and identity == _identity(path):
                    summed[path] = _Summed(identity, sums)
        try:
            bad = int((sums[at[sel]] != want[sel]).any(axis=1).sum())
        except IndexError:  # fewer thumbnails than its rows name
            bad = len(sel)
        if bad:
            damaged.append(path)
            differ += bad
            if summed is not None:
                summed.pop(path, None)
    if taken or read:
        logger.info(
            "thumbnails no job compares checked in %d shard stacks: %d summed, %d by the sums of "
            "an earlier plan (their files unchanged since)",
            taken + read,
            read,
            taken,
        )
    if damaged:
        remove_damaged(damaged)
        raise IntermediateError(
            f"thumbnail stack(s) {', '.join(map(repr, damaged))} changed since they were written "
            f"({differ} thumbnails differ from their recorded sums); removed them: run the same "
            "command again to make them anew"
        )


def load_thumbnails(rows: pa.Table, stack_paths: Sequence[str]) -> np.ndarray:
    """The thumbnails of ``rows`` (their ``shard`` and ``thumb_row``), in their order,
    gathered from the shards' stacks ``stack_paths`` one shard at a time: memory is the rows'
    thumbnails plus what one mapped shard keeps resident."""
    shards = rows.column("shard").to_numpy()
    at = rows.column("thumb_row").to_numpy()
    out = None
    for s in sorted(set(shards.tolist())):  # (np.unique would load numpy.ma)
        stack = open_stack(stack_paths[s])  # unmapped again below
        if out is None:
            out = np.empty((len(shards), *stack.shape[1:]), np.uint8)
        sel = np.flatnonzero(shards == s)
        out[sel] = stack[at[sel]]
        del stack  # a mapped page counts as resident while mapped
    return out if out is not None else np.zeros((0, 1, 1, 3), np.uint8)


def _unchanged(thumbs: np.ndarray, rows: pa.Table, thumb_paths: Sequence[str]) -> np.ndarray:
    """``thumbs`` when they still have the channel sums their thumbnail jobs recorded; else
    the damaged shard stacks are removed (so that the next run makes them again) and
    IntermediateError names them."""
    bad = np.flatnonzero((channel_sums(thumbs) != table_sums(rows)).any(axis=1))
    if not len(bad):
        return thumbs
    damaged = [thumb_paths[s] for s in sorted(set(rows.column("shard").to_numpy()[bad].tolist()))]
    remove_damaged(damaged)
    raise IntermediateError(
        f"thumbnail stack(s) {', '.join(map(repr, damaged))} changed since they were written "
        f"({len(bad)} thumbnails differ from their recorded sums); removed them: run the same "
        "command again to make them anew"
    )


def _crop_spread(
    crop_sums_paths: list[str], index_paths: list[str], keys: np.ndarray, features: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per image (in the order of ``keys``), the least and the greatest ``with_total``
    features over the image and its crops."""
    from ._index import keyed_rows

    if len(crop_sums_paths) != len(index_paths):
        raise ValueError(
            f"no crop sums for {len(index_paths) - len(crop_sums_paths)} shards: "
            "crop_sums_paths must cover every shard, one per index shard in its order"
        )
    table = keyed_rows(crop_sums_paths, index_paths)
    by_key = {k: i for i, k in enumerate(table.column("key").to_pylist())}
    missing = [k for k in keys.tolist() if k not in by_key]
    if missing:
        raise ValueError(
            f"no crop sums for {len(missing)} decoded images (key {missing[0]} first): "
            "crop_sums_paths must cover every shard"
        )
    rows = np.asarray([by_key[k] for k in keys.tolist()], np.intp)
    lo, hi = features.copy(), features.copy()
    for names in crop_sum_columns():
        crop = with_total(np.stack([table.column(c).to_numpy() for c in names], axis=1)[rows])
        np.minimum(lo, crop, out=lo)
        np.maximum(hi, crop, out=hi)
    return lo, hi


def _digests(digest_paths: list[str] | None, index_paths: list[str], keys: np.ndarray) -> np.ndarray:
    """The canonical digest of each of ``keys``, from the shards' ``make_digests`` files."""
    if digest_paths is None:
        raise ValueError(
            "a plan for threshold 0 orders images by their canonical digests: "
            "pass digest_paths (make_digests of every shard)"
        )
    from ._index import keyed_rows

    if len(digest_paths) != len(index_paths):
        raise ValueError(
            f"no canonical digest for {len(index_paths) - len(digest_paths)} shards: "
            "digest_paths must cover every shard, one per index shard in its order"
        )
    digests = keyed_rows(digest_paths, index_paths, ["canonical"])
    by_key = dict(zip(digests.column("key").to_pylist(), digests.column("canonical").to_pylist()))
    missing = [k for k in keys.tolist() if k not in by_key]
    if missing:
        raise ValueError(
            f"no canonical digest for {len(missing)} decoded images (key {missing[0]} first): "
            f"digest_paths must cover every shard"
        )
    return np.asarray([by_key[k] for k in keys.tolist()], dtype=object)


def assign_blocks(
    order_key: np.ndarray,
    part_b: np.ndarray,
    keys: np.ndarray,
    features: np.ndarray,
    block_size: int,
    spread: tuple[np.ndarray, np.ndarray] | None = None,
    unchanged: np.ndarray | None = None,
    fixed: Sequence[np.ndarray] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort each partition by ``order_key`` (ties by key) and cut it into blocks; with
    ``unchanged`` (a mask), each partition's other images first, then its unchanged ones,
    in blocks apart. Each of ``fixed`` (images, of one partition and all unchanged) is a
    block of its own, before the other unchanged images of its partition are cut.

    Returns each image's block, and per block its partition and the minima and maxima of
    ``features`` over its members (of ``spread``'s per-image minima and maxima when given).
    """
    low, high = spread if spread is not None else (features, features)
    block = np.empty(len(keys), np.int32)
    block_part: list[int] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    groups = [part_b == part for part in (0, 1)]
    if unchanged is not None:
        groups = [g & which for g in groups for which in (~unchanged, unchanged)]
    taken = np.zeros(len(keys), bool)
    for members in fixed:
        taken[members] = True
    for group in groups:
        idx = np.flatnonzero(group & ~taken)
        own = [m for m in fixed if len(m) and group[m[0]]]
        part = int(part_b[idx[0]]) if len(idx) else int(part_b[own[0][0]]) if own else 0
        idx = idx[np.lexsort((keys[idx], order_key[idx]))]
        cut = [idx[start : start + block_size] for start in range(0, len(idx), block_size)]
        for members in [*own, *cut]:
            block[members] = len(block_part)
            block_part.append(part)
            lo.append(low[members].min(axis=0))
            hi.append(high[members].max(axis=0))
    width = features.shape[1]
    return (
        block,
        np.asarray(block_part, np.int8),
        np.asarray(lo, np.float64).reshape(-1, width),
        np.asarray(hi, np.float64).reshape(-1, width),
    )


def plan_pairs(
    features: np.ndarray,
    part_b: np.ndarray,
    keys: np.ndarray,
    *,
    block_size: int,
    limit: float,
    has_part_b: bool,
    spread: tuple[np.ndarray, np.ndarray] | None = None,
    unchanged: np.ndarray | None = None,
    fixed: Sequence[np.ndarray] = (),
) -> tuple[np.ndarray, list[int], list[int], int]:
    """Blocks ordered by total pixel sum and the block pairs whose ``range_bound`` is within
    ``limit`` (``channel_limit``; ``inf`` keeps them all).

    ``features`` are ``with_total`` sums. Returns each image's block, the pairs' A and B
    blocks, and the number of block pairs there were to consider. ``spread``: per image, the
    least and greatest features over the image and its crops (see ``make_plan``).
    ``unchanged``: images whose pairs with each other are known (``fast_diff_py._carry``):
    no pair of two of their blocks is listed. ``fixed``: blocks of unchanged images given
    (``assign_blocks``).
    """
    block, block_part, lo, hi = assign_blocks(
        features[:, 3], part_b, keys, features, block_size, spread, unchanged, fixed
    )
    known = np.zeros(len(block_part), bool)  # blocks of unchanged images
    if unchanged is not None:
        known[block[unchanged]] = True
    a_blocks = np.flatnonzero(block_part == 0)
    b_blocks = np.flatnonzero(block_part == 1) if has_part_b else a_blocks
    pairs: list[tuple[int, int]] = []
    for i in a_blocks:
        js = b_blocks if has_part_b else b_blocks[b_blocks >= i]
        if known[i]:
            js = js[~known[js]]
        if np.isfinite(limit):
            js = js[range_bound(lo[i], hi[i], lo[js], hi[js]) <= limit]
        # a block of unchanged images is compared only with blocks of other images: each such
        # pair goes to the job of the other block, so that the jobs are as many as the
        # blocks of new and changed images
        pairs.extend((int(j), int(i)) if known[i] else (int(i), int(j)) for j in js)
    pairs.sort()
    return block, [a for a, _ in pairs], [b for _, b in pairs], _all_pairs(block_part, has_part_b)


def _all_pairs(block_part: np.ndarray, has_part_b: bool) -> int:
    n_a = int((block_part == 0).sum())
    return n_a * int((block_part == 1).sum()) if has_part_b else n_a * (n_a + 1) // 2


def _blocks_sharing(
    block: np.ndarray, part_b: np.ndarray, canonical: np.ndarray, has_part_b: bool
) -> tuple[list[int], list[int]]:
    """Block pairs (A side first) that hold two images with the same canonical digest."""
    where: dict[str, tuple[set[int], set[int], list[int]]] = {}
    for b, p, c in zip(block.tolist(), part_b.tolist(), canonical.tolist()):
        blocks_a, blocks_b, counts = where.setdefault(c, (set(), set(), [0, 0]))
        (blocks_b if p else blocks_a).add(b)
        counts[p] += 1
    pairs: set[tuple[int, int]] = set()
    for a_side, b_side, (count_a, count_b) in where.values():
        if has_part_b and count_b:
            pairs.update((i, j) for i in a_side for j in b_side)
        elif not has_part_b and count_a > 1:  # a digest nobody else has needs no comparison
            blocks = sorted(a_side)
            pairs.update((i, j) for n, i in enumerate(blocks) for j in blocks[n:])
    ordered = sorted(pairs)
    return [i for i, _ in ordered], [j for _, j in ordered]


def block_pair_ids(plan_dir: str | os.PathLike[str]) -> list[str]:
    """The ``<a>_<b>`` ids of the planned block pairs."""
    return [f"{a}_{b}" for a, partners in block_partners(plan_dir).items() for b in partners]


def block_partners(plan_dir: str | os.PathLike[str]) -> dict[int, list[int]]:
    """Each A block that has a planned pair, with the blocks it is compared with.

    A compare job takes one A block and all its partners: the number of jobs is the number
    of blocks, linear in the number of images, while the pairs to compare (within a range
    of brightness of each other) grow faster than that.
    """
    path = os.path.join(plan_dir, "block_pairs.parquet")
    # Snakemake asks once per compare job (its threads); the file is read once per version
    st = os.stat(path)  # a rewritten plan is a new file (written aside, then renamed)
    cached = _read_partners(path, (st.st_ino, st.st_mtime_ns, st.st_size))
    return {a: list(bs) for a, bs in cached.items()}


@functools.lru_cache(maxsize=4)
def _read_partners(path: str, version: tuple[int, int, int]) -> dict[int, tuple[int, ...]]:
    t = read_parquet(path).to_pydict()
    partners: dict[int, list[int]] = {}
    for a, b in zip(t["block_a"], t["block_b"]):
        partners.setdefault(a, []).append(b)
    return {a: tuple(bs) for a, bs in partners.items()}


def block_path(plan_dir: str | os.PathLike[str], block: int, suffix: str = ".parquet") -> str:
    """Where the plan in ``plan_dir`` keeps one block's rows, thumbnails or crops."""
    return os.path.join(plan_dir, BLOCK_DIR, block_file(block, suffix))


def read_block(plan_dir: str | os.PathLike[str], block: int) -> pa.Table:
    """The rows of one block, in key order (its own file, ``block_file``)."""
    return read_parquet(block_path(plan_dir, block))


def block_stack(plan_dir: str | os.PathLike[str], block: int, suffix: str = ".npy") -> np.ndarray:
    """One block's thumbnails (``.npy``) or crops (CROP_STACK_SUFFIX), mapped read-only, in
    the order of ``read_block``'s rows."""
    return open_stack(block_path(plan_dir, block, suffix))
