"""The configuration reference (config/README.md), generated from the schema so the two
never disagree. Regenerate with ``python -m fast_diff_py._docs > config/README.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ._config import load_schema

__all__ = ["config_reference"]

# the configuration shipped beside the workflow, whose values the table names where they
# differ from the defaults
SHIPPED = Path(__file__).resolve().parents[2] / "config" / "config.yaml"

_HEAD = """# Configuration

`config/config.yaml` is read by `snakemake` (replace it with `--configfile F`, or set single
values with `--config key=value`). It is validated against
`workflow/schemas/config.schema.yaml` before any job runs: an unknown key, a wrong type, a
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


if __name__ == "__main__":
    print(config_reference(), end="")
