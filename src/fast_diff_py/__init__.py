"""fast_diff_py: find duplicate and similar images, exactly, at any scale.

The stages of the Snakemake workflow are plain functions here; the workflow's scripts and
the command lines call them.
"""

from ._api import Config, FastDifPy, FirstLoopConfig, SecondLoopConfig
from ._codes import FileStatus, PairStatus
from ._compare import compare_block_pair, match_hashes
from ._config import check_folders, load_schema, validate_config
from ._db import build_database
from ._errors import ConfigError, DatabaseError, FastDiffError, FolderError
from ._index import file_list_has_part_b, walk_partition, write_index
from ._kernel import block_dif, naive_dif
from ._plan import block_pair_ids, make_plan
from ._queries import FastDiffDB, SQLiteDB
from ._thumbnails import ImageReadError, decode_thumbnail, hash_thumbnail, make_thumbnails
from ._workflow import WorkflowError, run_workflow

__version__ = "0.1.0"

__all__ = [
    "Config", "FastDiffDB", "FastDifPy", "FirstLoopConfig", "SQLiteDB", "SecondLoopConfig",
    "WorkflowError", "run_workflow",
    "ConfigError", "DatabaseError", "FastDiffError", "FileStatus", "FolderError",
    "ImageReadError", "PairStatus", "block_dif", "block_pair_ids", "build_database",
    "check_folders", "file_list_has_part_b", "compare_block_pair", "decode_thumbnail", "hash_thumbnail", "load_schema",
    "make_plan", "make_thumbnails", "match_hashes", "naive_dif", "validate_config",
    "walk_partition", "write_index",
]
