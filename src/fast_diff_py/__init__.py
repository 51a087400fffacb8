"""fast_diff_py: find duplicate and similar images, exactly, at any scale.

The stages of the Snakemake workflow are plain functions here; the workflow's scripts and
the command lines call them. Names are imported on first use, so a job loads only the stage
it runs.
"""

from __future__ import annotations

import importlib

# typing is not imported at run time: the console scripts load this package before their
# Ctrl-C handling begins (cli._start), and typing takes most of its import time
TYPE_CHECKING = False

__version__ = "0.2.0"

_EXPORTS = {
    "_api": ["Config", "FastDifPy", "FirstLoopConfig", "SecondLoopConfig", "cache_dir", "work_dir"],
    "_report": ["finish_run", "link_gallery", "make_report", "report_run"],
    "_summary": ["current_summary", "format_summary", "print_summary", "read_summary", "summarize", "write_summary"],
    "_crops": ["crop_thumbnails", "naive_crop_dif"],
    "_formats": [
        "CROP_STACK_SUFFIX",
        "CROP_SUMS_SUFFIX",
        "PREVIEW_SUFFIX",
        "DB_RECEIPT",
        "DIF_PER_MSE",
        "DIGEST_DIR",
        "FOLDER_STATE",
        "FOLDER_WALK",
        "CARRIED_PAIRS",
        "KEPT_INDEX_DIR",
        "KEPT_PAIRS_DIR",
        "STORAGE_LISTING",
        "REPORT_DIR",
        "REPORT_INDEX",
        "REPORT_RECEIPT",
        "SUMMARY_RECEIPT",
        "SUMMARY_FILE",
        "FileStatus",
        "GPU_PAIR_DIR",
        "HASH_PAIRS",
        "INDEX_DIR",
        "META_VERSION",
        "PREVIEW_VERSION",
        "PAIR_DIR",
        "PLAN_DIR",
        "BLOCK_DIR",
        "REUSE_DIR",
        "PairStatus",
        "ROOTS_FILE",
        "THUMBNAIL_DIR",
        "SHARD_FILES_SUFFIX",
        "shard_file",
        "block_file",
        "report_path",
        "inline_results_dir",
        "reuse_root",
        "shard_ids",
        "summary_path",
    ],
    "_carry": ["keep_pairs", "pairs_fingerprint"],
    "_compare": ["compare_block_pair", "compare_blocks", "match_hashes"],
    "_config": ["check_folders", "load_schema", "validate_config"],
    "_decisions": [
        "compare_mem_mb",
        "compare_runtime_min",
        "digests_from_hashes",
        "job_memory",
        "needs_digests",
        "plan_mem_mb",
        "prunes",
        "thumbnail_mem_mb",
        "thumbnail_runtime_min",
    ],
    "_db": [
        "build_database",
        "database_problem",
        "forget_changed_database",
        "forget_missing_product",
        "forget_unfinished_database",
        "write_receipt",
    ],
    "_difpy": ["difpy_parameters", "difpy_report", "write_difpy_files"],
    "_jobs": ["start_job"],
    "_reuse": ["forget_shards", "reuse_folders"],
    "_errors": [
        "ConfigError",
        "DatabaseError",
        "FastDiffError",
        "FolderError",
        "ImageReadError",
        "IntermediateError",
        "OutputError",
        "RunError",
        "WorkflowError",
    ],
    "_index": [
        "file_list_has_part_b",
        "folder_state",
        "forget_incomplete_index",
        "own_paths",
        "record_folder_state",
        "walk_partition",
        "write_index",
    ],
    "_kernel": ["block_dif", "naive_dif"],
    "_plan": ["block_pair_ids", "block_partners", "make_plan"],
    "_queries": ["FastDiffDB", "SQLiteDB"],
    "_decode": ["decode_image", "decode_thumbnail", "decode_thumbnail_and_crops"],
    "_hashing": ["hash_thumbnail"],
    "_storage": [
        "fetch",
        "list_storage",
        "photos_to_read",
        "print_stored_summary",
        "record_storage_listing",
        "storage_query",
    ],
    "_thumbnails": ["make_digests", "make_thumbnails"],
    "_workflow": ["run_workflow"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fast_diff_py' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # for type checkers and editors
    from typing import Any

    from ._api import Config, FastDifPy, FirstLoopConfig, SecondLoopConfig, cache_dir, work_dir  # noqa: F401
    from ._carry import keep_pairs, pairs_fingerprint  # noqa: F401
    from ._compare import compare_block_pair, compare_blocks, match_hashes  # noqa: F401
    from ._config import check_folders, load_schema, validate_config  # noqa: F401
    from ._crops import crop_thumbnails, naive_crop_dif  # noqa: F401
    from ._db import (  # noqa: F401
        build_database,
        database_problem,
        forget_changed_database,
        forget_missing_product,
        forget_unfinished_database,
        write_receipt,
    )
    from ._decisions import (  # noqa: F401
        compare_mem_mb,
        compare_runtime_min,
        digests_from_hashes,
        job_memory,
        needs_digests,
        plan_mem_mb,
        prunes,
        thumbnail_mem_mb,
        thumbnail_runtime_min,
    )
    from ._decode import decode_image, decode_thumbnail, decode_thumbnail_and_crops  # noqa: F401
    from ._difpy import difpy_parameters, difpy_report, write_difpy_files  # noqa: F401
    from ._errors import (  # noqa: F401
        ConfigError,
        DatabaseError,
        FastDiffError,
        FolderError,
        ImageReadError,
        IntermediateError,
        OutputError,
        RunError,
        WorkflowError,
    )
    from ._formats import (  # noqa: F401
        BLOCK_DIR,
        CARRIED_PAIRS,
        CROP_STACK_SUFFIX,
        CROP_SUMS_SUFFIX,
        DB_RECEIPT,
        DIF_PER_MSE,
        DIGEST_DIR,
        FOLDER_STATE,
        FOLDER_WALK,
        GPU_PAIR_DIR,
        HASH_PAIRS,
        INDEX_DIR,
        KEPT_INDEX_DIR,
        KEPT_PAIRS_DIR,
        META_VERSION,
        PAIR_DIR,
        PLAN_DIR,
        PREVIEW_SUFFIX,
        PREVIEW_VERSION,
        REPORT_DIR,
        REPORT_INDEX,
        REPORT_RECEIPT,
        REUSE_DIR,
        ROOTS_FILE,
        SHARD_FILES_SUFFIX,
        STORAGE_LISTING,
        SUMMARY_FILE,
        SUMMARY_RECEIPT,
        THUMBNAIL_DIR,
        FileStatus,
        PairStatus,
        block_file,
        inline_results_dir,
        report_path,
        reuse_root,
        shard_file,
        shard_ids,
        summary_path,
    )
    from ._hashing import hash_thumbnail  # noqa: F401
    from ._index import (  # noqa: F401
        file_list_has_part_b,
        folder_state,
        forget_incomplete_index,
        own_paths,
        record_folder_state,
        walk_partition,
        write_index,
    )
    from ._jobs import start_job  # noqa: F401
    from ._kernel import block_dif, naive_dif  # noqa: F401
    from ._plan import block_pair_ids, block_partners, make_plan  # noqa: F401
    from ._queries import FastDiffDB, SQLiteDB  # noqa: F401
    from ._report import finish_run, link_gallery, make_report, report_run  # noqa: F401
    from ._reuse import forget_shards, reuse_folders  # noqa: F401
    from ._storage import (  # noqa: F401
        fetch,
        list_storage,
        photos_to_read,
        print_stored_summary,
        record_storage_listing,
        storage_query,
    )
    from ._summary import (  # noqa: F401
        current_summary,
        format_summary,
        print_summary,
        read_summary,
        summarize,
        write_summary,
    )
    from ._thumbnails import make_digests, make_thumbnails  # noqa: F401
    from ._workflow import run_workflow  # noqa: F401
