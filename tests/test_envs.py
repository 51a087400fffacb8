"""The pinned conda environments parse, pin everything the jobs import, and agree with
pyproject.toml; every rule that runs code names one."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement

ENVS = sorted((REPO / "workflow" / "envs").glob("*.yaml"))
IMPORTED = {
    "numpy",
    "opencv-python-headless",
    "simplejpeg",
    "pillow-heif",
    "pillow",
    "pyarrow",
    "polars",
    "pyyaml",
    "jsonschema",
}


def pins(env: dict) -> dict[str, str]:
    out = {}
    for dep in env["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            name, sep, version = re.split(r"(==|=)", item, maxsplit=1) if "=" in item else (item, "", "")
            out[name.strip().lower()] = version.strip()
    return out


def test_envs_exist_and_parse():
    assert {p.name for p in ENVS} >= {"cpu.yaml", "gpu.yaml"}
    for path in ENVS:
        env = yaml.safe_load(path.read_text())
        assert env["channels"] == ["conda-forge", "nodefaults"], path.name
        for name, version in pins(env).items():
            assert version or name == "pip", f"{path.name}: {name} is not pinned"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_envs_pin_what_the_jobs_import_and_agree_with_pyproject(path):
    env = pins(yaml.safe_load(path.read_text()))
    assert IMPORTED <= set(env), f"{path.name} lacks {IMPORTED - set(env)}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    required = [Requirement(r) for r in project["dependencies"]]
    required += [Requirement(r) for r in project["optional-dependencies"]["gpu"]]
    for req in required:
        name = req.name.lower()
        if name in env:
            assert req.specifier.contains(env[name], prereleases=True), (
                f"{path.name} pins {name}=={env[name]}, pyproject asks {req.specifier}"
            )
    assert ("torch" in env) == (path.name == "gpu.yaml")
    assert env["python"].startswith("3.11")


def test_every_rule_that_runs_code_names_an_environment():
    text = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    rules = re.split(r"\n(?=(?:rule|checkpoint) )", "\n" + text)
    for rule in rules:
        if "script:" in rule or "shell:" in rule:
            assert "conda:" in rule, rule.splitlines()[0]


PROFILES = {
    "default": REPO / "workflow" / "profiles" / "default",
    "slurm": REPO / "profiles" / "slurm",
    "slurm-gpu": REPO / "profiles" / "slurm-gpu",
}


def dry_run(tmp_path, *args: str):
    import subprocess
    import sys

    (tmp_path / "imgs").mkdir(exist_ok=True)
    (tmp_path / "config.yaml").write_text(f"part_a: ['{tmp_path / 'imgs'}']\n")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "workflow" / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(tmp_path / "config.yaml"),
            "--dry-run",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profiles_parse(tmp_path, profile):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    gpu = ["--set-resources", "compare_blocks_gpu:slurm_partition=gpu"] if profile == "slurm-gpu" else []
    proc = dry_run(tmp_path, "--profile", str(PROFILES[profile]), *gpu)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_cluster_profiles_let_threads_decide_the_cpus():
    # snakemake-executor-plugin-slurm asks for cpus_per_task when a job has it, whatever its
    # threads: a default of it would give every job one CPU
    for name in ("slurm", "slurm-gpu"):
        profile = yaml.safe_load((PROFILES[name] / "config.yaml").read_text())
        for resources in [profile["default-resources"], *profile.get("set-resources", {}).values()]:
            assert "cpus_per_task" not in resources, name
            assert "mem_mb" not in resources or "attempt" in str(resources["mem_mb"]), name
        assert profile["retries"] >= 1


def test_gpu_profile_refuses_to_run_without_a_gpu_partition(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    proc = dry_run(tmp_path, "--profile", str(PROFILES["slurm-gpu"]), "--config", "compare={gpu_jobs: true}")
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert "set slurm_partition under set-resources: compare_blocks_gpu:" in said
    assert "--set-resources compare_blocks_gpu:slurm_partition=" in said


def test_jobs_ask_for_more_memory_and_time_on_retry():
    import fast_diff_py as fdp

    config = fdp.validate_config({"part_a": ["."]})
    assert fdp.thumbnail_runtime_min(config, 4, attempt=2) == 2 * fdp.thumbnail_runtime_min(config, 4)
    assert fdp.thumbnail_runtime_min(config, 1) >= fdp.thumbnail_runtime_min(config, 4)
    assert fdp.compare_runtime_min(config, 50, 4) > fdp.compare_runtime_min(config, 1, 4)
    assert fdp.compare_runtime_min(config, 1, 4, attempt=3) == 3 * fdp.compare_runtime_min(config, 1, 4)


def test_default_profile_is_found_from_the_repository_root(tmp_path):
    # Snakemake looks for profiles/default next to the Snakefile: the README's plain
    # `snakemake --cores 2` must get rerun-incomplete and the rest of workflow/profiles/default
    import subprocess
    import sys

    (tmp_path / "imgs").mkdir()
    (tmp_path / "config.yaml").write_text(f"part_a: ['{tmp_path / 'imgs'}']\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--directory",
            str(tmp_path),
            "--configfile",
            str(tmp_path / "config.yaml"),
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "workflow specific profile workflow/profiles/default" in proc.stdout + proc.stderr
