"""End-to-end runs of the Snakemake workflow: rows of the database, bad input, resume."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SNAKEMAKE, db_rows, photo, run_workflow, shard_contents, taken_since, thumbnail_jobs, write

from fast_diff_py import decode_thumbnail, naive_dif


def pairs_by_name(db: Path) -> dict[tuple[str, str], tuple[float, int]]:
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT a.filename, b.filename, d.dif, d.success FROM dif_table d "
        "JOIN directory a ON a.key = d.key_a JOIN directory b ON b.key = d.key_b"
    ).fetchall()
    con.close()
    return {(a, b): (dif, ok) for a, b, dif, ok in rows}


def test_finds_known_duplicates_with_exact_values(tmp_path, dup_folder):
    root = dup_folder["root"]
    run_workflow(tmp_path / "w", {"part_a": [str(root)], "second_loop": {"diff_threshold": 400}})
    db = tmp_path / "w" / "results" / "fast_diff.db"
    found = pairs_by_name(db)
    assert set(found) == dup_folder["expected"]
    con = sqlite3.connect(db)
    paths = dict(con.execute("SELECT filename, path FROM directory"))
    for (a, b), (dif, success) in found.items():
        ta, _, _ = decode_thumbnail(paths[a], 64)
        tb, _, _ = decode_thumbnail(paths[b], 64)
        assert success == 1 and dif == naive_dif(ta, tb, True)
    assert found[("orig_3.jpg", "orig_3_copy.jpg")][0] == 0.0
    assert found[("orig_1.jpg", "orig_1_rot90.png")][0] == 0.0
    # every file is a row; every row has px, py and its partition root
    rows = con.execute(
        "SELECT filename, success, px, py, allowed, dir_index, part_b, file_size FROM directory"
    ).fetchall()
    assert len(rows) == 10 and all(r[1] == 1 and r[2] > 0 and r[4] == 1 and r[5] == 0 for r in rows)
    assert con.execute("SELECT path FROM dir_index_lookup").fetchall() == [(str(root),)]
    assert not list((tmp_path / "w" / "results").glob(".*tmp*"))


def test_partition_b_compares_only_across(tmp_path, dup_folder):
    root = dup_folder["root"]
    run_workflow(
        tmp_path / "w",
        {
            "part_a": [str(root / "sub")],
            "part_b": [str(_copy_originals(root, tmp_path))],
            "second_loop": {"diff_threshold": 400},
        },
    )
    found = pairs_by_name(tmp_path / "w" / "results" / "fast_diff.db")
    assert set(found) == {(b, a) for a, b in dup_folder["expected"]}
    con = sqlite3.connect(tmp_path / "w" / "results" / "fast_diff.db")
    assert (
        con.execute(
            "SELECT COUNT(*) FROM dif_table d JOIN directory a ON a.key = d.key_a WHERE a.part_b = 1"
        ).fetchone()[0]
        == 0
    )


def _copy_originals(root: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "originals"
    dest.mkdir()
    for p in root.glob("orig_*.jpg"):
        (dest / p.name).write_bytes(p.read_bytes())
    return dest


def test_bad_input_is_recorded_and_never_matched(tmp_path):
    root = tmp_path / "bad"
    good = write(root / "good.jpg", photo(1))
    data = good.read_bytes()
    write(root / "good copy.jpg", photo(1))
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "zero.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("not an image")
    (root / "zero2.png").write_bytes(b"")
    os.symlink(root / "gone.jpg", root / "dangling.jpg")
    write(root / "ünï cødé\nname.jpg", photo(2))
    write(root / "ünï cødé\nname copy.jpg", photo(2))
    run_workflow(
        tmp_path / "w",
        {
            "part_a": [str(root)],
            "second_loop": {"diff_threshold": 200},
            "first_loop": {"compute_hash": True, "shift_amount": 0},
        },
    )
    db = tmp_path / "w" / "results" / "fast_diff.db"
    con = sqlite3.connect(db)
    rows = {r[0]: r[1:] for r in con.execute("SELECT filename, success, error, hash_0 FROM directory")}
    assert rows["truncated.jpg"][:1] == (0,) and "truncated JPEG" in rows["truncated.jpg"][1]
    assert rows["zero.jpg"][:2] == (0, "empty file (0 bytes)")
    assert rows["zero2.png"][:2] == (0, "empty file (0 bytes)")
    assert "cannot decode image" in rows["text.jpg"][1]
    assert "cannot stat" in rows["dangling.jpg"][1]
    assert all(r[2] is None for r in rows.values() if r[0] == 0)
    assert set(pairs_by_name(db)) == {("good copy.jpg", "good.jpg"), ("ünï cødé\nname copy.jpg", "ünï cødé\nname.jpg")}


def test_hash_skip_and_aspect_filter(tmp_path, dup_folder):
    root = dup_folder["root"]
    run_workflow(
        tmp_path / "w",
        {
            "part_a": [str(root)],
            "first_loop": {"compute_hash": True, "shift_amount": 0},
            "second_loop": {
                "diff_threshold": 400,
                "skip_matching_hash": True,
                "match_aspect_by": 0,
                "keep_non_matching_aspects": False,
            },
        },
    )
    found = pairs_by_name(tmp_path / "w" / "results" / "fast_diff.db")
    # the copy and the rotation share a hash; the half-size copy fails the size filter
    assert found[("orig_3.jpg", "orig_3_copy.jpg")] == (0.0, 2)
    assert found[("orig_1.jpg", "orig_1_rot90.png")] == (0.0, 2)
    assert found[("orig_0.jpg", "orig_0_reencoded.jpg")][1] == 1
    assert ("orig_2.jpg", "orig_2_half.png") not in found
    con = sqlite3.connect(tmp_path / "w" / "results" / "fast_diff.db")
    counts = dict(con.execute("SELECT hash, count FROM hash_table"))
    assert sum(counts.values()) == 4 * 10
    same = con.execute(
        "SELECT a.hash_0 = b.hash_90 OR a.hash_0 = b.hash_270 FROM directory a, directory b "
        "WHERE a.filename = 'orig_1.jpg' AND b.filename = 'orig_1_rot90.png'"
    ).fetchone()
    assert same == (1,)


RESUME_CONFIG = {
    "shard_size": 4,
    "block_size": 4,
    "second_loop": {"diff_threshold": 300},
    "first_loop": {"compute_hash": True, "shift_amount": 0},
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[dict, dict]:
    """A folder of 16 images (8 encoded twice), its config and the rows of one clean run."""
    tmp = tmp_path_factory.mktemp("resume")
    root = tmp / "many"
    for i in range(16):
        write(root / f"{i:02d}.jpg", photo(i % 8, 60, 80), quality=90 if i < 8 else 75)
    config = {"part_a": [str(root)], **RESUME_CONFIG}
    run_workflow(tmp / "ref", config)
    return config, db_rows(tmp / "ref" / "results" / "fast_diff.db")


def _start(workdir: Path, config: dict) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return subprocess.Popen(
        [
            *SNAKEMAKE,
            "--snakefile",
            str(REPO / "workflow" / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            str(workdir / "config.yaml"),
            "--cores",
            "2",
            "--rerun-incomplete",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.mark.parametrize(
    "sig, wait_for, count",
    [
        (signal.SIGKILL, "results/work/index", 1),
        (signal.SIGKILL, "results/work/thumbnails/shard_*[0-9].npy", 3),
        (signal.SIGKILL, "results/work/pairs", 1),
        (signal.SIGINT, "results/work/thumbnails/shard_*[0-9].parquet", 2),
    ],
)
def test_resume_after_interrupt(tmp_path, uninterrupted, sig, wait_for, count):
    config, expected = uninterrupted
    assert len(expected["dif_table"]) >= 8
    work = tmp_path / "resumed"
    proc = _start(work, config)
    deadline = time.time() + 120
    while len(list(work.glob(wait_for))) < count and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, sig)  # the whole job tree, as a crash or Ctrl-C would
    proc.wait(timeout=60)
    if sig == signal.SIGKILL:  # a hard kill leaves Snakemake's lock behind
        subprocess.run(
            [
                *SNAKEMAKE,
                "--snakefile",
                str(REPO / "workflow" / "Snakefile"),
                "--directory",
                str(work),
                "--configfile",
                str(work / "config.yaml"),
                "--unlock",
            ],
            check=True,
            capture_output=True,
        )
    run_workflow(work, config)
    got = db_rows(work / "results" / "fast_diff.db")
    assert got == expected


def test_rerun_is_a_no_op_and_config_change_reruns(tmp_path, dup_folder):
    config = {"part_a": [str(dup_folder["root"])], "second_loop": {"diff_threshold": 400}}
    run_workflow(tmp_path / "w", config)
    proc = run_workflow(tmp_path / "w", config, "--dry-run")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    config["second_loop"]["diff_threshold"] = 1
    run_workflow(tmp_path / "w", config)
    found = pairs_by_name(tmp_path / "w" / "results" / "fast_diff.db")
    assert set(found) == {("orig_1.jpg", "orig_1_rot90.png"), ("orig_3.jpg", "orig_3_copy.jpg")}


@pytest.mark.parametrize("compute_hash", [False, True])
def test_threshold_zero_adds_digests_and_decodes_nothing_again(tmp_path, dup_folder, compute_hash):
    # the digests that group identical images are made by the thumbnail jobs at threshold 0
    # only: going to threshold 0 runs those jobs again, which take every thumbnail from the
    # last run and add the digests (with unshifted hashes, read off them); going back to
    # another threshold runs them no more
    config = {
        "part_a": [str(dup_folder["root"])],
        "second_loop": {"diff_threshold": 400},
        "first_loop": {"compute_hash": compute_hash},
    }
    run_workflow(tmp_path / "w", config)
    db = tmp_path / "w" / "results" / "fast_diff.db"
    exact = {pair for pair, (dif, _) in pairs_by_name(db).items() if dif == 0}
    assert not list((tmp_path / "w" / "results" / "work").glob("digests/*"))
    config["second_loop"]["diff_threshold"] = 0
    since = time.time()
    run_workflow(tmp_path / "w", config)
    taken, files = taken_since(tmp_path / "w" / "results" / "work", since)
    assert taken == files > 0  # not one file decoded again
    assert list((tmp_path / "w" / "results" / "work").glob("digests/*"))
    assert set(pairs_by_name(db)) == exact == {("orig_1.jpg", "orig_1_rot90.png"), ("orig_3.jpg", "orig_3_copy.jpg")}
    logs = " ".join(p.read_text() for p in (tmp_path / "w" / "results" / "work" / "logs" / "compare").glob("plan_*"))
    assert "block pairs can hold a match" in logs
    config["second_loop"]["diff_threshold"] = 30
    proc = run_workflow(tmp_path / "w", config, "--dry-run")
    planned = proc.stdout + proc.stderr
    assert "plan_blocks" in planned and "make_thumbnails" not in planned


def test_thumbnails_of_an_older_definition_are_made_again(tmp_path, dup_folder):
    # a results folder written under another META_VERSION must not be mixed with new shards:
    # the version is a param of the thumbnail rule, so Snakemake redoes those jobs
    code = tmp_path / "code"
    for part in ("workflow", "src", "config"):
        shutil.copytree(REPO / part, code / part, ignore=shutil.ignore_patterns("__pycache__"))
    config = {"part_a": [str(dup_folder["root"])]}
    work = tmp_path / "w"

    def run(*args):
        work.mkdir(exist_ok=True)
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        return subprocess.run(
            [
                *SNAKEMAKE,
                "--snakefile",
                str(code / "workflow" / "Snakefile"),
                "--directory",
                str(work),
                "--configfile",
                str(work / "config.yaml"),
                "--cores",
                "2",
                *args,
            ],
            capture_output=True,
            text=True,
            check=True,
        )

    def says(proc):
        return proc.stdout + proc.stderr

    run()
    before = db_rows(work / "results" / "fast_diff.db")
    assert "Nothing to be done" in says(run("--dry-run"))
    module = code / "src" / "fast_diff_py" / "_formats.py"
    source = module.read_text()
    assert "\nMETA_VERSION = " in source
    module.write_text(source.replace("\nMETA_VERSION = ", "\nMETA_VERSION = 1000 + ", 1))
    assert "make_thumbnails" in says(run("--dry-run"))
    run()
    assert db_rows(work / "results" / "fast_diff.db") == before


def test_difpy_target_writes_the_three_files(tmp_path, dup_folder):
    run_workflow(tmp_path / "w", {"part_a": [str(dup_folder["root"])], "second_loop": {"diff_threshold": 400}}, "difpy")
    out = tmp_path / "w" / "results" / "difpy"
    results = json.loads((out / "results.json").read_text())
    lower = ast.literal_eval((out / "lower_quality.txt").read_text())
    stats = json.loads((out / "stats.json").read_text())
    groups = {frozenset([Path(k).name, *(Path(m).name for m, _ in ms)]) for k, ms in results.items()}
    assert groups == {frozenset(p) for p in dup_folder["expected"]}
    assert len(lower) == 4 and not set(lower) & set(results)
    assert stats["process"]["search"]["parameters"]["similarity_mse"] == pytest.approx(400 / 3)
    assert stats["process"]["search"]["files_searched"] == 10


def test_torch_backend_gives_the_same_database(tmp_path, dup_folder):
    pytest.importorskip("torch")
    base = {"part_a": [str(dup_folder["root"])], "second_loop": {"diff_threshold": 400}, "block_size": 4}
    run_workflow(tmp_path / "numpy", {**base, "compare": {"backend": "numpy"}})
    run_workflow(tmp_path / "torch", {**base, "compare": {"backend": "torch"}})
    assert db_rows(tmp_path / "numpy" / "results" / "fast_diff.db") == db_rows(
        tmp_path / "torch" / "results" / "fast_diff.db"
    )
    logs = " ".join(
        p.read_text() for p in (tmp_path / "torch" / "results" / "work" / "logs" / "compare").glob("compare_*")
    )
    assert "kernel torch on cpu (backend torch)" in logs


def test_gpu_jobs_are_their_own_rule_with_the_same_result(tmp_path, dup_folder):
    base = {"part_a": [str(dup_folder["root"])], "second_loop": {"diff_threshold": 400}, "block_size": 4}
    run_workflow(tmp_path / "cpu", base)
    run_workflow(tmp_path / "gpu", {**base, "compare": {"gpu_jobs": True}})
    assert db_rows(tmp_path / "cpu" / "results" / "fast_diff.db") == db_rows(
        tmp_path / "gpu" / "results" / "fast_diff.db"
    )
    gpu_logs = list((tmp_path / "gpu" / "results" / "work" / "logs" / "compare").glob("compare_blocks_gpu_*.log"))
    assert gpu_logs and not list((tmp_path / "gpu" / "results" / "work").glob("pairs/*"))
    text = " ".join(p.read_text() for p in gpu_logs)
    # no GPU here: auto falls back to numpy and says so
    assert "kernel numpy (backend auto, no GPU seen)" in text


def test_cores_are_shared_out_among_the_jobs_of_a_stage(tmp_path, dup_folder):
    """One shard and one block get both cores; several share them, one thread each."""

    def threads(workdir: Path, stage: str) -> set[str]:
        logs = (workdir / "results" / "work" / "logs" / stage).glob("*.log")
        return {
            line.split("threads: ")[1].split()[0]
            for log in logs
            for line in log.read_text().splitlines()
            if "threads: " in line
        }

    base = {"part_a": [str(dup_folder["root"])], "second_loop": {"diff_threshold": 400}}
    run_workflow(tmp_path / "one", {**base, "shard_size": 100, "block_size": 100})
    run_workflow(tmp_path / "many", {**base, "shard_size": 3, "block_size": 3})
    assert threads(tmp_path / "one", "thumbnails") == {"2"} and threads(tmp_path / "one", "compare") == {"2"}
    assert threads(tmp_path / "many", "thumbnails") == {"1"} and threads(tmp_path / "many", "compare") == {"1"}
    assert db_rows(tmp_path / "one" / "results" / "fast_diff.db") == db_rows(
        tmp_path / "many" / "results" / "fast_diff.db"
    )


@pytest.mark.parametrize("crop", [0, 0.03])
def test_a_compare_job_declares_only_its_blocks_files(tmp_path, dup_folder, crop):
    """A compare job's inputs are the plan's files of its block and of the blocks paired with
    it (rows, thumbnails, and crops with crop_tolerance), and no shard stack: what Snakemake
    stages for it where nodes share no disk. The pairs are those of a run in one block."""
    from fast_diff_py import CROP_STACK_SUFFIX, block_file, block_partners

    base = {"part_a": [str(dup_folder["root"])], "second_loop": {"diff_threshold": 400}, "crop_tolerance": crop}
    proc = run_workflow(tmp_path / "blocks", {**base, "block_size": 3})
    plan = Path("results", "work", "plan")  # as the jobs list it, in their working folder
    declared = {}
    for job in proc.stderr.split("\n\n"):
        lines = dict(
            line.strip().split(": ", 1) for line in job.splitlines() if line.startswith("    ") and ": " in line
        )
        if re.search(r"^(local)?rule compare_blocks:$", job, re.M):
            declared[int(lines["wildcards"].removeprefix("a="))] = set(lines["input"].split(", "))
    partners = block_partners(tmp_path / "blocks" / plan)
    assert set(declared) == set(partners) and len(partners) > 1
    suffixes = [".parquet", ".npy", *([CROP_STACK_SUFFIX] if crop else [])]
    for a, files in declared.items():
        blocks = {a, *partners[a]}
        files.remove(str(plan / "block_pairs.parquet"))
        assert files == {str(plan / "blocks" / block_file(b, suffix)) for b in blocks for suffix in suffixes}, a
    run_workflow(tmp_path / "one", {**base, "block_size": 100})
    assert db_rows(tmp_path / "blocks" / "results" / "fast_diff.db") == db_rows(
        tmp_path / "one" / "results" / "fast_diff.db"
    )


@pytest.mark.parametrize(
    ("name", "args"),
    [("IMG_9999.png", ()), ("AAA_first.png", ("--max-checksum-file-size", "0")), ("IMG_0011b.png", ())],
)
def test_a_file_added_remakes_only_its_shards_thumbnails(tmp_path, name, args):
    """A rerun after a new file, wherever it sorts (a camera's next import, a name that sorts
    first, one in the middle), runs the thumbnail job of the shard it falls into (and of a
    neighbour where it splits or joins shards), not the others: every key after it shifts,
    but a shard's input holds no keys. The database equals a run from scratch. This holds
    without Snakemake's checksums too (which it takes only of small files): an unchanged
    shard's input keeps its time."""
    photos = tmp_path / "photos"
    for i in range(24):
        write(photos / f"IMG_{i:04d}.png", photo(i % 5, 40, 50))
    config = {"part_a": [str(photos)], "shard_size": 4, "second_loop": {"diff_threshold": 30}}
    work = tmp_path / "w"
    first = run_workflow(work, config)
    before = shard_contents(work)
    assert thumbnail_jobs(first) == sorted(s.split("_")[1].split(".")[0] for s in before)
    assert len(before) >= 4
    write(photos / name, photo(1, 40, 50))  # a copy of IMG_0001, IMG_0006, ...
    proc = run_workflow(work, config, *args)
    after = shard_contents(work)
    changed = sorted(s.split("_")[1].split(".")[0] for s, data in after.items() if before.get(s) != data)
    assert thumbnail_jobs(proc) == changed
    assert 1 <= len(changed) <= 2 < len(after)
    fresh = tmp_path / "fresh"
    run_workflow(fresh, config)
    assert db_rows(work / "results" / "fast_diff.db") == db_rows(fresh / "results" / "fast_diff.db")
    assert {("IMG_0001.png", name), (name, "IMG_0001.png")} & set(pairs_by_name(work / "results" / "fast_diff.db"))
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(run_workflow(work, config, "--dry-run"))
    # the files of shards no longer in the index are gone
    thumbs = work / "results" / "work" / "thumbnails"
    ids = {s.split("_")[1].split(".")[0] for s in after}
    assert {p.name.split("_")[1].split(".")[0] for p in thumbs.glob("shard_*")} == ids
    assert {p.name for p in (thumbs / "reuse").iterdir()} == ids


def test_a_folder_without_a_config_file_runs_on_the_schemas_defaults(tmp_path, dup_folder):
    from fast_diff_py._workflow import SNAKEFILE

    work = tmp_path / "elsewhere"  # no config/config.yaml: the workflow as the package installs it
    work.mkdir()
    base = [*SNAKEMAKE, "--snakefile", str(SNAKEFILE), "--directory", str(work), "--cores", "2"]
    run = subprocess.run(
        [*base, "--config", f"part_a={json.dumps([str(dup_folder['root'])])}", 'second_loop={"diff_threshold": 400}'],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert {tuple(sorted(k)) for k in pairs_by_name(work / "results" / "fast_diff.db")} == {
        tuple(sorted(p)) for p in dup_folder["expected"]
    }
    # a bad setting, or none at all, is named in a line or two, with no traceback
    for config, said in (
        ([f"part_a={json.dumps([str(tmp_path / 'nowhere')])}"], f"folder '{tmp_path / 'nowhere'}' does not exist"),
        ([], "'part_a' is a required property"),
    ):
        bad = subprocess.run([*base, "--config", *config] if config else base, capture_output=True, text=True)
        assert bad.returncode != 0 and said in bad.stderr
        assert "Traceback" not in bad.stderr and "_config.py" not in bad.stderr
