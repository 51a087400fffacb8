"""The references generated from the definitions they describe, so the two never disagree:
the configuration (config/README.md, from the schema) and the files between the stages
(docs/formats.md, from ``_formats``). Regenerate with
``python -m fast_diff_py._docs > config/README.md`` and
``python -m fast_diff_py._docs formats > docs/formats.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ._config import load_schema

__all__ = ["config_reference", "formats_reference"]

# the configuration shipped beside the workflow, whose values the table names where they
# differ from the defaults
SHIPPED = Path(__file__).resolve().parents[2] / "config" / "config.yaml"

_HEAD = """# Configuration

`config/config.yaml` is read by `snakemake` (replace it with `--configfile F`, or set single
values with `--config key=value`). It is validated against
`workflow/schemas/config.schema.json` before any job runs: an unknown key, a wrong type, a
value out of range or a missing folder stops the run with a message naming the key.
Key names and meanings are fast-diff-py 1.0.4's. The default applies where a key is left
out; where the shipped `config/config.yaml` sets another value, the table says so.

| key | default | meaning |
|---|---|---|
"""

_TAIL = """
How the work is run (cores, threads per job, memory, GPU, cluster partition) is not
configuration: it comes from the command line (`--cores`, `--set-threads`,
`--set-resources`) and the profiles: `workflow/profiles/default` for local runs,
`profiles/slurm` and `profiles/slurm-gpu` for clusters.
"""


def _rows(props: dict, shipped: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, spec in props.items():
        name = prefix + key
        text = " ".join(spec["description"].split())
        if spec.get("type") == "object":
            out.append(f"| `{name}` | | {text} |")
            out.extend(_rows(spec["properties"], shipped.get(key) or {}, name + "."))
            continue
        if "default" not in spec:
            default = "(required)"
        elif key == "allowed_file_extensions":
            default = f"fast-diff-py's {len(spec['default'])} image extensions"
        else:
            default = f"`{json.dumps(spec['default'])}`"
        if key in shipped and "default" in spec and shipped[key] != spec["default"]:
            default += f" (config.yaml: `{json.dumps(shipped[key])}`)"
        limits = [f"{w} {spec[w]}" for w in ("minimum", "maximum") if w in spec]
        if "enum" in spec:
            limits.append("one of " + ", ".join(spec["enum"]))
        extra = f" ({'; '.join(limits)})" if limits else ""
        out.append(f"| `{name}` | {default} | {text}{extra} |")
    return out


def config_reference() -> str:
    """config/README.md as the schema describes it."""
    shipped = yaml.safe_load(SHIPPED.read_text()) if SHIPPED.is_file() else {}
    return _HEAD + "\n".join(_rows(load_schema()["properties"], shipped)) + "\n" + _TAIL


_FORMATS_HEAD = """# The files between the stages

Generated from `src/fast_diff_py/_formats.py` (`python -m fast_diff_py._docs formats`); the
writers and readers take their schemas from there. Every stage writes its files aside and
renames them into place, so a file that exists is whole. Keys are `directory.key` of the
database: one per path, in walk order.

## Where they are

```
{tree}
```

The thumbnails of a shard (`thumbnails/shard_<s>.npy`) are one NumPy array of
N x S x S x 3 `uint8` (S = `compression_target`, BGR), row `thumb_row` for each decoded file
of the shard. `folders.state` is a SHA-1 of a stat walk of the folders (each path with its
identity, size and times), rewritten only when they changed. `database.json` names the
database that `db_path` holds (path, size, modification time, inode, device, user_version),
so that a database changed or replaced by anything else is never taken as this run's.
"""

_FORMATS_FILES = {
    "ROOTS_SCHEMA": "`index/roots.parquet`: the searched folders (`dir_index_lookup`)",
    "INDEX_SCHEMA": "`index/shard_<s>.parquet`: one row per path found",
    "SHARD_FILES_SCHEMA": "`index/shard_<s>.files.parquet`: the index shard's rows without keys (as the last "
    "index had them, for a shard kept from it), a thumbnail job's input",
    "SHARDS_SCHEMA": "`index/shards.parquet`: the index's shards, by their first key",
    "FILE_LIST_SCHEMA": "`file_list` (given instead of folders): one row per file",
    "STORAGE_LISTING_SCHEMA": "`storage_listing.parquet` (photos in a Snakemake storage only): one row per "
    "file of the searched folders, listed where the DAG is built; the index job's input",
    "META_SCHEMA": "`thumbnails/shard_<s>.parquet`: one row per path of the shard, in its order",
    "PREVIEW_SCHEMA": "`thumbnails/shard_<s>.previews.parquet`: one row per decoded file, the gallery's thumbnails",
    "CROP_SUMS_SCHEMA": "`thumbnails/shard_<s>.crops.parquet` (`crop_tolerance` only): one row per decoded "
    "file, beside `shard_<s>.crops.npy` (decoded files x 3 crops x S x S x 3)",
    "DIGEST_SCHEMA": "`digests/shard_<s>.parquet` (`diff_threshold: 0` only): one row per decoded file",
    "BLOCKS_SCHEMA": "`plan/blocks.parquet`: one row per decoded file, by block and key; and each block's rows "
    "in `plan/blocks/block_<b>.parquet`, beside its thumbnails `plan/blocks/block_<b>.npy` (rows x S x S x 3) "
    "and, with `crop_tolerance`, crops `plan/blocks/block_<b>.crops.npy` (rows x 3 x S x S x 3), in the same order",
    "BLOCK_PAIRS_SCHEMA": "`plan/block_pairs.parquet`: the pairs of blocks that can hold a match",
    "PAIR_SCHEMA": "`pairs/<a>.parquet` (also `pairs_gpu/`, and `hash_pairs.parquet`): the pairs "
    "within the threshold found by the compare job of block `a`, by (key_a, key_b)",
}


def formats_reference() -> str:
    """docs/formats.md: every file between the stages, its columns, types and meanings, and
    the database's tables."""
    from . import _db, _formats

    tree = _formats.__doc__.split("::", 1)[1].strip("\n")
    out = [_FORMATS_HEAD.format(tree="\n".join(line[4:] for line in tree.splitlines()))]
    for name, title in _FORMATS_FILES.items():
        schema = getattr(_formats, name)
        meanings = _formats.COLUMN_MEANINGS[name]
        out.append(f"## {title}\n\n`{name}`\n\n| column | type | meaning |\n|---|---|---|")
        out += [f"| `{f.name}` | {f.type} | {meanings[f.name]} |" for f in schema]
        out.append("")
    out.append(
        "## The database (`db_path`)\n\n"
        f"SQLite, `PRAGMA user_version = {_formats.USER_VERSION}` ({_formats.USER_VERSION:#x}); "
        "fast-diff-py's four tables and fast-diff's `file_state`:\n\n"
        f"```sql\n{_db.TABLES_SQL.strip()}\n{_db.INDEXES_SQL.strip()}\n```\n"
    )
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    print(formats_reference() if sys.argv[1:] == ["formats"] else config_reference(), end="")
