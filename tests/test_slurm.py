"""The workflow submitted to a real (single-node, local) SLURM through the executor plugin
gives the same database as a local run."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import REPO, db_rows, run_workflow

SCRIPT = REPO / "tests" / "slurm" / "local-slurm.sh"
PROFILE = REPO / "tests" / "slurm" / "profile"


@pytest.fixture(scope="module")
def slurm():
    missing = [c for c in ("slurmctld", "slurmd", "sbatch", "squeue", "munged") if not shutil.which(c)]
    if missing:
        reason = f"SLURM is not installed here (missing {', '.join(missing)}); run {SCRIPT} install"
        print(reason)
        pytest.skip(reason)
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
    already_up = subprocess.run([str(SCRIPT), "status"], capture_output=True).returncode == 0
    start = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True)
    if start.returncode != 0:
        reason = f"local SLURM did not start: {start.stderr.strip()[-500:]}"
        print(reason)
        pytest.skip(reason)
    yield
    if not already_up:  # leave a cluster that the caller started running
        subprocess.run([str(SCRIPT), "stop"], capture_output=True)


def test_slurm_run_equals_local_run(tmp_path, slurm):
    images = tmp_path / "imgs"
    shutil.copytree(REPO / "examples" / "images", images)
    config = {
        "part_a": [str(images)],
        "second_loop": {"diff_threshold": 400},
        "first_loop": {"compute_hash": True, "shift_amount": 0},
    }
    run_workflow(tmp_path / "local", config)
    workdir = tmp_path / "cluster"
    workdir.mkdir()
    (workdir / "config.yaml").write_text((tmp_path / "local" / "config.yaml").read_text())
    # Snakemake may ignore SIGTERM while it waits on the cluster: bound it with SIGINT
    proc = subprocess.run(
        [
            "timeout",
            "-s",
            "INT",
            "900",
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "workflow" / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            str(workdir / "config.yaml"),
            "--profile",
            str(PROFILE),
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "submitted with SLURM jobid" in proc.stdout + proc.stderr
    assert db_rows(workdir / "results" / "fast_diff.db") == db_rows(tmp_path / "local" / "results" / "fast_diff.db")
