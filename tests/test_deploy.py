"""fast-diff deployed the ways Snakemake users deploy it: a wheel installed into a fresh
environment and run from outside the checkout, the workflow used as a module from a local
path and from a git repository, and snakedeploy finding the configuration and profiles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import REPO, db_rows, run_workflow
from packaging.utils import canonicalize_name
from packaging.version import Version

import fast_diff_py as fdp

IMAGES = REPO / "examples" / "images"


def checkout_files() -> list[str]:
    """The files a clone of this repository has (tracked, and new ones not ignored)."""
    if not (REPO / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    return [name for name in out.decode().split("\0") if name and (REPO / name).exists()]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A git repository with this checkout's files, tagged with the package's version, as a
    user would clone it."""
    repo = tmp_path_factory.mktemp("fast-diff-repo")
    for name in checkout_files():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target, follow_symlinks=False)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "release"], ["tag", f"v{fdp.__version__}"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    return repo


@pytest.fixture(scope="module")
def reference_db(tmp_path_factory) -> dict:
    """The database of a run of the checkout's workflow over the example images."""
    work = tmp_path_factory.mktemp("reference")
    run_workflow(work, {"part_a": [str(IMAGES)]})
    return db_rows(work / "results" / "fast_diff.db")


def test_version_is_one_definition():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"]
    from importlib.metadata import version

    assert version("fast-diff") == fdp.__version__


def test_the_version_is_tagged():
    # a release is a tag v<version> on the commit that set the version
    if not (REPO / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout")
    tags = subprocess.run(["git", "tag", "--list", "v*"], cwd=REPO, capture_output=True, text=True).stdout.split()
    if not tags:
        pytest.skip("a clone without tags (git clone --no-tags, or a shallow CI checkout)")
    assert f"v{fdp.__version__}" in tags


def write_user_workflow(folder: Path, snakefile_source: str) -> Path:
    """A user's own workflow that uses fast-diff as a module, as snakedeploy writes it."""
    (folder / "config").mkdir(parents=True)
    (folder / "config" / "config.yaml").write_text(yaml.safe_dump({"part_a": [str(IMAGES)]}))
    (folder / "Snakefile").write_text(
        'configfile: "config/config.yaml"\n\n\n'
        f"module fast_diff:\n    snakefile:\n        {snakefile_source}\n    config:\n        config\n\n\n"
        "use rule * from fast_diff as fast_diff_*\n"
    )
    return folder


def run_user_workflow(folder: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_workflow_as_a_module_from_a_local_path(tmp_path, reference_db):
    user = write_user_workflow(tmp_path / "mine", repr(str(REPO / "workflow" / "Snakefile")))
    run_user_workflow(user)
    assert db_rows(user / "results" / "fast_diff.db") == reference_db


def test_workflow_as_a_module_from_a_local_git_repository(tmp_path, clone, reference_db):
    source = f'gitfile({str(clone)!r}, path="workflow/Snakefile", tag="v{fdp.__version__}")'
    user = write_user_workflow(tmp_path / "mine", source)
    # Snakemake 9 cannot check a git-sourced rule's code for changes (LocalGitFile.join):
    # README, "Deploying", gives this setting for modules from a local git repository
    run_user_workflow(user, "--rerun-triggers", "mtime", "params", "input", "software-env")
    assert db_rows(user / "results" / "fast_diff.db") == reference_db


def test_snakedeploy_finds_config_profiles_and_license(tmp_path, clone):
    snakedeploy = shutil.which("snakedeploy") or str(Path(sys.executable).parent / "snakedeploy")
    if not os.path.exists(snakedeploy):
        pytest.skip("snakedeploy is not installed (pip install -e '.[test]')")
    dest = tmp_path / "deployed"
    proc = subprocess.run(
        [snakedeploy, "deploy-workflow", str(clone), str(dest), "--tag", f"v{fdp.__version__}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("config/config.yaml", "profiles/slurm/config.yaml", "profiles/slurm-gpu/config.yaml", "LICENSE"):
        assert (dest / name).is_file(), name
    assert "module " in (dest / "workflow" / "Snakefile").read_text()


def test_workflow_catalog_metadata():
    meta = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    usage = meta["usage"]
    assert usage["mandatory-flags"]["flags"]
    assert usage["software-stack-deployment"]["conda"] is True
    assert usage["report"] is True


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout, built as ``pip wheel .`` builds it."""
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = wheels.glob("fast_diff-*.whl")
    assert built.name.startswith(f"fast_diff-{fdp.__version__}-")
    return built


@pytest.mark.parametrize("env_file", ["cpu.yaml", "gpu.yaml"])
def test_conda_environments_resolve_with_the_package(tmp_path, wheel, env_file):
    """Every pip requirement of a job environment, the package included, resolves together
    at exactly the pinned versions (conda itself is not run here: the jobs' packages are
    the pip part; conda adds only python and pip)."""
    env = yaml.safe_load((REPO / "workflow" / "envs" / env_file).read_text())
    (pip_part,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert f"fast-diff=={fdp.__version__}" in pip_part
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
            "--report", str(report), "--find-links", str(wheel.parent), *pip_part,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    installs = json.loads(report.read_text())["install"]
    resolved = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}
    for item in pip_part:
        name, _, version = item.partition("==")
        got = resolved[canonicalize_name(name)]
        # a local build tag (torch's +cpu on a machine without CUDA) is the same release
        assert Version(got).public == version, (name, got, version)


def test_wheel_runs_outside_the_checkout(tmp_path, wheel, reference_db):
    """pip wheel, install into a fresh environment, and run difpy, fastdiffpy, the API and
    the workflow from a folder that is not the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / "bin"
    install = subprocess.run(
        [bin_dir / "python", "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, install.stderr[-3000:]

    outside = tmp_path / "elsewhere"
    shutil.copytree(IMAGES, outside / "imgs")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"

    def run(*cmd: str | Path) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(c) for c in cmd], cwd=outside, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        return proc

    where = run(bin_dir / "python", "-c", "import fast_diff_py; print(fast_diff_py.__file__)").stdout
    assert str(venv) in where and str(REPO) not in where
    snakefile = run(bin_dir / "python", "-m", "fast_diff_py", "snakefile").stdout.strip()
    assert snakefile.startswith(str(venv))

    # the workflow itself, from the installed package
    (outside / "config.yaml").write_text(yaml.safe_dump({"part_a": [str(IMAGES)]}))
    run(bin_dir / "snakemake", "--snakefile", snakefile, "--cores", "2", "--configfile", "config.yaml")
    assert db_rows(outside / "results" / "fast_diff.db") == reference_db

    # the command lines and the API
    run(bin_dir / "difpy", "-D", "imgs", "-Z", "difpy_out")
    assert list((outside / "difpy_out").glob("difPy_*_results.json"))
    run(bin_dir / "fastdiffpy", "-a", "imgs", "-t", "progress")
    assert (outside / "progress" / "fast_diff_py.db").is_file()
    api = (
        "from fast_diff_py import Config, FastDifPy\n"
        "fdo = FastDifPy(config=Config(part_a=['imgs'], db_path='api.db', config_path='api/task.json'))\n"
        "fdo.full_index(); fdo.first_loop(); fdo.second_loop(); fdo.commit()\n"
        "print(len(list(fdo.get_diff_pairs(200))))\n"
    )
    assert run(bin_dir / "python", "-c", api).stdout.strip().splitlines()[-1] == "3"
