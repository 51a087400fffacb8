"""The files between the stages and the product's marks, named once: every writer and
reader, and the workflow's rules, take their schemas, column names, file names, versions
and status codes from here.

::

    results_dir/
      folders.state                  FOLDER_STATE: digest of the folders (index input)
      folders.walk                   FOLDER_WALK: what the walk of that digest found, for the
                                     index job (marshal: _index._WalkFile; walked again without)
      storage_listing.parquet        STORAGE_LISTING_SCHEMA: the folders' files in a storage (_storage;
                                     the index input instead of FOLDER_STATE there)
      index/roots.parquet            ROOTS_SCHEMA: one row per searched folder
      index/shards.parquet           SHARDS_SCHEMA: the shards' ids by first key (shard_ids)
      index/shard_<s>.parquet        INDEX_SCHEMA: one row per path
      index/shard_<s>.files.parquet  SHARD_FILES_SCHEMA: the same rows without keys, a
                                     thumbnail job's input (a shard of the last index keeps its
                                     own, with the rows of files gone or changed since)
      kept_index/                    KEPT_INDEX_DIR: the last index's shard_<s>.files.parquet
      thumbnails/shard_<s>.npy       N x S x S x 3 uint8, one row per decoded file
      thumbnails/shard_<s>.parquet   META_SCHEMA: one row per row of the shard's files.parquet
      thumbnails/shard_<s>.previews.parquet  PREVIEW_SCHEMA: the gallery's thumbnails
      thumbnails/shard_<s>.crops.npy N x V x S x S x 3 uint8 crop thumbnails (crop_tolerance only)
      thumbnails/shard_<s>.crops.parquet  CROP_SUMS_SCHEMA: their channel sums (crop_tolerance only)
      thumbnails/reuse/<s>/          REUSE_DIR: what shard s's last job made, by file version (_reuse)
      digests/shard_<s>.parquet      DIGEST_SCHEMA (diff_threshold 0 only)
      plan/blocks.parquet            BLOCKS_SCHEMA: every decoded file with its block (_plan)
      plan/block_pairs.parquet       BLOCK_PAIRS_SCHEMA: the pairs of blocks to compare
      plan/carried_pairs.parquet     PAIR_SCHEMA: CARRIED_PAIRS, the kept pairs of unchanged files (_carry)
      plan/blocks/block_<b>.parquet  BLOCKS_SCHEMA: block b's rows, by key
      plan/blocks/block_<b>.npy      m x S x S x 3 uint8: block b's thumbnails, at the rows' block_row
                                     (only where a listed block pair holds b)
      plan/blocks/block_<b>.crops.npy  n x V x S x S x 3 uint8: their crops (crop_tolerance only)
      kept_blocks/                   KEPT_BLOCKS_DIR: the last plan's block thumbnails and their
                                     files' versions (_plan), taken again for unchanged files
      pairs/<a>.parquet              PAIR_SCHEMA, also pairs_gpu/ and hash_pairs.parquet
      database.json                  DB_RECEIPT: which database db_path holds
      kept_pairs/                    KEPT_PAIRS_DIR: the last run's files and pairs, for the next (_carry)
    db_path                          SQLite, PRAGMA user_version = USER_VERSION (_db)
    results_dir-inline/              the same files of a run in one process (_inline: small
                                     collections from the command lines)
    <folder of db_path>/summary.json SUMMARY_FILE: what the run found (_summary)
    <folder of db_path>/report/      REPORT_DIR: the gallery, REPORT_INDEX to open (_report)
"""

from __future__ import annotations

import os
from enum import IntEnum
from pathlib import Path

import pyarrow as pa

__all__ = [
    "DB_RECEIPT",
    "DIF_PER_MSE",
    "DIGEST_DIR",
    "DIGEST_SCHEMA",
    "FILE_LIST_SCHEMA",
    "FOLDER_STATE",
    "FOLDER_WALK",
    "CARRIED_PAIRS",
    "KEPT_INDEX_DIR",
    "KEPT_BLOCKS_DIR",
    "KEPT_PAIRS_DIR",
    "STORAGE_LISTING",
    "STORAGE_LISTING_SCHEMA",
    "REPORT_DIR",
    "REPORT_MARKER",
    "REPORT_RECEIPT",
    "SUMMARY_RECEIPT",
    "SUMMARY_MARK",
    "ours",
    "REPORT_INDEX",
    "SUMMARY_FILE",
    "FileStatus",
    "GPU_PAIR_DIR",
    "HASH_COLUMNS",
    "HASH_PAIRS",
    "INDEX_DIR",
    "INLINE_SUFFIX",
    "INDEX_SCHEMA",
    "META_SCHEMA",
    "SHARD_FILES_SCHEMA",
    "SHARD_FILES_SUFFIX",
    "SHARDS_FILE",
    "SHARDS_SCHEMA",
    "LONGEST_SHARD",
    "META_VERSION",
    "PAIR_DIR",
    "PAIR_SCHEMA",
    "BLOCKS_SCHEMA",
    "BLOCK_DIR",
    "REUSE_DIR",
    "block_file",
    "BLOCK_PAIRS_SCHEMA",
    "COLUMN_MEANINGS",
    "CROP_STACK_SUFFIX",
    "CROP_VARIANTS",
    "CROP_SUMS_SCHEMA",
    "CROP_SUMS_SUFFIX",
    "PREVIEW_MADE_AS",
    "PREVIEW_ROW_GROUP",
    "PREVIEW_SCHEMA",
    "PREVIEW_VERSION",
    "PREVIEW_SUFFIX",
    "crop_sum_columns",
    "PLAN_DIR",
    "PairStatus",
    "ROOTS_FILE",
    "ROOTS_SCHEMA",
    "THUMBNAIL_DIR",
    "USER_VERSION",
    "pair_filter",
    "shard_file",
    "shard_ids",
    "report_path",
    "inline_results_dir",
    "reuse_root",
    "summary_path",
    "log_path",
]


class FileStatus(IntEnum):
    """``directory.success``: what happened to one file."""

    SCHEDULED = -2
    NOT_COMPUTED = -1  # disallowed or ignored files are never decoded
    ERROR = 0
    SUCCESS = 1


class PairStatus(IntEnum):
    """``dif_table.success``: how one pair's row was obtained."""

    ERROR = 0
    COMPUTED = 1  # dif is the exact thumbnail difference
    MATCHING_HASH = 2  # hashes agree, dif = 0 without comparing
    NON_MATCHING_ASPECT = 3  # size / aspect filter rejected the pair, dif = -1


# one column of hashes per rotation, in the directory table and the thumbnail metadata
HASH_COLUMNS = ("hash_0", "hash_90", "hash_180", "hash_270")

# the meaning of a shard's thumbnails and metadata (_thumbnails.py); the thumbnail rule
# passes it as a param, so that Snakemake makes again the shards an older definition wrote
# (2: the canonical digest is the least SHA-1 of the rotations, was BLAKE2b of their sum;
# 3: quality halves; 4: the file identity of every row; 5: rows of the shard, not keys)
META_VERSION = 5

# dif sums the squared differences of the three channels; difPy's mse averages them
DIF_PER_MSE = 3

# PRAGMA user_version of a database written by this version of fast-diff
USER_VERSION = 0x66640001

# folders and files under results_dir
INDEX_DIR = "index"
# the results folder of a run in one process is results_dir with this added (inline_results_dir)
INLINE_SUFFIX = "-inline"
THUMBNAIL_DIR = "thumbnails"
# in THUMBNAIL_DIR, a folder per shard: what its last job made, taken again for files of the
# same version (_reuse); no Snakemake output, so that it outlives the outputs it links to
REUSE_DIR = "reuse"
DIGEST_DIR = "digests"
PLAN_DIR = "plan"
# the plan's files of each block (block_file), a compare job's inputs
BLOCK_DIR = "blocks"
# in PLAN_DIR, the pairs of two files unchanged since the last run, taken from KEPT_PAIRS_DIR
CARRIED_PAIRS = "carried_pairs.parquet"
# the last run's decoded files and stored pairs (_carry); no Snakemake output, so that it
# outlives the outputs of the next run's jobs
KEPT_PAIRS_DIR = "kept_pairs"
# the last index's shard files (SHARD_FILES_SUFFIX): one written again with the same bytes
# takes the kept one's modification time, so that its thumbnail job does not run again
# whatever its size (Snakemake compares checksums only up to --max-checksum-file-size); no
# Snakemake output, so that it outlives the index job's
KEPT_INDEX_DIR = "kept_index"
# beside PLAN_DIR, the last plan's block thumbnails (hard links) and the version of the file of
# each of their rows: a block whose files are unchanged is kept, its thumbnails not gathered
# and written again; no Snakemake output, so that it outlives the plan's
KEPT_BLOCKS_DIR = "kept_blocks"
PAIR_DIR = "pairs"
GPU_PAIR_DIR = "pairs_gpu"
HASH_PAIRS = "hash_pairs.parquet"
ROOTS_FILE = "roots.parquet"
# in INDEX_DIR, the shards by their first key
SHARDS_FILE = "shards.parquet"
# an index shard holds shard_size paths on average, at most this many times as many
LONGEST_SHARD = 3
# beside an index shard, its files without keys: what a thumbnail job reads
SHARD_FILES_SUFFIX = ".files.parquet"
FOLDER_STATE = "folders.state"
# the walk that FOLDER_STATE digests, its entries in walk order, written where the DAG is
# built, the digest on its first line (_index._WalkFile)
FOLDER_WALK = "folders.walk"
# the searched folders' files in a Snakemake storage, listed where the DAG is built (_storage)
STORAGE_LISTING = "storage_listing.parquet"
DB_RECEIPT = "database.json"
# written by merge_database once the gallery and the summary beside the
# database are written (those are no Snakemake outputs: Snakemake would delete a user's
# folder or file of that name before the job could refuse to replace it)
REPORT_RECEIPT = "report.done"
SUMMARY_RECEIPT = "summary.done"
# what the run found (_summary), next to the database
SUMMARY_FILE = "summary.json"
# the gallery (_report), a folder next to the database, and the page to open
REPORT_DIR = "report"
REPORT_INDEX = "index.html"
_SHARD_PREFIX = "shard_"
_BLOCK_PREFIX = "block_"
# a thumbnail shard's crop thumbnails and their sums (crop_tolerance > 0 only)
# crop thumbnails per image with crop_tolerance (fast_diff_py._crops): the rows of a crop
# stack and the crop sums' columns
CROP_VARIANTS = 3
CROP_STACK_SUFFIX = ".crops.npy"
CROP_SUMS_SUFFIX = ".crops.parquet"
# a thumbnail shard's gallery thumbnails, made from the same decoding
PREVIEW_SUFFIX = ".previews.parquet"


def pair_filter(include_hash_match: bool = True, alias: str = "d") -> str:
    """The SQL condition of a stored pair within a threshold (one ``?`` parameter): compared
    (and, with ``include_hash_match``, equal by hash) and ``dif <= ?``."""
    codes = [PairStatus.COMPUTED] + ([PairStatus.MATCHING_HASH] if include_hash_match else [])
    return f"{alias}.dif <= ? AND {alias}.success IN ({', '.join(str(int(c)) for c in codes)})"


def inline_results_dir(results_dir: str | os.PathLike[str]) -> str:
    """The results folder of a run in one process (``_inline``): beside the workflow's
    ``results_dir``, with the same files, so that neither way of running sees the other's."""
    return os.path.normpath(os.fspath(results_dir)) + INLINE_SUFFIX


def reuse_root(results_dir: str | os.PathLike[str]) -> str:
    """Where the thumbnail jobs of a run in ``results_dir`` keep what they made, a folder per
    shard (REUSE_DIR, ``_reuse``)."""
    return os.path.join(os.fspath(results_dir), THUMBNAIL_DIR, REUSE_DIR)


def summary_path(db_path: str | os.PathLike[str]) -> str:
    """Where the summary of the run that writes ``db_path`` is written: beside it."""
    return os.path.join(os.path.dirname(os.fspath(db_path)) or ".", SUMMARY_FILE)


# what marks the gallery folder and the summary as fast-diff's own: only these are replaced
# or left out of the index; a user's folder or file of the same name is neither
REPORT_MARKER = ".fast-diff-report"
SUMMARY_MARK = "fast-diff summary"


def ours(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is free or holds a gallery or summary fast-diff wrote."""
    p = Path(path)
    if not os.path.lexists(p):
        return True
    if p.is_dir() and not p.is_symlink():
        return (p / REPORT_MARKER).is_file()
    try:
        with open(p, "rb") as fh:
            return p.is_file() and not p.is_symlink() and SUMMARY_MARK.encode() in fh.read(200)
    except OSError:
        return False


def log_path(db_path: str | os.PathLike[str]) -> str:
    """Where ``fastdiffpy`` and the API keep Snakemake's whole output of the run that wrote
    ``db_path`` (its working folder goes at the end): beside it, ``<db_path>.log``."""
    return os.path.abspath(os.fspath(db_path)) + ".log"


def report_path(db_path: str | os.PathLike[str]) -> str:
    """The gallery folder of the run that writes ``db_path``: beside it."""
    return os.path.join(os.path.dirname(os.fspath(db_path)) or ".", REPORT_DIR)


def shard_file(shard: str, suffix: str = ".parquet") -> str:
    """The file name of shard ``shard`` (an id, or a pattern such as ``{shard}`` or ``*``)."""
    return f"{_SHARD_PREFIX}{shard}{suffix}"


def block_file(block: int | str, suffix: str = ".parquet") -> str:
    """The file name of block ``block``'s rows (``.parquet``), thumbnails (``.npy``) or crop
    thumbnails (CROP_STACK_SUFFIX) in the plan's BLOCK_DIR: a compare job reads only its
    blocks'."""
    return f"{_BLOCK_PREFIX}{block}{suffix}"


def shard_ids(index_dir: str | os.PathLike[str]) -> list[str]:
    """The ids of the shards of the index in ``index_dir``, by their first key (SHARDS_FILE)."""
    from ._io import read_parquet

    return read_parquet(Path(index_dir, SHARDS_FILE), columns=["shard"]).column("shard").to_pylist()


# one row per path found (and folder that could not be listed), keys in walk order
INDEX_SCHEMA = pa.schema(
    [
        ("key", pa.int64()),
        ("path", pa.string()),
        ("filename", pa.string()),
        ("part_b", pa.int8()),
        ("dir_index", pa.int32()),
        ("file_size", pa.int64()),
        ("created", pa.float64()),
        ("allowed", pa.int8()),
        ("error", pa.string()),
        # the exact name where it is not valid UTF-8 (_paths); null otherwise
        ("path_bytes", pa.binary()),
        # the identity of the file the path named when it was indexed (after following
        # links): a thumbnail is only made, and a file only moved or deleted, while it holds
        ("dev", pa.int64()),
        ("inode", pa.uint64()),
        ("mtime_ns", pa.int64()),
        # 1 where the path is a symbolic link or lies in a folder reached through one
        ("via_link", pa.int8()),
        # the key of another path of the same file (a symbolic or hard link): this path is
        # recorded but never compared, kept or acted on; null for the file's own name
        ("same_as", pa.int64()),
        # the path's row in the shard's files (SHARD_FILES_SCHEMA), and so in every output of
        # its thumbnail job: the row's own number, but where files only left the shard since
        # its files were written (_index._kept_rows: its thumbnails are kept as they are)
        ("files_row", pa.int32()),
    ]
)
# one row per path of an index shard, in its order, without what depends on the other shards
# (keys, and the key an alias names): a thumbnail job's input, the same bytes while the
# shard's files are the same; kept, rows of files gone included, while files only left it
# (the index's files_row)
SHARD_FILES_SCHEMA = pa.schema(
    [
        *(
            INDEX_SCHEMA.field(name)
            for name in ("path", "path_bytes", "file_size", "created", "allowed", "error", "dev", "inode", "mtime_ns")
        ),
        # 1 where same_as is set: another name of a file read under its own
        ("alias", pa.int8()),
    ]
)
# one row per shard of the index, by first key: its id and number of paths
SHARDS_SCHEMA = pa.schema([("shard", pa.string()), ("files", pa.int64())])
# one row per folder of part_a, then part_b (dir_index_lookup)
ROOTS_SCHEMA = pa.schema([("dir_index", pa.int32()), ("path", pa.string()), ("part_b", pa.int8())])

# the file_list a caller supplies instead of folders (path_bytes optional)
# one row per file of the searched folders in a storage, in the order of a walk (_storage)
STORAGE_LISTING_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("part_b", pa.int8()),
        ("dir_index", pa.int32()),
        ("file_size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("allowed", pa.int8()),
    ]
)

FILE_LIST_SCHEMA = pa.schema(
    [("path", pa.string()), ("part_b", pa.int8()), ("allowed", pa.int8()), ("path_bytes", pa.binary())]
)

# one row per path of a thumbnail shard, in the index shard's order (its keys are the index
# shard's: a shard's thumbnails stay valid while its files do, whatever the other shards hold)
META_SCHEMA = pa.schema(
    [
        ("success", pa.int8()),
        ("error", pa.string()),
        ("px", pa.int64()),
        ("py", pa.int64()),
        ("thumb_row", pa.int32()),  # row in the shard's .npy stack, -1 without thumbnail
        ("sum_0", pa.int64()),  # per-channel pixel sums of the thumbnail (pruning features)
        ("sum_1", pa.int64()),
        ("sum_2", pa.int64()),
        *[(h, pa.string()) for h in HASH_COLUMNS],
        # the version of the file the row describes (FileIdentity), as read; -1 where unread
        ("dev", pa.int64()),
        ("inode", pa.uint64()),
        ("file_size", pa.int64()),
        ("mtime_ns", pa.int64()),
    ]
)


def crop_sum_columns(variants: int = CROP_VARIANTS) -> list[list[str]]:
    """The columns of CROP_SUMS_SCHEMA holding crop k's channel sums, per crop."""
    return [[f"crop{k}_sum_{c}" for c in range(3)] for k in range(1, variants + 1)]


# one row per decoded file of a shard, in the order of its crop stack (make_thumbnails with
# crop_tolerance): the channel sums of each crop thumbnail, the plan's pruning features
# (row: the file's row in its shard)
CROP_SUMS_SCHEMA = pa.schema([("row", pa.int32()), *[(c, pa.int64()) for cols in crop_sum_columns() for c in cols]])

# one row per decoded file of a shard, in stack order (make_thumbnails): the gallery's
# thumbnail of each, so that the gallery need not read and decode its files again
# (by path, as the database's directory.path)
PREVIEW_SCHEMA = pa.schema([("path", pa.string()), ("jpeg", pa.binary())])
# rows per row group of a previews file: the gallery reads the groups of the files it shows
PREVIEW_ROW_GROUP = 256
# the key of PREVIEW_SCHEMA's metadata naming the settings the previews were made under
# (a fingerprint of the thumbnail job's: the same for the same pixels)
PREVIEW_MADE_AS = "made_as"
# the definition of the previews files; the thumbnail jobs have it as a param, so that
# Snakemake makes again the previews of older runs (from the thumbnails they kept)
# (2: PREVIEW_MADE_AS)
PREVIEW_VERSION = 2

# one row per decoded file of a shard (make_digests): a digest of the unshifted thumbnail's
# rotations (canonical_digests), equal for images whose dif is 0, which lets the planner
# answer diff_threshold 0 without products
DIGEST_SCHEMA = pa.schema([("row", pa.int32()), ("canonical", pa.string())])

# one row per stored pair, sorted by (key_a, key_b)
PAIR_SCHEMA = pa.schema([("key_a", pa.int64()), ("key_b", pa.int64()), ("dif", pa.float64()), ("success", pa.int8())])

# the comparison plan (_plan): one row per decoded image with its block, sorted by (block,
# key), in blocks.parquet and block by block (block_file); and the pairs of blocks to compare
BLOCKS_SCHEMA = pa.schema(
    [
        INDEX_SCHEMA.field("key"),
        *[META_SCHEMA.field(name) for name in ("px", "py", "thumb_row", "sum_0", "sum_1", "sum_2")],
        *[META_SCHEMA.field(h) for h in HASH_COLUMNS],
        ("part_b", pa.int8()),
        ("shard", pa.int32()),
        ("block", pa.int32()),
        ("block_row", pa.int32()),
    ]
)
BLOCK_PAIRS_SCHEMA = pa.schema([("block_a", pa.int32()), ("block_b", pa.int32())])

_IDENTITY = {
    "dev": "device of the file (after following links)",
    "inode": "inode of the file",
    "mtime_ns": "modification time in nanoseconds",
}
_HASHES = {h: f"SHA-1 of the thumbnail turned by {h[5:]} degrees (null without compute_hash)" for h in HASH_COLUMNS}

# what every column of the files between the stages holds (docs/formats.md is made from
# these and the schemas above: python -m fast_diff_py._docs formats)
COLUMN_MEANINGS: dict[str, dict[str, str]] = {
    "ROOTS_SCHEMA": {
        "dir_index": "number of the searched folder: part_a's in order, then part_b's",
        "path": "the folder as given, made absolute",
        "part_b": "1 for a folder of part_b",
    },
    "INDEX_SCHEMA": {
        "key": "the path's key (directory.key), in walk order",
        "path": "absolute path (with surrogate escapes where not valid UTF-8)",
        "filename": "the last part of path",
        "part_b": "1 for a file of part_b",
        "dir_index": "the searched folder it was found under (roots.parquet)",
        "file_size": "size in bytes when indexed, -1 if unknown",
        "created": "creation (or change) time in seconds, -1 if unknown",
        "allowed": "1 when its extension is in allowed_file_extensions",
        "error": "why the path is not read (unreadable folder, not a regular file, ...), else null",
        "path_bytes": "the exact name where it is not valid UTF-8, else null",
        **_IDENTITY,
        "via_link": "1 where the path is a symbolic link or lies in a folder reached through one",
        "same_as": "the key of another path of the same file (a link): recorded, never compared or acted on",
        "files_row": "its row in the shard's files.parquet and so in the thumbnail job's outputs (which may hold "
        "rows of files gone or changed since: a shard kept from the last index)",
    },
    "SHARD_FILES_SCHEMA": {
        "path": "as in the index shard, in the rows its files_row names (others: files gone or changed since)",
        "path_bytes": "as in the index shard",
        "file_size": "as in the index shard",
        "created": "as in the index shard",
        "allowed": "as in the index shard",
        "error": "as in the index shard",
        **_IDENTITY,
        "alias": "1 where the index shard's same_as is set (another name of a file read under its own)",
    },
    "SHARDS_SCHEMA": {
        "shard": "the shard's id (from its first path: the same in every run while that path starts it)",
        "files": "its number of paths (their keys: in walk order, not always next to each other)",
    },
    "STORAGE_LISTING_SCHEMA": {
        "path": "the searched folder as configured, joined with the object's path below it",
        "part_b": "1 for a file of part_b",
        "dir_index": "number of its searched folder (ROOTS_SCHEMA)",
        "file_size": "the object's size in bytes",
        "mtime_ns": "the object's time in the storage, in nanoseconds; -1 where it has none",
        "allowed": "1 to compare it, 0 to record it only (an ignored name or extension)",
    },
    "FILE_LIST_SCHEMA": {
        "path": "path of one file to compare",
        "part_b": "1 for a file of part_b",
        "allowed": "1 to compare it, 0 to record it only",
        "path_bytes": "optional: the exact name where it is not valid UTF-8",
    },
    "META_SCHEMA": {
        "success": "FileStatus: 1 decoded, 0 error, -1 not read (not allowed, a link to another row)",
        "error": "why the file could not be decoded, else null",
        "px": "width of the image in pixels, -1 if not decoded",
        "py": "height of the image in pixels, -1 if not decoded",
        "thumb_row": "row of the thumbnail in the shard's .npy stack, -1 without thumbnail",
        "sum_0": "sum of the thumbnail's first channel (the plan's pruning feature)",
        "sum_1": "sum of the thumbnail's second channel",
        "sum_2": "sum of the thumbnail's third channel",
        **_HASHES,
        **_IDENTITY,
        "file_size": "size in bytes of the version that was read, -1 where unread",
    },
    "PREVIEW_SCHEMA": {
        "path": "the file's path (decoded files only), as directory.path",
        "jpeg": "the gallery's thumbnail: a JPEG whose longer side is at most 160 pixels, null if none could be made",
    },
    "CROP_SUMS_SCHEMA": {
        "row": "the file's row in its shard (decoded files only, in the order of the crop stack)",
        **{
            c: f"sum of crop {k + 1}'s {('first', 'second', 'third')[i]} channel (crop_tolerance)"
            for k, cols in enumerate(crop_sum_columns())
            for i, c in enumerate(cols)
        },
    },
    "DIGEST_SCHEMA": {
        "row": "the file's row in its shard (decoded files only)",
        "canonical": "least SHA-1 of the unshifted thumbnail's rotations: equal for images whose dif is 0",
    },
    "BLOCKS_SCHEMA": {
        "key": "the path's key (decoded files only)",
        "px": "width in pixels",
        "py": "height in pixels",
        "thumb_row": "row in its shard's .npy stack (thumbnails/)",
        "sum_0": "first channel's sum",
        "sum_1": "second channel's sum",
        "sum_2": "third channel's sum",
        **_HASHES,
        "part_b": "1 for a file of part_b",
        "shard": "number of its thumbnail shard (in the order of index/shards.parquet)",
        "block": "the comparison block it belongs to",
        "block_row": "its row in the block's .npy thumbnails (which may hold rows of files gone since: a block "
        "kept from the last plan); its crops are those rows' own",
    },
    "BLOCK_PAIRS_SCHEMA": {
        "block_a": "a block; one compare job per block_a",
        "block_b": "a block compared with block_a (its brightness range can match); the block of the lower "
        "number is the A side of the pair",
    },
    "PAIR_SCHEMA": {
        "key_a": "key of the first file (the smaller key; part_a's with part_b)",
        "key_b": "key of the second file",
        "dif": "the thumbnail difference (dif_table.dif); -1 for a rejected aspect",
        "success": "PairStatus: 1 compared, 2 equal hashes, 3 aspect rejected, 0 error",
    },
}
