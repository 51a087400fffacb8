"""The schema stops bad configurations before any work, naming the key."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
from conftest import run_workflow
from hypothesis import event, given, settings
from hypothesis import strategies as st

from fast_diff_py import ConfigError, FolderError, validate_config
from fast_diff_py._config import SCHEMA


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a").mkdir()
    return str(tmp_path / "a")


def test_defaults_are_filled(folder):
    cfg = validate_config({"part_a": [folder]})
    assert cfg["compression_target"] == 64
    assert cfg["second_loop"]["diff_threshold"] == 200
    assert cfg["first_loop"] == {"compute_hash": False, "shift_amount": 4}
    assert cfg["part_b"] == [] and cfg["recursive"] is True
    assert cfg["db_path"] == "results/fast_diff.db"
    assert ".jpg" in cfg["allowed_file_extensions"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": 1}, "Additional properties are not allowed ('colour'"),
        ({"recursive": "yes"}, "config key 'recursive': 'yes' is not of type 'boolean'"),
        ({"compression_target": 1}, "config key 'compression_target': 1 is less than the minimum"),
        ({"second_loop": {"diff_threshold": -1}}, "config key 'second_loop.diff_threshold'"),
        ({"second_loop": {"match_aspect_by": 0.5}}, "config key 'second_loop.match_aspect_by': 0.5"),
        ({"first_loop": {"shift_amount": 9}}, "config key 'first_loop.shift_amount': 9"),
        ({"first_loop": {"hash": True}}, "('hash' was unexpected)"),
        ({"allowed_file_extensions": ["jpg"]}, "config key 'allowed_file_extensions.0'"),
        ({"part_a": []}, "config key 'part_a'"),
        ({"thumbnail_method": "lanczos"}, "'lanczos' is not one of ['quality', 'area', 'compat']"),
    ],
)
def test_bad_values_are_named(folder, change, message):
    cfg = {"part_a": [folder], **change}
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert message in str(info.value)


def test_missing_part_a():
    with pytest.raises(ConfigError, match="'part_a' is a required property"):
        validate_config({})


def test_hash_skip_needs_hashes(folder):
    with pytest.raises(ConfigError, match="compute_hash"):
        validate_config({"part_a": [folder], "second_loop": {"skip_matching_hash": True}})


def test_match_aspect_values(folder):
    for ok in (None, 0, 1, 1.5):
        validate_config({"part_a": [folder], "second_loop": {"match_aspect_by": ok}})


def test_folders_must_exist_and_not_overlap(tmp_path, folder):
    with pytest.raises(FolderError, match=r"config key 'part_a': folder '.*nope' does not exist"):
        validate_config({"part_a": [str(tmp_path / "nope")]})
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(FolderError, match="is not a folder"):
        validate_config({"part_a": [str(tmp_path / "f.txt")]})
    (tmp_path / "a" / "inner").mkdir()
    with pytest.raises(FolderError, match="lies inside"):
        validate_config({"part_a": [folder], "part_b": [folder + "/inner"]})
    with pytest.raises(FolderError, match="already listed in part_a"):
        validate_config({"part_a": [folder], "part_b": [folder]})


def test_workflow_refuses_bad_config_before_any_job(tmp_path, folder):
    proc = run_workflow(tmp_path / "w", {"part_a": [folder], "second_loop": {"diff_threshold": "high"}}, check=False)
    assert proc.returncode != 0
    assert "second_loop.diff_threshold" in proc.stderr + proc.stdout
    assert not (tmp_path / "w" / "results").exists()


def test_every_key_is_documented():
    from conftest import REPO

    from fast_diff_py import load_schema
    from fast_diff_py._docs import config_reference

    doc = (REPO / "config" / "README.md").read_text()
    assert doc == config_reference(), "regenerate: python -m fast_diff_py._docs > config/README.md"
    example = (REPO / "config" / "config.yaml").read_text()
    for key, spec in load_schema()["properties"].items():
        assert f"`{key}`" in doc
        assert "description" in spec and ("default" in spec or key == "part_a")
        for sub in spec.get("properties", {}):
            assert f"`{key}.{sub}`" in doc
            assert sub in example
        assert key in example or key in ("hash_fn", "cpu_diff")


def test_nested_values_from_the_command_line_are_read_as_their_types(tmp_path):
    # snakemake --config 'second_loop={"diff_threshold": 15}' hands nested values over as strings
    from fast_diff_py import ConfigError, validate_config

    cfg = validate_config(
        {
            "part_a": [str(tmp_path)],
            "first_loop": {"compute_hash": "true", "shift_amount": "2"},
            "second_loop": {"diff_threshold": "15", "match_aspect_by": "null"},
        }
    )
    assert cfg["second_loop"]["diff_threshold"] == 15 and cfg["second_loop"]["match_aspect_by"] is None
    assert cfg["first_loop"] == {"compute_hash": True, "shift_amount": 2}
    with pytest.raises(ConfigError, match=r"'second_loop.diff_threshold': -1 is less than the minimum of 0"):
        validate_config({"part_a": [str(tmp_path)], "second_loop": {"diff_threshold": "-1"}})
    with pytest.raises(ConfigError, match=r"'first_loop.shift_amount': 'true' is not of type 'integer'"):
        validate_config({"part_a": [str(tmp_path)], "first_loop": {"shift_amount": "true"}})
    with pytest.raises(ConfigError, match="not a finite number"):
        validate_config({"part_a": [str(tmp_path)], "second_loop": {"diff_threshold": ".nan"}})
    # a string key stays a string, whatever it looks like
    assert validate_config({"part_a": [str(tmp_path)], "db_path": "15"})["db_path"] == "15"
    # part_a=/photos: one folder where a list is asked for is that list of one
    one = validate_config({"part_a": str(tmp_path), "ignore_names": ".thumbnails", "part_b": []})
    assert one["part_a"] == [str(tmp_path)] and one["ignore_names"] == [".thumbnails"]
    with pytest.raises(ConfigError, match=r"'part_a'.*does not exist"):
        validate_config({"part_a": str(tmp_path / "nowhere")})


def test_the_threshold_can_be_set_on_the_command_line(tmp_path, dup_folder):
    from conftest import run_workflow

    proc = run_workflow(
        tmp_path / "w", {"part_a": [str(dup_folder["root"])]}, "-n", "--config", 'second_loop={"diff_threshold": 15}'
    )
    assert "index_files" in proc.stdout + proc.stderr


def _canon(value):
    """A value's exact form (key order aside; 1, 1.0 and True apart)."""
    if isinstance(value, dict):
        return sorted((k, _canon(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_canon(v) for v in value]
    return (type(value).__name__, value)


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3000),
    st.floats(-10, 2000, allow_nan=False),
    st.sampled_from(["", "x", ".jpg", "jpg", "*", "auto", "quality", "numpy", "mod:fn", "a.b:c_d", "1x:y", "/tmp"]),
    st.lists(st.sampled_from([".png", "*", "png", 3, None, "/p"]), max_size=3),
    st.dictionaries(st.sampled_from(["x", "diff_threshold"]), st.integers(-1, 3), max_size=1),
)


def _valid_ish(schema: dict):
    """Values the schema may accept: its default, its enum, numbers at and near its bounds,
    mappings and lists of such values."""
    options = []
    if "default" in schema:
        options.append(st.just(schema["default"]))
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if "const" in schema:
        options.append(st.just(schema["const"]))
    for bound in ("minimum", "maximum"):
        if bound in schema:
            v = schema[bound]
            options.append(st.sampled_from([v, v + 1, v - 1, v + 0.5, float(v)]))
    if "properties" in schema:
        options.append(_mapping(schema))
    if "items" in schema:
        options.append(st.lists(_valid_ish(schema["items"]), max_size=3))
    for option in schema.get("oneOf", []) + schema.get("anyOf", []):
        options.append(_valid_ish(option))
    types = schema.get("type", [])
    for name in [types] if isinstance(types, str) else types:
        options.append(
            {"null": st.none(), "boolean": st.booleans(), "string": st.just("mod:fn")}.get(name, st.nothing())
        )
    return st.one_of(options) if options else _JUNK


def _mapping(schema: dict, junk: bool = False):
    """Mappings of some of the schema's keys; with ``junk``, any value may be junk."""
    props = schema["properties"].items()
    optional = {name: st.one_of(_valid_ish(sub), _JUNK) if junk else _valid_ish(sub) for name, sub in props}
    return st.fixed_dictionaries({}, optional=optional)


@settings(max_examples=600, deadline=None)
@given(
    config=_mapping(SCHEMA) | _mapping(SCHEMA, junk=True),
    part_a=st.sampled_from([["/photos"], [], "/photos", None, ["/a", "/b"]]),
    extra=st.booleans(),
)
def test_the_plain_check_agrees_with_jsonschema(config, part_a, extra):
    """The check that spares a run jsonschema's import says valid exactly where jsonschema
    does, fills in the same defaults, and leaves what it rejects as it was."""
    from fast_diff_py._config import _plainly_valid, _validator

    if part_a is not None:
        config["part_a"] = part_a
    if extra:
        config["unknown_key"] = 1
    fast, slow = copy.deepcopy(config), copy.deepcopy(config)
    valid = _plainly_valid(fast)
    errors = list(_validator().iter_errors(slow))
    event("valid" if valid else "invalid")
    assert valid == (not errors), errors
    assert _canon(fast) == _canon(slow if valid else config)


def test_a_valid_configuration_is_checked_without_jsonschema(tmp_path):
    """jsonschema is imported to say what is wrong, not to find that nothing is."""
    code = (
        "import sys; from fast_diff_py._config import validate_config; "
        f"validate_config({{'part_a': [{str(tmp_path)!r}], 'second_loop': {{'diff_threshold': '15'}}}}); "
        "print('jsonschema' in sys.modules); "
        f"validate_config({{'part_a': [{str(tmp_path)!r}], 'rotate': 3}})"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.splitlines() == ["False"]
    assert "config key 'rotate': 3 is not of type 'boolean'" in done.stderr


def test_a_keyword_the_plain_check_does_not_read_goes_to_jsonschema(monkeypatch):
    """A schema keyword ``_conforms`` does not know: no verdict of its own, the configuration
    left as it was (defaults not filled in), for jsonschema to judge."""
    from fast_diff_py import _config

    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["compression_target"]["multipleOf"] = 2
    monkeypatch.setattr(_config, "SCHEMA", schema)
    config = {"part_a": ["/photos"], "compression_target": 64}
    assert not _config._plainly_valid(config)
    assert config == {"part_a": ["/photos"], "compression_target": 64}
    with pytest.raises(_config._Unsure, match="multipleOf"):
        _config._conforms(64, {"multipleOf": 2})
    with pytest.raises(_config._Unsure, match="uint8"):
        _config._conforms(64, {"type": "uint8"})
