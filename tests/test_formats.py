"""The files between the stages are what docs/formats.md (made from _formats) says they are."""

from __future__ import annotations

import sqlite3

import numpy as np
import pyarrow.parquet as pq
from conftest import REPO, run_workflow

import fast_diff_py as fdp
from fast_diff_py import _formats
from fast_diff_py._docs import formats_reference


def test_formats_document_is_generated_from_the_definitions():
    doc = (REPO / "docs" / "formats.md").read_text()
    assert doc == formats_reference(), "regenerate: python -m fast_diff_py._docs formats > docs/formats.md"


def test_every_column_has_a_meaning():
    for name, meanings in _formats.COLUMN_MEANINGS.items():
        assert set(getattr(_formats, name).names) == set(meanings), name


def test_a_run_writes_the_documented_files(tmp_path):
    config = {"part_a": [str(REPO / "examples" / "images")], "first_loop": {"compute_hash": True}}
    run_workflow(tmp_path, config)
    work = tmp_path / "results" / "work"
    expected = {
        "index/roots.parquet": _formats.ROOTS_SCHEMA,
        "index/shard_*[0-9].parquet": _formats.INDEX_SCHEMA,
        "index/shard_*[0-9].files.parquet": _formats.SHARD_FILES_SCHEMA,
        "index/shards.parquet": _formats.SHARDS_SCHEMA,
        "thumbnails/shard_*[0-9].parquet": _formats.META_SCHEMA,
        "thumbnails/shard_*[0-9].previews.parquet": _formats.PREVIEW_SCHEMA,
        "plan/blocks.parquet": _formats.BLOCKS_SCHEMA,
        "plan/block_pairs.parquet": _formats.BLOCK_PAIRS_SCHEMA,
        "plan/blocks/block_[0-9]*.parquet": _formats.BLOCKS_SCHEMA,
        "pairs/*.parquet": _formats.PAIR_SCHEMA,
    }
    for pattern, schema in expected.items():
        files = sorted(work.glob(pattern))
        assert files, pattern
        for path in files:
            assert pq.read_schema(path).remove_metadata().equals(schema), (path, pq.read_schema(path))
    size = fdp.validate_config(config)["compression_target"]
    for stack in work.glob("thumbnails/shard_*[0-9].npy"):
        thumbs = np.load(stack, mmap_mode="r")
        assert thumbs.dtype == np.uint8 and thumbs.shape[1:] == (size, size, 3)
    blocks = sorted(work.glob("plan/blocks/block_[0-9]*.parquet"))
    pairs = pq.read_table(work / "plan/block_pairs.parquet")
    compared = set(pairs.column("block_a").to_pylist() + pairs.column("block_b").to_pylist())
    assert compared  # a first run: every block is compared, with itself at least
    for rows in blocks:  # a compared block's thumbnails beside its rows, row for row
        assert rows.with_suffix(".npy").exists() == (int(rows.stem.split("_")[1]) in compared)
        if int(rows.stem.split("_")[1]) in compared:
            thumbs = np.load(rows.with_suffix(".npy"), mmap_mode="r")
            assert thumbs.dtype == np.uint8 and thumbs.shape == (pq.read_metadata(rows).num_rows, size, size, 3)
    assert sum(pq.read_metadata(p).num_rows for p in blocks) == pq.read_metadata(work / "plan/blocks.parquet").num_rows
    con = sqlite3.connect(tmp_path / "results" / "fast_diff.db")
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == _formats.USER_VERSION
    finally:
        con.close()
