"""Status codes stored in the ``success`` columns of the database, the hash columns' names,
and the version of the thumbnails' definition."""

from __future__ import annotations

from enum import IntEnum


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
# 3: quality halves; 4: the file identity of every row)
META_VERSION = 4
