"""Growing and changing collections: a rerun decodes only the files it has not seen in that
version, and its database equals a run from scratch over the same files."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import db_rows, photo, run_workflow, shard_contents, thumbnail_jobs, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fast_diff_py import shard_ids
from fast_diff_py._reuse import Previous, fingerprint, installed_versions

CONFIG = {"shard_size": 4, "second_loop": {"diff_threshold": 30}}


def taken(work: Path, proc) -> tuple[int, int]:
    """Files taken from the last run's thumbnails, and files of the shards, over the
    thumbnail jobs of the run ``proc`` (run_workflow's result)."""
    done = total = 0
    logs = work / "results" / "work" / "logs" / "thumbnails"
    for log in (logs / f"make_thumbnails_{shard}.log" for shard in thumbnail_jobs(proc)):
        for a, b in re.findall(r"(\d+) of (\d+) files taken from the last run", log.read_text()):
            done, total = done + int(a), total + int(b)
    return done, total


def same_as_fresh(tmp_path: Path, work: Path, config: dict) -> bool:
    fresh = tmp_path / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    run_workflow(fresh, config)
    # the same files: the versions read (file_state) are the same too
    ours, theirs = (db_rows(w / "results" / "fast_diff.db", ("file_state",)) for w in (work, fresh))
    return ours == theirs


@pytest.mark.parametrize("crop", [0, 0.03])
def test_a_file_sorting_first_decodes_only_itself(tmp_path, crop):
    """Only the shards the new file changes are made again (a neighbour too, where the file
    moves a shard's end), and only the new file is decoded: the others are taken from what
    the shards' jobs kept; crop thumbnails (crop_tolerance) with the thumbnails."""
    photos = tmp_path / "photos"
    for i in range(24):
        write(photos / f"IMG_{i:04d}.png", photo(i % 4, 40, 50))
    config = {**CONFIG, "part_a": [str(photos)], "crop_tolerance": crop}
    work = tmp_path / "w"
    run_workflow(work, config)
    before = shard_contents(work)
    shutil.copy(photos / "IMG_0001.png", photos / "AAA_copy.png")
    proc = run_workflow(work, config)
    ran = thumbnail_jobs(proc)
    assert 1 <= len(ran) < len(shard_contents(work)) and len(before) >= 2
    done, total = taken(work, proc)
    assert done == total - 1
    # the summary times this run's jobs, not those of the shards kept from the last run
    stages = json.loads((work / "results" / "summary.json").read_text())["stages"]
    assert stages["thumbnails"]["jobs"] == len(ran)
    # and the cores are shared out among the jobs that run, not among all the shards
    threads = re.findall(r"rule make_thumbnails:\n(?:\s+\w+:.*\n)*?\s+threads: (\d+)", proc.stdout + proc.stderr)
    assert threads == (["2"] if len(ran) == 1 else []), proc.stderr
    assert same_as_fresh(tmp_path, work, config)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"crop_tolerance": 0.03},  # crop sums, read by row
        {"second_loop": {"diff_threshold": 0}},  # digests, read by row
        {"first_loop": {"compute_hash": True}, "second_loop": {"diff_threshold": 30, "skip_matching_hash": True}},
    ],
    ids=["plain", "crops", "digests", "hashes"],
)
def test_files_only_removed_from_shards_run_no_thumbnail_job(tmp_path, settings):
    """Files removed from the middle of shards: the shards keep their files and thumbnails
    (the rows of the files gone stay there), no thumbnail job runs, and the database, every
    stage that reads the thumbnails by row (crops, digests, hashes) and the thumbnails a
    difpy action checks against are those of a run from scratch."""
    from fast_diff_py._actions import StoredThumbnails

    photos = tmp_path / "photos"
    for i in range(24):
        write(photos / f"IMG_{i:04d}.png", photo(i % 6, 40, 50))
    config = {**CONFIG, **settings, "part_a": [str(photos)]}
    work = tmp_path / "w"
    run_workflow(work, config)
    index = work / "results" / "work" / "index"
    shards = [pq.read_table(index / f"shard_{s}.parquet").column("path").to_pylist() for s in shard_ids(index)]
    # neither a shard's first file (its id) nor its last (its end): the shards stay as they are
    gone = [Path(paths[1]) for paths in shards if len(paths) >= 3][:3]
    assert len(gone) >= 2
    for path in gone:
        path.unlink()
    proc = run_workflow(work, config)
    assert thumbnail_jobs(proc) == []
    kept = [pq.read_table(index / f"shard_{s}.parquet").column("files_row").to_pylist() for s in shard_ids(index)]
    assert any(rows != list(range(len(rows))) for rows in kept)
    assert same_as_fresh(tmp_path, work, config)
    ours, fresh = StoredThumbnails(work / "results" / "work"), StoredThumbnails(tmp_path / "fresh" / "results" / "work")
    for key in range(1, 25 - len(gone)):
        assert np.array_equal(ours.get(key), fresh.get(key)), key
    # a file added back where one was removed: its shard is made again, from its files now
    write(gone[0], photo(9, 40, 50))
    proc = run_workflow(work, config)
    assert len(thumbnail_jobs(proc)) >= 1
    assert same_as_fresh(tmp_path, work, config)


def _layout(index: Path) -> dict[str, list[str]]:
    """Each shard's paths, after checking that every index row names, through ``files_row``,
    the row of its shard's files with the same path and version, and that keys follow walk
    order (the order of the paths walked: sorted within one folder here)."""
    from fast_diff_py._formats import SHARD_FILES_SCHEMA, SHARD_FILES_SUFFIX, shard_file

    out, keys = {}, {}
    for shard in shard_ids(index):
        rows = pq.read_table(index / shard_file(shard)).to_pylist()
        files = pq.read_table(index / shard_file(shard, SHARD_FILES_SUFFIX)).to_pylist()
        for row in rows:
            listed = files[row["files_row"]]
            assert all(listed[c] == row[c] for c in SHARD_FILES_SCHEMA.names if c != "alias"), row["path"]
            keys[row["path"]] = row["key"]
        out[shard] = [r["path"] for r in rows]
    assert sorted(keys.values()) == list(range(1, len(keys) + 1))
    assert sorted(keys, key=keys.get) == sorted(keys)
    return out


def test_kept_shards_hold_their_files_and_new_ones_go_to_new_shards(tmp_path):
    """With the last index's files kept, a file seen in the same version stays in its shard,
    whose files are kept byte for byte; new and changed files go to new shards, cut by their
    paths; a shard that lost more files than it kept, or (with new files) holds fewer than a
    quarter of shard_size, is dissolved into the new ones; damaged kept files are no help."""
    from fast_diff_py._formats import SHARD_FILES_SUFFIX, shard_file
    from fast_diff_py._index import write_index

    root, kept = tmp_path / "r", tmp_path / "kept"
    root.mkdir()
    for i in range(40):
        (root / f"{i:03d}.jpg").write_bytes(b"x" * (i + 1))

    def index() -> dict[str, list[str]]:
        args = dict(recursive=True, ignore_names=[], ignore_paths=[], allowed_file_extensions=[".jpg"])
        write_index(tmp_path / "idx", part_a=[str(root)], part_b=[], shard_size=8, kept=kept, **args)
        return _layout(tmp_path / "idx")

    def files(shard: str) -> bytes:
        return (tmp_path / "idx" / shard_file(shard, SHARD_FILES_SUFFIX)).read_bytes()

    first = index()
    assert len(first) >= 4 and [p for ps in first.values() for p in ps] == sorted(str(p) for p in root.iterdir())
    before = {s: files(s) for s in first}
    assert index() == first and {s: files(s) for s in first} == before  # nothing changed
    # one new file that sorts first and one changed: both in one new shard with the files of
    # the small shards (under a quarter of shard_size), every other shard kept
    (root / "000a.jpg").write_bytes(b"new")
    changed = first[sorted(first, key=lambda s: -len(first[s]))[1]][2]
    Path(changed).write_bytes(b"changed, longer")
    small = {s for s in first if len(first[s]) < 2}
    second = index()
    new = set(second) - set(first)
    joined = [str(root / "000a.jpg"), changed, *(p for s in small for p in first[s])]
    assert len(new) == 1 and sorted(second[new.pop()]) == sorted(joined)
    assert set(second) == set(first) - small | set(second) - set(first)
    for s in set(first) - small:
        assert files(s) == before[s]
        assert second[s] == [p for p in first[s] if p != changed]
    # more files gone from a shard than stay: it is dissolved, its files join a new shard
    victim = max(first, key=lambda s: len(first[s]))
    for path in first[victim][: len(first[victim]) // 2 + 1]:
        os.unlink(path)
    third = index()
    assert victim not in third
    left = [p for p in first[victim] if os.path.exists(p)]
    assert any(set(left) <= set(paths) for s, paths in third.items() if s not in first)
    # a damaged kept file: its shard's files are made again in new shards
    some = sorted(set(third) & set(first))[0]
    (kept / shard_file(some, SHARD_FILES_SUFFIX)).write_bytes(b"PAR1 damaged")
    fourth = index()
    assert sorted(p for ps in fourth.values() for p in ps) == sorted(p for ps in third.values() for p in ps)
    assert all(fourth[s] == third[s] for s in set(third) - {some})
    assert all((kept / shard_file(s, SHARD_FILES_SUFFIX)).read_bytes() == files(s) for s in fourth)
    # without new files small shards stay; with them they join the new files
    for path in [p for paths in fourth.values() for p in paths][1:]:
        os.unlink(path)
    fifth = index()
    assert sum(map(len, fifth.values())) == 1 and set(fifth) <= set(fourth)
    (root / "999.jpg").write_bytes(b"late")
    sixth = index()
    assert len(sixth) == 1 and len(next(iter(sixth.values()))) == 2


def test_a_file_rewritten_with_its_old_size_and_times_is_decoded_again(tmp_path):
    """Same name, same size, the modification time set back: the inode change time tells."""
    import cv2

    def png(img: np.ndarray, length: int) -> bytes:
        data = cv2.imencode(".png", img)[1].tobytes()
        return data + bytes(length - len(data))  # PNG decoders stop at its end

    photos = tmp_path / "photos"
    for i in range(6):
        write(photos / f"IMG_{i:04d}.png", photo(i, 40, 50))
    target = photos / "IMG_0002.png"
    old, new = photo(2, 40, 50), photo(2, 40, 50)
    new[:20] = 255 - new[:20]
    length = 64 + max(len(cv2.imencode(".png", x)[1]) for x in (old, new))
    target.write_bytes(png(old, length))
    config = {**CONFIG, "part_a": [str(photos)]}
    work = tmp_path / "w"
    run_workflow(work, config)
    before = target.stat()
    with open(target, "r+b") as fh:  # in place: the same inode
        fh.write(png(new, length))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = target.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    proc = run_workflow(work, config)
    # the shard of the file made again, its other files taken; no other shard's job ran
    done, total = taken(work, proc)
    assert len(thumbnail_jobs(proc)) == 1 and done == total - 1
    assert same_as_fresh(tmp_path, work, config)


def test_other_settings_decode_every_file_again(tmp_path):
    photos = tmp_path / "photos"
    for i in range(5):
        write(photos / f"IMG_{i:04d}.png", photo(i, 40, 50))
    config = {**CONFIG, "part_a": [str(photos)]}
    work = tmp_path / "w"
    run_workflow(work, config)
    smaller = {**config, "compression_target": 32}
    assert taken(work, run_workflow(work, smaller)) == (0, 5)
    assert same_as_fresh(tmp_path, work, smaller)


def test_a_damaged_store_is_only_no_help(tmp_path):
    photos = tmp_path / "photos"
    for i in range(5):
        write(photos / f"IMG_{i:04d}.png", photo(i, 40, 50))
    config = {**CONFIG, "part_a": [str(photos)]}
    work = tmp_path / "w"
    run_workflow(work, config)
    reuse = work / "results" / "work" / "thumbnails" / "reuse"
    for rows in reuse.glob("*/rows.parquet"):
        rows.write_bytes(b"PAR1 not a table PAR1")
    for stack in reuse.glob("*/thumbs.npy"):  # kept thumbnails that are not the files'
        stack.unlink()
        np.save(stack, np.zeros((4, 50, 50, 3), np.uint8))
    write(photos / "AAA.png", photo(9, 40, 50))
    assert taken(work, run_workflow(work, config))[0] == 0
    assert "cannot be read" in "".join(
        p.read_text() for p in (work / "results" / "work" / "logs" / "thumbnails").glob("*.log")
    )
    assert same_as_fresh(tmp_path, work, config)


def test_files_added_to_both_partitions_run_a_compare_job_per_new_block(tmp_path):
    """With part_b, the pairs of a new file of part_b with the unchanged files of part_a go to
    the new file's job, not to one job per block of part_a: the compare jobs are the new
    blocks, and their pairs are those a fresh run finds."""
    a, b = tmp_path / "a", tmp_path / "b"
    _photos(a, 16)
    _photos(b, 16)
    config = {**CONFIG, "part_a": [str(a)], "part_b": [str(b)], "block_size": 4}
    work = tmp_path / "w"
    run_workflow(work, config)
    shutil.copy(a / "IMG_0005.png", a / "AAA_copy.png")
    shutil.copy(b / "IMG_0009.png", b / "AAA_copy.png")
    proc = run_workflow(work, config)
    assert "32 of 34 decoded files unchanged since the kept run" in plan_log(work)
    plan = work / "results" / "work" / "plan"
    blocks = pq.read_table(plan / "blocks.parquet")
    index = [f for f in (work / "results" / "work" / "index").glob("shard_*.parquet") if ".files." not in f.name]
    new_keys = {r["key"] for f in index for r in pq.read_table(f).to_pylist() if "AAA" in r["path"]}
    new_blocks = {r["block"] for r in blocks.to_pylist() if r["key"] in new_keys}
    assert len(new_keys) == 2 and len(new_blocks) == 2
    assert compare_jobs_run(proc) == 2
    pairs = pq.read_table(plan / "block_pairs.parquet")
    assert set(pairs.column("block_a").to_pylist()) == new_blocks
    for job in new_blocks:
        computed = pq.read_table(work / "results" / "work" / "pairs" / f"{job}.parquet").to_pylist()
        assert computed and all({r["key_a"], r["key_b"]} & new_keys for r in computed)
    assert same_as_fresh(tmp_path, work, config)


def test_thumbnails_no_job_compares_are_summed_once_per_version_of_their_stack(tmp_path):
    """The plan checks the thumbnails no compare job reads by summing their shard stacks; a
    stack whose file is the one an earlier plan summed (the same identity) is checked by those
    sums, not read again; a stack written to in place since is read, and its damage found."""
    photos = tmp_path / "photos"
    _photos(photos, 16)
    config = {**CONFIG, "part_a": [str(photos)], "block_size": 4, "shard_size": 4}
    work = tmp_path / "w"
    run_workflow(work, config)
    stacks = sorted((work / "results" / "work" / "thumbnails").glob("*.npy"))
    assert len(stacks) >= 2
    checked = re.compile(r"checked in (\d+) shard stacks: (\d+) summed, (\d+) by the sums")
    (photos / "IMG_0003.png").unlink()  # only removed: no compare job, every stack unread
    run_workflow(work, config)
    (n, read, taken) = map(int, checked.search(plan_log(work)).groups())
    assert (read, taken) == (n, 0) and n >= 2
    (photos / "IMG_0010.png").unlink()
    run_workflow(work, config)
    assert checked.search(plan_log(work)).groups() == (str(n), "0", str(n))
    assert same_as_fresh(tmp_path, work, config)
    # a stack written to in place: another identity, read again, its damage found
    stack = sorted((work / "results" / "work" / "thumbnails").glob("*.npy"))[-1]
    arr = np.load(stack, mmap_mode="r+")
    arr[0] = 255 - arr[0]
    arr.flush()
    del arr
    (photos / "IMG_0012.png").unlink()
    proc = run_workflow(work, config, check=False)
    assert proc.returncode != 0 and "changed since they were written" in proc.stdout + proc.stderr
    assert checked.search(plan_log(work)).groups() == (str(n), "1", str(n - 1))
    run_workflow(work, config)
    assert same_as_fresh(tmp_path, work, config)


@pytest.mark.parametrize("stage", ["index", "plan"])
def test_a_run_stopped_after_the_index_or_the_plan_began_is_finished_by_a_plain_rerun(tmp_path, stage):
    """Snakemake removes the outputs of a job that stops (Ctrl-C, a failure); when that job is
    the index or the plan, whose outputs the later jobs' inputs come from, a plain rerun
    still makes the database of the folders as they are now."""
    photos = tmp_path / "photos"
    _photos(photos, 8)
    config = {**CONFIG, "part_a": [str(photos)]}
    work = tmp_path / "w"
    run_workflow(work, config)
    (photos / "IMG_0003.png").unlink()
    if stage == "index":
        run_workflow(work, config, "-n")  # the folders' state is recorded where the DAG is built
        shutil.rmtree(work / "results" / "work" / "index")
    else:
        run_workflow(work, config, "--until", "index_files")
        shutil.rmtree(work / "results" / "work" / "plan")
    proc = run_workflow(work, config)
    assert "building the database again" in proc.stderr
    assert same_as_fresh(tmp_path, work, config)
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(run_workflow(work, config))


@pytest.mark.parametrize(
    "damage", ["index gone", "shard missing", "shards.parquet damaged", "gallery gone, an index setting changed"]
)
def test_the_database_is_made_again_where_the_index_is_made_again_with_the_same_shards(tmp_path, damage):
    """The index folder deleted, a file in it deleted or damaged, or the gallery deleted with
    a setting of the index changed, and no photo changed: a plain rerun indexes, plans and
    builds the database again, the same as before, and a rerun after it has nothing to do.
    The index is made again with the same shards (their files keep their contents), where
    Snakemake would drop the plan from the run and leave the merge without it."""
    photos = tmp_path / "photos"
    _photos(photos, 8)
    config = {**CONFIG, "part_a": [str(photos)]}
    work = tmp_path / "w"
    run_workflow(work, config)
    db = work / "results" / "fast_diff.db"
    before = db_rows(db, ("file_state",))
    index = work / "results" / "work" / "index"
    shard = shard_ids(index)[-1]
    if damage == "index gone":
        shutil.rmtree(index)
    elif damage == "shard missing":
        (index / f"shard_{shard}.parquet").unlink()
    elif damage == "shards.parquet damaged":
        (index / "shards.parquet").write_bytes(b"not parquet")
    else:
        shutil.rmtree(work / "results" / "report")
        config["ignore_names"] = ["no_such_name"]
    proc = run_workflow(work, config)
    told = [line for line in proc.stderr.splitlines() if line.startswith("fast-diff:") and "again" in line]
    assert len(told) == 1, proc.stderr
    if damage == "index gone":
        assert told[0].startswith("fast-diff: 'results/work/index' is missing (a run that stopped")
    elif damage.startswith("gallery"):
        assert told[0] == "fast-diff: the gallery 'results/report/index.html' is missing: writing it again"
    else:
        assert told[0].startswith("fast-diff: 'results/work/index/shard")
        assert told[0].endswith(": indexing the folders and building the database again")
    assert "plan_blocks" in proc.stdout + proc.stderr  # the plan ran, after the index
    assert "Traceback" not in proc.stderr
    assert db_rows(db, ("file_state",)) == before
    assert (work / "results" / "report" / "index.html").exists()
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(run_workflow(work, config))


def plan_log(work: Path) -> str:
    return (work / "results" / "work" / "logs" / "compare" / "plan_blocks.log").read_text()


def compare_jobs_run(proc) -> int:
    return len(re.findall(r"^\s*(?:local)?rule compare_blocks:", proc.stdout + proc.stderr, re.M))


def _photos(root: Path, n: int) -> None:
    for i in range(n):  # pairs of near copies, spread over brightness so that the plan prunes
        j = i // 2
        img = np.clip(photo(j, 40, 50).astype(int) * (0.3 + 2 * j / n) + 2 * (i % 2), 0, 255)
        write(root / f"IMG_{i:04d}.png", img.astype(np.uint8))


def _pairs_by_path(db: Path, threshold: float) -> set[tuple[str, str]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT a.path, b.path FROM dif_table d JOIN directory a ON a.key = d.key_a "
            "JOIN directory b ON b.key = d.key_b WHERE d.dif <= ?",
            (threshold,),
        ).fetchall()
    finally:
        con.close()
    return {tuple(sorted(r)) for r in rows}


def test_a_rerun_says_what_changed_since_the_last_run(tmp_path):
    """The summary of a rerun counts the files added, changed and removed since the last
    run's database, and the pairs new and gone; a first run says nothing of it."""
    photos = tmp_path / "photos"
    for i in range(6):
        write(photos / f"IMG_{i}.png", photo(10 + i, 40, 50))
    shutil.copy(photos / "IMG_0.png", photos / "dup.png")
    config = {**CONFIG, "part_a": [str(photos)]}
    work = tmp_path / "w"
    first = run_workflow(work, config)
    summary_path, db = work / "results" / "summary.json", work / "results" / "fast_diff.db"
    assert json.loads(summary_path.read_text())["since_last_run"] is None
    assert "since the last run" not in first.stdout
    before = _pairs_by_path(db, 30)
    shutil.copy(photos / "IMG_1.png", photos / "AAA_copy.png")  # added, and a pair with IMG_1
    (photos / "notes.txt").write_text("not an image, still a file of the folder")  # added
    (photos / "dup.png").unlink()  # removed, and its pair with IMG_0 gone
    write(photos / "IMG_2.png", photo(13, 40, 50))  # changed: now the same as IMG_3
    os.utime(photos / "IMG_4.png", ns=(1, 1))  # changed: touched
    proc = run_workflow(work, config)
    after = _pairs_by_path(db, 30)
    assert len(after - before) == 2 and len(before - after) == 1
    changes = json.loads(summary_path.read_text())["since_last_run"]
    assert changes == {"added": 2, "changed": 2, "removed": 1, "pairs_new": 2, "pairs_gone": 1}
    assert "since the last run: 2 files added, 2 changed, 1 removed; 2 pairs new, 1 gone" in proc.stdout
    # the database written again with no file changed (the gallery deleted) says so
    shutil.rmtree(work / "results" / "report")
    again = run_workflow(work, config)
    assert "since the last run: no file added, changed or removed; no pair new or gone" in again.stdout


def test_a_rerun_compares_only_the_pairs_with_an_added_file(tmp_path):
    """Pairs of two files seen before are taken from what the last run kept: the compare jobs
    that run are those of the added file's block, and every pair they compare has it."""
    photos = tmp_path / "photos"
    _photos(photos, 16)
    config = {**CONFIG, "part_a": [str(photos)], "block_size": 4}
    work = tmp_path / "w"
    run_workflow(work, config)
    before = db_rows(work / "results" / "fast_diff.db")["dif_table"]
    assert len(before) >= 4
    shutil.copy(photos / "IMG_0005.png", photos / "AAA_copy.png")  # sorts first: every key shifts
    proc = run_workflow(work, config)
    assert "16 of 17 decoded files unchanged since the kept run" in plan_log(work)
    plan = work / "results" / "work" / "plan"
    new_key = 1
    carried = pq.read_table(plan / "carried_pairs.parquet").to_pylist()
    assert len(carried) == len(before) and all(new_key not in (r["key_a"], r["key_b"]) for r in carried)
    new_blocks = {
        int(f.stem.split("_")[1])
        for f in (plan / "blocks").glob("block_*.parquet")
        if new_key in pq.read_table(f).column("key").to_pylist()
    }
    assert compare_jobs_run(proc) == len(new_blocks) == 1
    # thumbnails gathered only for the blocks compared: the new file's and its partners
    pairs = pq.read_table(plan / "block_pairs.parquet")
    compared = set(pairs.column("block_a").to_pylist() + pairs.column("block_b").to_pylist())
    assert new_blocks <= compared < {int(f.stem.split("_")[1]) for f in (plan / "blocks").glob("block_*.parquet")}
    assert {int(f.stem.split("_")[1]) for f in (plan / "blocks").glob("block_*.npy")} == compared
    computed = pq.read_table(work / "results" / "work" / "pairs" / f"{new_blocks.pop()}.parquet").to_pylist()
    assert computed and all(new_key in (r["key_a"], r["key_b"]) for r in computed)
    assert same_as_fresh(tmp_path, work, config)


def test_kept_pairs_answer_a_lower_threshold_only(tmp_path):
    photos = tmp_path / "photos"
    _photos(photos, 12)
    config = {**CONFIG, "part_a": [str(photos)], "block_size": 4, "second_loop": {"diff_threshold": 60}}
    work = tmp_path / "w"
    run_workflow(work, config)
    write(photos / "new.png", photo(99, 40, 50))
    lower = {**config, "second_loop": {"diff_threshold": 20}}
    run_workflow(work, lower)
    assert "12 of 13 decoded files unchanged" in plan_log(work)
    assert same_as_fresh(tmp_path, work, lower)
    higher = {**config, "second_loop": {"diff_threshold": 300}}  # above what the last run kept
    run_workflow(work, higher)
    assert "below the threshold 300" in plan_log(work)
    assert "unchanged since the kept run" not in plan_log(work)
    assert same_as_fresh(tmp_path, work, higher)


def test_kept_pairs_of_other_settings_or_damaged_are_not_taken(tmp_path):
    photos = tmp_path / "photos"
    _photos(photos, 8)
    config = {**CONFIG, "part_a": [str(photos)], "block_size": 4}
    work = tmp_path / "w"
    run_workflow(work, config)
    unrotated = {**config, "rotate": False}
    run_workflow(work, unrotated)
    assert "made under other settings: every pair is compared" in plan_log(work)
    assert same_as_fresh(tmp_path, work, unrotated)
    kept = work / "results" / "work" / "kept_pairs" / "pairs.parquet"
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0xFF
    kept.write_bytes(bytes(data))
    write(photos / "new.png", photo(99, 40, 50))
    run_workflow(work, unrotated)
    assert "pairs.parquet changed since they were written" in plan_log(work)
    assert same_as_fresh(tmp_path, work, unrotated)


def test_the_fingerprint_follows_the_settings():
    base = dict(size=50, method="quality", crops=(), preview=160, max_image_pixels=10, max_file_bytes=10)
    assert fingerprint(**base) == fingerprint(**base)
    for key, value in [("size", 64), ("method", "area"), ("crops", (0.01,)), ("max_image_pixels", 9)]:
        assert fingerprint(**{**base, key: value}) != fingerprint(**base)
    assert len(Previous([], fingerprint(**base))) == 0


def test_installed_versions_are_those_importlib_metadata_finds(tmp_path, monkeypatch):
    import importlib.metadata as metadata

    def found(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    dists = ["opencv-python-headless", "opencv-python", "simplejpeg", "pillow-heif", "numpy", "PyYAML", "fast-diff"]
    dists += ["snakemake_executor_plugin_slurm", "no-such-dist"]
    assert installed_versions(dists) == {d: found(d) for d in dists}

    # earlier on the path wins, an egg's folder names its Python, a file on the path is passed
    def dist(folder, name, version, metadata_name="METADATA"):
        (tmp_path / folder / name).mkdir(parents=True)
        (tmp_path / folder / name / metadata_name).write_text(f"Metadata-Version: 2.1\nName: x\nVersion: {version}\n")

    dist("a", "Simple_JPEG-9.9.egg-info", "9.9", "PKG-INFO")
    dist("b", "simplejpeg-1.0.dist-info", "1.0")
    dist("b", "numpy-3.0.dist-info", "3.0")
    (tmp_path / "a" / "pillow_heif-2.0-py3.11.egg-info").write_text("Metadata-Version: 1.0\nName: x\nVersion: 2.0\n")
    (tmp_path / "c.zip").write_bytes(b"")
    monkeypatch.setattr("sys.path", [str(tmp_path / "c.zip"), str(tmp_path / "a"), str(tmp_path / "b")])
    expected = {"simple-jpeg": "9.9", "numpy": "3.0", "pillow-heif": "2.0", "opencv-python": None}
    assert installed_versions(list(expected)) == expected
    assert {d: found(d) for d in expected} == expected


def test_kept_rows_name_the_file_versions(tmp_path):
    photos = tmp_path / "photos"
    for i in range(3):
        write(photos / f"IMG_{i:04d}.png", photo(i, 40, 50))
    (photos / "broken.png").write_bytes(b"not a png")
    work = tmp_path / "w"
    run_workflow(work, {**CONFIG, "part_a": [str(photos)]})
    reuse = work / "results" / "work" / "thumbnails" / "reuse"
    shards = shard_ids(work / "results" / "work" / "index")
    kept = [r for s in shards for r in pq.read_table(reuse / s / "rows.parquet").to_pylist()]
    assert sorted(Path(r["path"]).name for r in kept) == ["IMG_0000.png", "IMG_0001.png", "IMG_0002.png"]
    for r in kept:  # the version as indexed: the inode change time included
        st_ = Path(r["path"]).stat()
        assert (r["inode"], r["file_size"], r["mtime_ns"]) == (st_.st_ino, st_.st_size, st_.st_mtime_ns)
        assert r["created"] == st_.st_ctime


OPERATIONS = ["copy", "new", "delete", "replace", "touch", "rename", "subfolder", "part_b"]
# and what the issue did not name: a file cut short (broken), a symbolic and a hard link to a
# file, a folder renamed, a file replaced by a folder of its name
OPERATIONS += ["break", "symlink", "hardlink", "rename_folder", "file_to_folder"]


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 10**6)), min_size=2, max_size=3))
def test_any_sequence_of_changes_gives_the_database_of_a_fresh_run(tmp_path_factory, steps):
    """Add a copy, add a new image, delete, replace contents, touch without a change, rename,
    add into a new subfolder or into part_b, cut a file short, add a link to a file, rename a
    folder, replace a file by a folder: after each, a plain rerun gives the database of a run
    from scratch over the same files."""
    tmp_path = tmp_path_factory.mktemp("seq")
    a, b = tmp_path / "A", tmp_path / "B"
    for i in range(7):
        write(a / f"IMG_{i:04d}.png", photo(i % 5, 40, 50))
    write(b / "b_0.png", photo(1, 40, 50))
    # blocks of 3: the last plan's blocks of unchanged files are kept (_plan._kept_blocks)
    config = {**CONFIG, "block_size": 3, "part_a": [str(a)], "part_b": [str(b)]}
    work = tmp_path / "w"
    run_workflow(work, config)
    for op, seed in steps:
        files = sorted(p for p in a.rglob("*.png") if p.is_file() and not p.is_symlink())
        pick = files[seed % len(files)] if files else None
        folders = sorted(p for p in a.rglob("*") if p.is_dir())
        if op == "copy" and pick:
            shutil.copy(pick, a / f"c{seed}.png")
        elif op == "new":
            write(a / f"n{seed}.png", photo(seed, 40, 50))
        elif op == "delete" and pick and len(files) > 2:
            pick.unlink()
        elif op == "replace" and pick:
            write(pick, photo(seed + 7, 40, 50))
        elif op == "touch" and pick:
            os.utime(pick)
        elif op == "rename" and pick:
            pick.rename(pick.with_name(f"r{seed}.png"))
        elif op == "subfolder":
            write(a / f"sub{seed}" / "x.png", photo(seed % 5, 40, 50))
        elif op == "part_b":
            write(b / f"b{seed}.png", photo(seed % 5, 40, 50))
        elif op == "break" and pick:
            pick.write_bytes(pick.read_bytes()[: pick.stat().st_size // 2])
        elif op == "symlink" and pick:
            (a / f"l{seed}.png").symlink_to(pick)
        elif op == "hardlink" and pick:
            os.link(pick, a / f"h{seed}.png")
        elif op == "rename_folder" and folders:
            folder = folders[seed % len(folders)]
            folder.rename(folder.with_name(f"d{seed}"))
        elif op == "file_to_folder" and pick:
            pick.unlink()
            write(pick / "x.png", photo(seed % 5, 40, 50))
        run_workflow(work, config)
        assert same_as_fresh(tmp_path, work, config), (op, seed)


def _index_of(folder: Path, ids: list[str]) -> None:
    import pyarrow as pa

    from fast_diff_py._formats import SHARDS_FILE, SHARDS_SCHEMA

    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"shard": ids, "files": [1] * len(ids)}, schema=SHARDS_SCHEMA), folder / SHARDS_FILE)


def test_a_shard_job_reads_its_neighbours_and_the_shards_gone(tmp_path):
    from fast_diff_py._reuse import reuse_folders

    root = tmp_path / "reuse"
    for s in ("1", "2", "3", "4", "9", "8"):
        (root / s).mkdir(parents=True)
    (root / "stray.txt").write_text("not a shard")
    _index_of(tmp_path / "index", ["3", "1", "2", "4"])  # walk order, not sorted
    found = [Path(p).name for p in reuse_folders(tmp_path / "index", "1", root)]
    assert found == ["3", "2", "8", "9"]  # neighbours in walk order, then the shards gone
    assert [Path(p).name for p in reuse_folders(tmp_path / "index", "3", root)] == ["1", "8", "9"]
    assert [Path(p).name for p in reuse_folders(tmp_path / "index", "4", tmp_path / "none")] == ["2"]


def test_the_files_of_shards_gone_are_removed_and_no_others(tmp_path):
    from fast_diff_py._reuse import forget_shards

    thumbs, logs, root = tmp_path / "thumbnails", tmp_path / "logs", tmp_path / "thumbnails" / "reuse"
    for s in ("11", "22", "33"):
        (root / s).mkdir(parents=True)
        for name in (f"shard_{s}.npy", f"shard_{s}.parquet", f"shard_{s}.previews.parquet"):
            (thumbs / name).write_bytes(b"x")
        logs.mkdir(exist_ok=True)
        (logs / f"make_thumbnails_{s}.log").write_text("log")
    (thumbs / "notes.txt").write_text("a file of another name stays")
    _index_of(tmp_path / "index", ["22", "11"])
    assert forget_shards(tmp_path / "index", [thumbs, logs, tmp_path / "missing"], root) == 1
    assert sorted(p.name for p in thumbs.iterdir() if p.is_file()) == [
        "notes.txt",
        "shard_11.npy",
        "shard_11.parquet",
        "shard_11.previews.parquet",
        "shard_22.npy",
        "shard_22.parquet",
        "shard_22.previews.parquet",
    ]
    assert sorted(p.name for p in root.iterdir()) == ["11", "22"]
    assert sorted(p.name for p in logs.iterdir()) == ["make_thumbnails_11.log", "make_thumbnails_22.log"]


HASHINGS = [
    dict(compute_hash=True),
    dict(compute_hash=True, shift_amount=2),
    dict(compute_hash=True, rotate=False),
    dict(compute_hash=True, digests=True, digests_from_hashes=True),
    dict(compute_hash=False, digests=True, mirror=True),
    dict(compute_hash=True, digests=True, shift_amount=1, rotate=False),
]


def _thumbnail_run(tmp_path: Path, photos: Path, name: str, settings: dict, reuse: Path | None) -> tuple:
    """make_thumbnails of the one shard of ``photos`` with hashing ``settings``, keeping in
    and taking from ``reuse``; its meta table, digests table and stack."""
    from conftest import shard_inputs

    from fast_diff_py import write_index
    from fast_diff_py._thumbnails import make_thumbnails

    out = tmp_path / name
    shutil.rmtree(out, ignore_errors=True)
    write_index(
        out / "index",
        part_a=[str(photos)],
        part_b=[],
        recursive=True,
        ignore_names=[],
        ignore_paths=[],
        allowed_file_extensions=[".png"],
        shard_size=100,
    )
    settings = dict(settings)
    digests = out / "d.parquet" if settings.pop("digests", False) else None
    make_thumbnails(
        shard_inputs(out / "index")[0],
        out / "t.npy",
        out / "m.parquet",
        size=16,
        out_previews=out / "p.parquet",
        reuse_dir=reuse,
        out_digests=digests,
        **settings,
    )
    return (
        pq.read_table(out / "m.parquet"),
        pq.read_table(digests) if digests else None,
        np.load(out / "t.npy"),
    )


@pytest.mark.parametrize("hashing", HASHINGS, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
def test_taken_thumbnails_keep_their_hashes_and_digests(tmp_path, monkeypatch, hashing):
    """A file taken from the last run's thumbnails takes its hashes and canonical digest with
    it where they were made with the same settings: only new and changed files are hashed,
    and every output equals hashing every file again; other settings hash everything."""
    from fast_diff_py import _thumbnails

    photos = tmp_path / "photos"
    for i in range(6):
        write(photos / f"IMG_{i:04d}.png", photo(i, 40, 50))
    write(photos / "IMG_0009.png", np.rot90(photo(2, 40, 50)).copy())  # a turned copy: one digest
    reuse = tmp_path / "reuse" / "shard"
    _thumbnail_run(tmp_path, photos, "first", hashing, reuse)
    write(photos / "AAA.png", photo(7, 40, 50))
    write(photos / "IMG_0003.png", photo(8, 40, 50))  # replaced contents
    hashed: list[int] = []
    for name in ("hash_stack", "canonical_digests"):
        real = getattr(_thumbnails, name)

        def counting(stack, *args, _real=real, **kwargs):
            hashed.append(len(stack))
            return _real(stack, *args, **kwargs)

        monkeypatch.setattr(_thumbnails, name, counting)
    got = _thumbnail_run(tmp_path, photos, "second", hashing, reuse)
    made = len(hashed)
    fresh = _thumbnail_run(tmp_path, photos, "fresh", hashing, None)
    assert hashed[:made] and all(n == 2 for n in hashed[:made])  # the new and the replaced file
    assert all(n == 8 for n in hashed[made:])
    assert got[0].equals(fresh[0]) and np.array_equal(got[2], fresh[2])
    assert (got[1] is None and fresh[1] is None) or got[1].equals(fresh[1])
    # other settings: every file hashed again, the same outputs as hashing them all
    other = {**hashing, "shift_amount": hashing.get("shift_amount", 0) + 1, "rotate": not hashing.get("rotate", True)}
    hashed.clear()
    got = _thumbnail_run(tmp_path, photos, "third", other, reuse)
    fresh = _thumbnail_run(tmp_path, photos, "fresh", other, None)
    assert hashed[: len(hashed) // 2] and all(n == 8 for n in hashed)
    assert got[0].equals(fresh[0]) and ((got[1] is None and fresh[1] is None) or got[1].equals(fresh[1]))


@pytest.mark.parametrize("damage", ["garbage", "rows", "columns"])
def test_damaged_kept_hashes_are_made_again(tmp_path, damage, caplog):
    import pyarrow as pa

    photos = tmp_path / "photos"
    for i in range(4):
        write(photos / f"IMG_{i:04d}.png", photo(i, 40, 50))
    hashing = dict(compute_hash=True, digests=True)
    reuse = tmp_path / "reuse" / "shard"
    _thumbnail_run(tmp_path, photos, "first", hashing, reuse)
    kept = reuse / "hashes.parquet"
    table = pq.read_table(kept)
    if damage == "garbage":
        kept.write_bytes(b"PAR1 not a table PAR1")
    elif damage == "rows":  # a row short: none of them is taken
        pq.write_table(table.slice(1), kept)
    else:  # a wrong hash where a column is missing
        pq.write_table(table.drop(["hash_90"]).append_column("x", pa.array(["0"] * len(table))), kept)
    got = _thumbnail_run(tmp_path, photos, "second", hashing, reuse)
    fresh = _thumbnail_run(tmp_path, photos, "fresh", hashing, None)
    assert got[0].equals(fresh[0]) and got[1].equals(fresh[1])
    assert "hashing its files again" in caplog.text


def test_a_kept_thumbnail_changed_in_place_alone_is_decoded_again(tmp_path, caplog, monkeypatch):
    """The kept thumbnails are checked together; one whose sums changed (its file shares its
    data with a shard's output) is decoded again, the others are taken."""
    from fast_diff_py import _thumbnails

    photos = tmp_path / "photos"
    for i in range(5):
        write(photos / f"IMG_{i:04d}.png", photo(i, 40, 50))
    reuse = tmp_path / "reuse" / "shard"
    _thumbnail_run(tmp_path, photos, "first", dict(compute_hash=True), reuse)
    arr = np.load(reuse / "thumbs.npy", mmap_mode="r+")
    arr[2] = 255 - arr[2]
    arr.flush()
    del arr
    decoded = []
    real = _thumbnails.decode_thumbnail_and_crops

    def counting(path, *args, **kwargs):
        decoded.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(_thumbnails, "decode_thumbnail_and_crops", counting)
    got = _thumbnail_run(tmp_path, photos, "second", dict(compute_hash=True), reuse)
    fresh = _thumbnail_run(tmp_path, photos, "fresh", dict(compute_hash=True), None)
    assert [Path(p).name for p in decoded[:1]] == ["IMG_0002.png"] and len(decoded) == 1 + 5
    assert got[0].equals(fresh[0]) and np.array_equal(got[2], fresh[2])
    assert "IMG_0002.png' changed since it was made: decoding the file" in caplog.text


def test_a_kept_thumbnail_changed_after_its_store_was_read_is_decoded_again(tmp_path, caplog, monkeypatch):
    """What a job takes is the copy it checked: a kept thumbnail changed in place after its
    store was opened (the job of its shard replacing it meanwhile) is decoded again, never
    taken, and the others are taken."""
    from fast_diff_py import _thumbnails
    from fast_diff_py._reuse import Previous

    photos = tmp_path / "photos"
    for i in range(4):
        write(photos / f"IMG_{i:04d}.png", photo(i, 40, 50))
    reuse = tmp_path / "reuse" / "shard"
    _thumbnail_run(tmp_path, photos, "first", dict(compute_hash=True), reuse)
    real = Previous.__init__

    def then_changed(self, *args, **kwargs):
        real(self, *args, **kwargs)
        arr = np.load(reuse / "thumbs.npy", mmap_mode="r+")
        arr[1] = 255 - arr[1]
        arr.flush()

    monkeypatch.setattr(Previous, "__init__", then_changed)
    decoded = []
    decode = _thumbnails.decode_thumbnail_and_crops
    monkeypatch.setattr(
        _thumbnails, "decode_thumbnail_and_crops", lambda path, *a, **k: decoded.append(path) or decode(path, *a, **k)
    )
    got = _thumbnail_run(tmp_path, photos, "second", dict(compute_hash=True), reuse)
    assert [Path(p).name for p in decoded] == ["IMG_0001.png"]
    fresh = _thumbnail_run(tmp_path, photos, "fresh", dict(compute_hash=True), None)
    assert got[0].equals(fresh[0]) and np.array_equal(got[2], fresh[2])
    assert "IMG_0001.png' changed since it was made: decoding the file" in caplog.text


def test_thumbnail_outputs_are_read_in_index_order_or_refused(tmp_path):
    """``files_rows``: the rows of the shard's files that its index rows are (None for an
    index written before the column); ``in_index_order`` takes those rows, the first ones of
    a longer table too, and refuses, naming the file, rows its table does not have."""
    import pyarrow as pa

    from fast_diff_py._io import files_rows, in_index_order

    index = tmp_path / "shard.parquet"
    pq.write_table(pa.table({"key": [1, 2], "files_row": pa.array([0, 1], pa.int32())}), index)
    first = files_rows(index)
    assert first is not None and first.tolist() == [0, 1]  # of files whose third row is gone
    pq.write_table(pa.table({"key": [1, 2]}), index)  # an index of before the column
    assert files_rows(index) is None
    pq.write_table(pa.table({"key": [1, 2], "files_row": pa.array([0, 2], pa.int32())}), index)
    rows = files_rows(index)
    assert rows is not None and rows.tolist() == [0, 2]
    meta = pa.table({"success": [1, 0, 1], "px": [10, 20, 30]})
    assert in_index_order(meta, rows, "meta.parquet").to_pydict() == {"success": [1, 1], "px": [10, 30]}
    assert in_index_order(meta, None, "meta.parquet") is meta
    assert in_index_order(meta, first, "meta.parquet").to_pydict() == {"success": [1, 0], "px": [10, 20]}
    assert in_index_order(meta.slice(0, 2), first, "meta.parquet").num_rows == 2
    with pytest.raises(ValueError, match="'meta.parquet' does not describe the files of its index shard"):
        in_index_order(meta.slice(0, 2), rows, "meta.parquet")


def test_the_gallery_after_a_change_shows_each_file_as_it_is_now(tmp_path):
    """A file changed where it started its shard: the shard is kept with the file's old row
    (and preview), the new version lies in a new shard listed before it; the gallery shows
    the new one, as a fresh run's does."""
    photos = tmp_path / "photos"
    base = photo(0, 40, 50)
    write(photos / "IMG_0000.png", base)
    write(photos / "IMG_0000_copy.png", base)
    for i in range(1, 12):
        write(photos / f"IMG_{i:04d}.png", photo(i, 40, 50))
    (photos / "IMG_0005_broken.png").write_bytes(b"not an image")  # a row without a preview
    config = {**CONFIG, "shard_size": 40, "part_a": [str(photos)]}
    work = tmp_path / "w"
    run_workflow(work, config)
    index = work / "results" / "work" / "index"
    (first,) = _layout(index).values()  # one shard, which the changed file starts
    assert first[0] == str(photos / "IMG_0000.png")
    changed = base.copy()
    changed[:2] = np.clip(changed[:2].astype(int) + 3, 0, 255).astype(np.uint8)
    write(photos / "IMG_0000.png", changed)
    proc = run_workflow(work, config)
    layout = _layout(index)
    assert len(thumbnail_jobs(proc)) == 1 and list(layout.values())[0] == [str(photos / "IMG_0000.png")]

    def pages(w: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (w / "results" / "report" / "data").glob("groups-*.js")}

    fresh = tmp_path / "fresh"
    run_workflow(fresh, config)
    assert pages(work) and pages(work) == pages(fresh)


def test_a_kept_shard_whose_last_files_went_reads_only_its_rows(tmp_path):
    """The files that end a kept shard's files changed or removed: its index rows are the
    first rows of its files, which hold more; every stage reads those rows only."""
    photos = tmp_path / "photos"
    for i in range(12):
        write(photos / f"IMG_{i:04d}.png", photo(i, 40, 50))
    write(photos / "IMG_0011_copy.png", photo(11, 40, 50))
    config = {**CONFIG, "shard_size": 40, "part_a": [str(photos)]}
    work = tmp_path / "w"
    run_workflow(work, config)
    index = work / "results" / "work" / "index"
    (first,) = _layout(index).values()
    assert first[-2:] == [str(photos / "IMG_0011.png"), str(photos / "IMG_0011_copy.png")]
    write(photos / "IMG_0011_copy.png", photo(12, 40, 50))  # replaced
    os.unlink(photos / "IMG_0011.png")
    proc = run_workflow(work, config)
    layout = _layout(index)
    kept = [s for s in layout if layout[s] == first[:-2]]
    assert len(kept) == 1 and len(thumbnail_jobs(proc)) == 1
    assert pq.read_table(index / f"shard_{kept[0]}.parquet").column("files_row").to_pylist() == list(range(11))
    assert same_as_fresh(tmp_path, work, config)


def test_blocks_of_unchanged_files_keep_their_thumbnails(tmp_path):
    """The plan keeps the blocks of the last plan whose files are unchanged, their thumbnails
    hard links of the last plan's (kept in kept_blocks/), and cuts only the new files into new
    blocks: the same database as a fresh run. A kept block whose thumbnails were damaged is
    found by the compare job reading them; the next run gathers them again."""
    from fast_diff_py._formats import KEPT_BLOCKS_DIR

    photos = tmp_path / "photos"
    for i in range(24):
        write(photos / f"IMG_{i:04d}.png", photo(i % 9, 40, 50))
    config = {**CONFIG, "shard_size": 8, "block_size": 6, "part_a": [str(photos)]}
    work = tmp_path / "w"
    run_workflow(work, config)
    results = work / "results" / "work"
    plan, kept = results / "plan" / "blocks", results / KEPT_BLOCKS_DIR

    def inodes(folder: Path) -> set[int]:
        return {p.stat().st_ino for p in folder.glob("*.npy")}

    first = inodes(plan)
    assert first and inodes(kept) == first
    write(photos / "000_new.png", photo(3, 40, 50))  # a copy of three photos there
    write(photos / "IMG_0100.png", photo(40, 40, 50))
    run_workflow(work, config)
    assert inodes(plan) & first  # blocks of the last plan, not written again
    assert inodes(kept) == inodes(plan) | (inodes(kept) & first)
    assert same_as_fresh(tmp_path, work, config)
    # a block that lost a file is kept too: its thumbnails as they were, its rows naming theirs
    second = inodes(kept)
    os.unlink(photos / "IMG_0005.png")
    write(photos / "IMG_0101.png", photo(41, 40, 50))
    run_workflow(work, config)
    rows = pq.read_table(results / "plan" / "blocks.parquet")
    kept_rows = [(b, r) for b, r in zip(rows.column("block").to_pylist(), rows.column("block_row").to_pylist())]
    assert inodes(kept) & second and len(set(kept_rows)) == len(kept_rows)
    assert any(r >= n for (b, r), n in zip(kept_rows, [sum(1 for x, _ in kept_rows if x == b) for b, _ in kept_rows]))
    assert same_as_fresh(tmp_path, work, config)
    # the kept thumbnails changed behind the plan's back: the compare job reading them stops
    # the run, naming them; the same command then gathers them again
    for path in kept.glob("*.npy"):
        data = bytearray(path.read_bytes())
        data[-50:] = bytes(255 - x for x in data[-50:])
        path.write_bytes(data)  # in place: the plan's links see it
    write(photos / "001_new.png", photo(4, 40, 50))
    proc = run_workflow(work, config, check=False)
    assert proc.returncode != 0 and "changed since it was written" in proc.stdout + proc.stderr
    assert not kept.exists()
    run_workflow(work, config)
    assert same_as_fresh(tmp_path, work, config)


def test_an_index_folder_holding_other_files_is_left_as_it_is(tmp_path, capsys):
    """Where results_dir's index folder lacks an index file and holds a file the index job
    does not write (a folder of the user's of that name), nothing in it is removed; an index
    folder of the index's files alone is."""
    from fast_diff_py import forget_incomplete_index

    index, receipt = tmp_path / "index", tmp_path / "database.json"
    index.mkdir()
    (index / "shards.parquet").write_bytes(b"not parquet")
    (index / "holiday.jpg").write_bytes(b"a photo")
    receipt.write_text("{}")
    assert not forget_incomplete_index(index, receipt)
    assert (index / "holiday.jpg").read_bytes() == b"a photo" and receipt.exists()
    said = capsys.readouterr().err
    assert f"{str(index / 'holiday.jpg')!r} is no file of an index: left as it is" in said
    linked = tmp_path / "linked"
    linked.symlink_to(index)
    (index / "holiday.jpg").rename(tmp_path / "holiday.jpg")
    assert not forget_incomplete_index(linked, receipt)  # a link: never followed
    assert index.is_dir() and receipt.exists()
    assert forget_incomplete_index(index, receipt)
    assert not index.exists() and not receipt.exists() and (tmp_path / "holiday.jpg").exists()
