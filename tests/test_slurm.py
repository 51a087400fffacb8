"""The workflow submitted to a real (single-node, local) SLURM through the executor plugin
gives the same database as a local run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, db_rows, run_workflow

import fast_diff_py as fdp

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
    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", proc.stdout + proc.stderr)
    assert job_ids
    assert db_rows(workdir / "results" / "fast_diff.db") == db_rows(tmp_path / "local" / "results" / "fast_diff.db")

    # what SLURM itself allocated to each job: the CPUs of its rule's threads (2 in the
    # test profile for the thumbnail, compare and gallery jobs) and the memory and minutes
    # its rule declares
    validated = fdp.validate_config(yaml.safe_load((workdir / "config.yaml").read_text()))
    expected_mem = {
        "make_thumbnails": fdp.thumbnail_mem_mb(validated, 2),
        "compare_blocks": fdp.compare_mem_mb(validated),
    }
    expected_minutes = {"make_thumbnails": fdp.thumbnail_runtime_min(validated, 2)}
    seen = set()
    for job_id in job_ids:
        fields = scontrol_job(job_id)
        rule = re.match(r"rule_(\w+?)(?:_wildcards_.*)?$", fields["Comment"]).group(1)
        seen.add(rule)
        threads = 2 if rule in ("make_thumbnails", "compare_blocks", "merge_database") else 1
        assert int(fields["NumCPUs"]) == threads, (rule, fields["NumCPUs"])
        if rule in expected_mem:
            assert fields["MinMemoryNode"] == f"{expected_mem[rule]}M", (rule, fields["MinMemoryNode"])
        if rule in expected_minutes:
            hours, minutes = divmod(expected_minutes[rule], 60)
            assert fields["TimeLimit"] == f"{hours:02d}:{minutes:02d}:00", (rule, fields["TimeLimit"])
    assert {"make_thumbnails", "compare_blocks", "merge_database"} <= seen


def scontrol_job(job_id: str) -> dict[str, str]:
    """``scontrol show job``'s fields of one job (kept by SLURM for MinJobAge after it ended)."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.split() if "=" in item)
