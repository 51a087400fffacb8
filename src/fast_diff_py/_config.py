"""Validation of the workflow configuration against ``config.schema.json``.

A valid configuration is told by ``_plainly_valid``, which reads the schema's keywords
itself; jsonschema, whose import costs a small run a noticeable part of its time, judges
the rest and names what is wrong."""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError, FolderError

if TYPE_CHECKING:
    import jsonschema

__all__ = ["SCHEMA", "load_schema", "validate_config", "check_folders", "check_extensions"]


@functools.cache
def _parsed_schema() -> dict[str, Any]:
    # JSON, not YAML: a small run would spend a noticeable part of its time loading PyYAML
    return json.loads(Path(__file__).with_name("config.schema.json").read_text())


def load_schema() -> dict[str, Any]:
    """Return the JSON schema of the configuration (a fresh copy)."""
    return copy.deepcopy(_parsed_schema())


SCHEMA = load_schema()


def _with_defaults(validator_class: Any) -> Any:
    """A validator class that fills in the schema's defaults while it validates."""
    import jsonschema

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


@functools.cache
def _validator() -> Any:
    """jsonschema's validator of the schema, filling in its defaults (imported when needed:
    ``_plainly_valid`` tells a valid configuration without it)."""
    import jsonschema

    return _with_defaults(jsonschema.Draft202012Validator)(SCHEMA)


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "oneOf" and error.absolute_path:
        allowed = error.schema.get("description", "")
        return f"config key '{where}': {error.instance!r} is not allowed. {allowed}".strip()
    return f"config key '{where}': {error.message}"


def validate_config(config: dict[str, Any], *, check_paths: bool = True, check_plugins: bool = True) -> dict[str, Any]:
    """Validate ``config``, fill in defaults and return it (the same dict, changed in place).

    Parameters
    ----------
    config
        The configuration as read from YAML (or built by a command line).
    check_paths
        Also check that every folder of ``part_a`` and ``part_b`` exists.
    check_plugins
        Also check that the extension functions (``hash_fn``, ``cpu_diff``, ``gpu_diff``)
        can be imported.

    Raises
    ------
    ConfigError
        Naming every key whose value is unknown, of the wrong type or out of range.
    FolderError
        When a partition folder is missing.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"the configuration must be a mapping, not {type(config).__name__}")
    _coerce_strings(config, SCHEMA)
    _check_finite(config)
    if not _plainly_valid(config):
        errors = sorted(_validator().iter_errors(config), key=lambda e: list(e.absolute_path))
        if errors:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(_describe(e) for e in errors))
    second, first = config["second_loop"], config["first_loop"]
    if second["skip_matching_hash"] and not first["compute_hash"]:
        raise ConfigError(
            "config key 'second_loop.skip_matching_hash' is true but 'first_loop.compute_hash' "
            "is false: there are no hashes to match; set compute_hash: true"
        )
    if config["mirror"] and (config["cpu_diff"] or config["gpu_diff"]):
        raise ConfigError(
            "config key 'mirror' is true but a user difference function is set (cpu_diff or "
            "gpu_diff): mirror applies to the built-in difference only; compare mirror images "
            "in your function instead"
        )
    if config["crop_tolerance"] and (config["cpu_diff"] or config["gpu_diff"]):
        raise ConfigError(
            f"config key 'crop_tolerance' is {config['crop_tolerance']} but a user difference function is "
            "set (cpu_diff or gpu_diff): crop tolerance applies to the built-in difference only; set "
            "crop_tolerance: 0"
        )
    _check_memory(config)
    if check_paths:
        check_folders(config["part_a"], config["part_b"])
    if check_plugins:
        check_extensions(config)
    return config


# what a schema may say that _conforms does not read: annotations only
_ANNOTATIONS = frozenset({"$schema", "$comment", "title", "description", "default", "examples"})


class _Unsure(Exception):
    """A schema keyword or type name ``_conforms`` does not know: jsonschema decides."""


def _is_type(value: Any, name: str) -> bool:
    """JSON Schema's types as jsonschema's draft 2020-12 type checker tells them apart."""
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    if isinstance(value, bool):
        return False
    if name == "number":
        return isinstance(value, (int, float))
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    raise _Unsure(name)


def _equal(a: Any, b: Any) -> bool:
    """JSON equality, as ``enum`` and ``const`` compare: true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    return bool(a == b)


def _conforms(value: Any, schema: Any) -> bool:
    """Whether ``value`` is valid against ``schema``, filling in defaults on the way exactly
    where the validator of ``_with_defaults`` fills them in (the ``properties`` of every
    mapping); every keyword is read, as jsonschema reads them all. Raises ``_Unsure`` for a
    keyword it does not know."""
    if schema is True or schema is False:
        return schema
    ok = True
    for key, sub in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "type":
            ok &= any(_is_type(value, name) for name in ([sub] if isinstance(sub, str) else sub))
        elif key == "enum":
            ok &= any(_equal(value, each) for each in sub)
        elif key == "const":
            ok &= _equal(value, sub)
        elif key in ("minimum", "maximum"):
            if _is_type(value, "number"):
                ok &= value >= sub if key == "minimum" else value <= sub
        elif key == "minLength":
            ok &= not isinstance(value, str) or len(value) >= sub
        elif key == "minItems":
            ok &= not isinstance(value, list) or len(value) >= sub
        elif key == "pattern":
            ok &= not isinstance(value, str) or re.search(sub, value) is not None
        elif key == "items":
            if isinstance(value, list):
                ok &= all([_conforms(each, sub) for each in value])
        elif key == "properties":
            if isinstance(value, dict):
                for name, prop in sub.items():
                    if "default" in prop and name not in value:
                        value[name] = copy.deepcopy(prop["default"])
                ok &= all([_conforms(value[name], prop) for name, prop in sub.items() if name in value])
        elif key == "additionalProperties":
            if isinstance(value, dict):
                extra = [name for name in value if name not in schema.get("properties", {})]
                ok &= all([_conforms(value[name], sub) for name in extra])
        elif key == "required":
            ok &= not isinstance(value, dict) or all(name in value for name in sub)
        elif key == "anyOf":
            ok &= any([_conforms(value, option) for option in sub])
        elif key == "oneOf":
            ok &= sum(bool(_conforms(value, option)) for option in sub) == 1
        else:
            raise _Unsure(key)
    return ok


def _plainly_valid(config: dict[str, Any]) -> bool:
    """Whether ``config`` is valid against the schema, told without jsonschema (whose import
    costs a small run a noticeable part of its time), its defaults filled in as
    ``_validator()`` fills them; False where it is not valid or the schema says something
    ``_conforms`` does not read, with ``config`` left as it was: jsonschema then judges it
    and says what is wrong. Tested to agree with jsonschema."""
    before = copy.deepcopy(config)
    try:
        if _conforms(config, SCHEMA):
            return True
    except _Unsure:
        pass
    config.clear()
    config.update(before)
    return False


_SCALARS = {"number": (int, float), "integer": (int,), "boolean": (bool,), "null": (type(None),)}


def _schema_types(schema: dict[str, Any]) -> set[str]:
    types = schema.get("type", [])
    found = set([types] if isinstance(types, str) else types)
    for option in schema.get("oneOf", []) + schema.get("anyOf", []):
        found |= _schema_types(option)
    return found


def _scalar(text: str) -> Any:
    """``text`` as an int, a float (YAML's ``.nan`` and ``.inf`` included), ``true``/``false``
    or ``null``; else the text itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "~"):
        return None
    if low in (".nan", ".inf", "+.inf", "-.inf"):
        return float(low.replace(".", ""))
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def _coerce_strings(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Turn strings into the numbers, booleans or nulls the schema asks for, in place.

    ``snakemake --config 'second_loop={"diff_threshold": 15}'`` hands nested values over
    as strings (Snakemake reads them with YAML's BaseLoader); a string where the schema allows
    no string is read as a scalar (``_scalar``), and kept as it was unless that gives an
    allowed type; a string where the schema asks for a list of strings is that list of one."""
    for key, sub in schema.get("properties", {}).items():
        if key not in config:
            continue
        value = config[key]
        if isinstance(value, dict):
            _coerce_strings(value, sub)
            continue
        types = _schema_types(sub)
        if not isinstance(value, str) or "string" in types:
            continue
        if types == {"array"} and "string" in _schema_types(sub.get("items", {})):
            config[key] = [value]  # part_a=/photos: the one folder, file name or path given
            continue
        parsed = _scalar(value)
        allowed = tuple(t for name in types for t in _SCALARS.get(name, ()))
        if isinstance(parsed, allowed) and not (isinstance(parsed, bool) and bool not in allowed):
            config[key] = parsed


def _check_finite(value: Any, where: str = "") -> None:
    """Raise ConfigError for NaN or an infinity anywhere in the configuration (JSON schema
    comparisons let NaN through: every comparison with it is false)."""
    if isinstance(value, dict):
        for key, sub in value.items():
            _check_finite(sub, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _check_finite(sub, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{where}': {value!r} is not a finite number")


# what one job may hold before the check below refuses the configuration
JOB_MEMORY_LIMIT = 64 << 30


def _check_memory(config: dict[str, Any]) -> None:
    from ._decisions import job_memory

    for job, need in job_memory(config).items():
        if need > JOB_MEMORY_LIMIT:
            key = "shard_size" if job == "make_thumbnails" else "block_size"
            raise ConfigError(
                f"config keys 'compression_target' ({config['compression_target']}) and '{key}' "
                f"({config[key]}): a {job} job would hold {need / 2**30:.1f} GiB of thumbnails, "
                f"more than {JOB_MEMORY_LIMIT >> 30} GiB; lower {key} or compression_target"
            )


def check_extensions(config: dict[str, Any]) -> None:
    """Raise ConfigError unless every ``module:function`` extension can be imported here."""
    from ._plugins import resolve

    for key in ("hash_fn", "cpu_diff", "gpu_diff"):
        if config.get(key) and isinstance(config[key], str):
            try:
                resolve(config[key])
            except ConfigError as exc:
                raise ConfigError(f"config key '{key}': {exc} (is its module on PYTHONPATH?)") from None


def check_folders(part_a: list[str], part_b: list[str]) -> None:
    """Raise FolderError unless every partition folder exists and none is listed twice."""
    seen: dict[str, str] = {}
    for name, folders in (("part_a", part_a), ("part_b", part_b)):
        for folder in folders:
            if not os.path.isdir(folder):
                what = "does not exist" if not os.path.exists(folder) else "is not a folder"
                raise FolderError(f"config key '{name}': folder {folder!r} {what}")
            real = os.path.realpath(folder)
            if real in seen:
                raise FolderError(f"config key '{name}': folder {folder!r} is already listed in {seen[real]}")
            seen[real] = name
    for name, folders in (("part_a", part_a), ("part_b", part_b)):
        for folder in folders:
            inside = Path(os.path.realpath(folder))
            for other, where in seen.items():
                if Path(other) != inside and Path(other) in inside.parents:
                    raise FolderError(
                        f"config key '{name}': folder {folder!r} lies inside {other!r} "
                        f"({where}); its files would be indexed twice"
                    )
