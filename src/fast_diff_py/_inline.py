"""A small collection's run in one process: the workflow's jobs, one after the other, without
Snakemake.

A Snakemake run pays its own start (a second or more) and a Python start and imports in every
job; on a folder of a few hundred photos that is most of the time. ``run_inline`` calls the
same stage functions the workflow's scripts call, with the same settings, in the order of the
workflow's DAG, and writes the same files (``_formats``), in a results folder of its own
(``inline_results_dir``): the files Snakemake judges its jobs by, and the metadata it keeps of
them, are never touched, so either way of running can follow the other. What the last run
kept for the next (thumbnails by file version, pairs of unchanged files) is taken again here as
in the workflow's jobs; a rerun with the folders and settings unchanged does nothing.

``small_collection`` says when a run may go this way: at most ``SMALL_RUN_FILES`` files, no
GPU jobs (the command lines and the API never use a storage).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._config import validate_config
from ._errors import RunError
from ._formats import inline_results_dir
from ._jobs import LOG_FORMAT

__all__ = ["SMALL_RUN_FILES", "inline_results_dir", "run_inline", "small_collection"]

# the most files a run takes in one process (the command lines' "auto"): below it the stages'
# own work is seconds, which Snakemake's start and the jobs' starts would double
SMALL_RUN_FILES = 2000
# what a run in one process records of the settings it ran with, beside its receipt
_SETTINGS = "inline_settings.json"
# held by the run that works in the folder (_only_run)
_LOCK = ".inline.lock"


def small_collection(config: dict[str, Any], most: int | None = None) -> bool:
    """Whether the run of ``config`` may go in one process: no GPU jobs, and at most ``most``
    (``SMALL_RUN_FILES``) files in the searched folders (or the file list), counted by a walk
    that stops there."""
    most = SMALL_RUN_FILES if most is None else most
    if config.get("compare", {}).get("gpu_jobs"):
        return False
    if config.get("file_list"):
        from ._io import read_parquet

        try:
            return len(read_parquet(config["file_list"], columns=["path"])) <= most
        except Exception:  # noqa: BLE001 - the index job names a bad list; Snakemake runs it
            return False
    seen, visited = 0, set()
    for root in [*config["part_a"], *config["part_b"]]:
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                st = os.stat(folder)  # a folder link is followed, as the index follows it, once
                if (st.st_dev, st.st_ino) in visited:
                    continue
                visited.add((st.st_dev, st.st_ino))
                with os.scandir(folder) as entries:
                    for entry in entries:
                        try:
                            is_dir = entry.is_dir()
                        except OSError:
                            is_dir = False
                        if is_dir:
                            if config.get("recursive", True):
                                stack.append(entry.path)
                            continue
                        seen += 1
                        if seen > most:
                            return False
            except OSError:
                continue  # the index names a folder it cannot read
    return True


# the stages a run in one process can stop after (FastDifPy.full_index, first_loop, second_loop)
STAGES_UNTIL = ("index", "thumbnails", "compare")


def run_inline(
    config: dict[str, Any],
    *,
    cores: int | None = None,
    progress: Callable[[str, int, float], None] | None = None,
    until: str | None = None,
) -> Path:
    """Run every stage of ``config`` in this process, in ``inline_results_dir(config)``; a
    stage's log and benchmark are where the workflow's job would write them. ``progress`` is
    called after each stage with its name, its jobs and its seconds. With ``until``
    ("index", "thumbnails" or "compare": the API's stages) the stages up to that one only.
    Returns the run's log, which names each stage's. A stage's error raises
    :class:`RunError` naming it and its log (where its traceback is)."""
    if until not in (None, *STAGES_UNTIL):
        raise ValueError(f"until must be one of {', '.join(STAGES_UNTIL)}, got {until!r}")
    from ._jobs import _pyarrow_without_pandas

    _pyarrow_without_pandas()  # as every job does: pyarrow's look for pandas costs a start
    config = validate_config(dict(config))
    # the workflow's results folder is no more indexed than this one
    config["exclude_paths"] = [*config["exclude_paths"], config["results_dir"]]
    config["results_dir"] = inline_results_dir(config["results_dir"])
    results = Path(config["results_dir"])
    results.mkdir(parents=True, exist_ok=True)
    with _only_run(results):
        return _run(config, results, cores or os.cpu_count() or 1, progress, until)


@contextlib.contextmanager
def _only_run(results: Path) -> Iterator[None]:
    """Hold the results folder for this run: a second run on it at the same time is refused
    (the lock goes with the process, whatever ends it)."""
    import fcntl

    with open(results / _LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunError(f"another fast-diff run is using {results}; wait for it to end, or stop it") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(
    config: dict[str, Any],
    results: Path,
    cores: int,
    progress: Callable[[str, int, float], None] | None,
    until: str | None = None,
) -> Path:
    from . import __version__
    from ._db import receipt_problem
    from ._formats import DB_RECEIPT, FOLDER_STATE, META_VERSION, report_path, summary_path
    from ._index import record_folder_state

    run = _Run(config, cores, progress)
    with _logged_to(run.log_path):  # what the walk meets (a folder loop) is the index's to say
        changed = record_folder_state(results / FOLDER_STATE, config)
    # what a run's files depend on besides the folders: the settings and this code's version
    settings = json.dumps({"config": config, "version": __version__, "meta": META_VERSION}, sort_keys=True)
    try:
        same = (results / _SETTINGS).read_text() == settings
    except OSError:
        same = False
    if (
        until is None
        and not changed
        and same
        and receipt_problem(results / DB_RECEIPT, config["db_path"]) is None
        and os.path.isfile(summary_path(config["db_path"]))
        and os.path.isdir(report_path(config["db_path"]))
    ):
        run.note("nothing changed since the last run: the database is up to date")
        return run.log_path
    # the settings are written once the run is whole: a run stopped midway is done again
    (results / _SETTINGS).unlink(missing_ok=True)
    run.all(until)
    if until is None:
        (results / _SETTINGS).write_text(settings)
    return run.log_path


@contextlib.contextmanager
def _stderr_to(log: Path) -> Iterator[None]:
    """Standard error (file descriptor 2) appended to ``log``, as a job's is kept by Snakemake:
    what the decoders' C libraries print of a damaged file goes with the job's log, not to
    the terminal, where it would name no file."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log, "ab") as fh:
            os.dup2(fh.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _logged_to(log: Path, mode: str = "a") -> Iterator[None]:
    """The package's log records to ``log`` only, as a job's go to its log file: the terminal
    gets the summary, as from the workflow."""
    log.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log, mode=mode, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    package = logging.getLogger("fast_diff_py")
    level, propagate = package.level, package.propagate
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False
    try:
        yield
    finally:
        package.removeHandler(handler)
        handler.close()
        package.setLevel(level)
        package.propagate = propagate


class _Run:
    """The stages of one run and their files, named as the workflow's rules name them."""

    def __init__(self, config: dict[str, Any], cores: int, progress: Callable[[str, int, float], None] | None):
        from ._carry import pairs_fingerprint
        from ._formats import (
            DIGEST_DIR,
            GPU_PAIR_DIR,
            INDEX_DIR,
            INLINE_SUFFIX,
            KEPT_PAIRS_DIR,
            PAIR_DIR,
            PLAN_DIR,
            THUMBNAIL_DIR,
            report_path,
            summary_path,
        )
        from ._index import file_list_has_part_b

        self.config, self.cores, self.progress = config, cores, progress
        results = config["results_dir"]
        # the workflow's results folder, beside this one (inline_results_dir)
        self.workflow_results = results.removesuffix(INLINE_SUFFIX)
        self.logs, self.benchmarks = f"{results}/logs", f"{results}/benchmarks"
        self.index, self.thumbs, self.digests = (
            f"{results}/{INDEX_DIR}",
            f"{results}/{THUMBNAIL_DIR}",
            f"{results}/{DIGEST_DIR}",
        )
        self.plan = f"{results}/{PLAN_DIR}"
        self.pairs = f"{results}/{GPU_PAIR_DIR if config['compare']['gpu_jobs'] else PAIR_DIR}"
        self.kept_pairs = f"{results}/{KEPT_PAIRS_DIR}"
        self.workflow_kept_pairs = f"{self.workflow_results}/{KEPT_PAIRS_DIR}"
        self.has_part_b = bool(config["part_b"]) or file_list_has_part_b(config["file_list"])
        self.fingerprint = pairs_fingerprint(config, self.has_part_b)
        self.summary, self.report = summary_path(config["db_path"]), report_path(config["db_path"])
        self.log_path = Path(self.logs) / "inline_run.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text(f"# fast-diff: a run in one process, in {results}\n")

    def note(self, line: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    @contextlib.contextmanager
    def job(self, rule: str, name: str) -> Iterator[None]:
        """One job of ``rule``: the package's log to its log file (a failure's traceback
        included), its seconds to its benchmark file, both named as Snakemake's."""
        log = Path(self.logs, name + ".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        started = time.monotonic()
        try:
            with _logged_to(log), _stderr_to(log):
                try:
                    yield
                except Exception as exc:
                    logging.getLogger("fast_diff_py").error("%s: %s", type(exc).__name__, exc, exc_info=True)
                    raise
        except Exception as exc:
            self.note(f"{rule} failed: {type(exc).__name__}: {exc} (log: {log})")
            raise RunError(f"{rule} failed: {type(exc).__name__}: {exc}\n  (full log: {log})") from exc
        seconds = time.monotonic() - started
        bench = Path(self.benchmarks, name + ".tsv")
        bench.parent.mkdir(parents=True, exist_ok=True)
        with open(bench, "w", newline="") as fh:
            writer = csv.writer(fh, delimiter="\t")
            writer.writerow(["s", "h:m:s"])
            writer.writerow([f"{seconds:.4f}", time.strftime("%H:%M:%S", time.gmtime(seconds))])
        self.note(f"{rule} {name}: {seconds:.2f} s (log: {log})")

    def stage(self, name: str, jobs: int, started: float) -> None:
        if self.progress is not None:
            self.progress(name, jobs, time.monotonic() - started)

    def all(self, until: str | None = None) -> None:
        shards = self.index_files()
        if until == "index":
            return
        self.make_thumbnails(shards)
        if until == "thumbnails":
            return
        if self.config["do_second_loop"]:
            self.compare(shards)
        if until == "compare":
            return
        self.merge_database(shards)

    def index_files(self) -> list[str]:
        from ._formats import FOLDER_STATE, FOLDER_WALK, shard_ids
        from ._index import own_paths, write_index

        c, started = self.config, time.monotonic()
        with self.job("index_files", "index/index_files"):
            write_index(
                self.index,
                part_a=c["part_a"],
                part_b=c["part_b"],
                recursive=c["recursive"],
                ignore_names=c["ignore_names"],
                ignore_paths=c["ignore_paths"],
                allowed_file_extensions=c["allowed_file_extensions"],
                shard_size=c["shard_size"],
                file_list=c["file_list"],
                exclude_paths=own_paths(c),
                # the walk that found the folders changed (_run: record_folder_state)
                walked=(f"{c['results_dir']}/{FOLDER_WALK}", f"{c['results_dir']}/{FOLDER_STATE}"),
            )
        shards = shard_ids(self.index)
        self.stage("index", 1, started)
        return shards

    def make_thumbnails(self, shards: list[str]) -> None:
        from ._decisions import digests_from_hashes, needs_digests
        from ._formats import (
            CROP_STACK_SUFFIX,
            CROP_SUMS_SUFFIX,
            PREVIEW_SUFFIX,
            REUSE_DIR,
            SHARD_FILES_SUFFIX,
            reuse_root,
            shard_file,
        )
        from ._reuse import reuse_folders
        from ._thumbnails import make_thumbnails

        c, started = self.config, time.monotonic()
        first, crops = c["first_loop"], c["crop_tolerance"]
        for shard in shards:
            with self.job("make_thumbnails", f"thumbnails/make_thumbnails_{shard}"):
                make_thumbnails(
                    f"{self.index}/{shard_file(shard, SHARD_FILES_SUFFIX)}",
                    f"{self.thumbs}/{shard_file(shard, '.npy')}",
                    f"{self.thumbs}/{shard_file(shard)}",
                    size=c["compression_target"],
                    method=c["thumbnail_method"],
                    compute_hash=first["compute_hash"],
                    shift_amount=first["shift_amount"],
                    rotate=c["rotate"],
                    hash_fn=c["hash_fn"],
                    threads=min(8, self.cores),
                    max_image_pixels=c["max_image_pixels"],
                    max_file_bytes=c["max_file_bytes"],
                    crop_tolerance=crops,
                    out_crops=f"{self.thumbs}/{shard_file(shard, CROP_STACK_SUFFIX)}" if crops else None,
                    out_crop_sums=f"{self.thumbs}/{shard_file(shard, CROP_SUMS_SUFFIX)}" if crops else None,
                    out_previews=f"{self.thumbs}/{shard_file(shard, PREVIEW_SUFFIX)}",
                    reuse_dir=f"{self.thumbs}/{REUSE_DIR}/{shard}",
                    # and what the workflow's jobs over the same settings kept
                    reuse_from=reuse_folders(
                        self.index, shard, f"{self.thumbs}/{REUSE_DIR}", also=[reuse_root(self.workflow_results)]
                    ),
                    out_digests=f"{self.digests}/{shard_file(shard)}" if needs_digests(c) else None,
                    mirror=c["mirror"],
                    digests_from_hashes=digests_from_hashes(c),
                )
        self.stage("thumbnails", len(shards), started)

    def compare(self, shards: list[str]) -> None:
        from ._compare import compare_blocks, match_hashes
        from ._decisions import needs_digests, prunes
        from ._formats import CROP_STACK_SUFFIX, CROP_SUMS_SUFFIX, shard_file
        from ._plan import block_partners, make_plan

        c, second, started = self.config, self.config["second_loop"], time.monotonic()
        crops = bool(c["crop_tolerance"])
        with self.job("plan_blocks", "compare/plan_blocks"):
            make_plan(
                [f"{self.thumbs}/{shard_file(s)}" for s in shards],
                [f"{self.index}/{shard_file(s)}" for s in shards],
                self.plan,
                size=c["compression_target"],
                block_size=c["block_size"],
                threshold=second["diff_threshold"],
                has_part_b=self.has_part_b,
                prune=prunes(c),
                digest_paths=[f"{self.digests}/{shard_file(s)}" for s in shards] if needs_digests(c) else [],
                crop_sums_paths=[f"{self.thumbs}/{shard_file(s, CROP_SUMS_SUFFIX)}" for s in shards] if crops else [],
                thumb_paths=[f"{self.thumbs}/{shard_file(s, '.npy')}" for s in shards],
                crop_paths=[f"{self.thumbs}/{shard_file(s, CROP_STACK_SUFFIX)}" for s in shards] if crops else [],
                # and those the workflow's last run over the same settings kept
                kept=(([self.kept_pairs, self.workflow_kept_pairs], self.fingerprint) if self.fingerprint else None),
            )
        self.stage("plan", 1, started)
        started = time.monotonic()
        partners = block_partners(self.plan)
        os.makedirs(self.pairs, exist_ok=True)
        wanted = {f"{a}.parquet" for a in partners}
        for stale in Path(self.pairs).glob("*.parquet"):  # of blocks an earlier plan had
            if stale.name not in wanted:
                stale.unlink()
        for a, blocks_b in partners.items():
            with self.job("compare_blocks", f"compare/compare_blocks_{a}"):
                compare_blocks(
                    self.plan,
                    a,
                    blocks_b,
                    f"{self.pairs}/{a}.parquet",
                    threshold=second["diff_threshold"],
                    rotate=c["rotate"],
                    mirror=c["mirror"],
                    skip_matching_hash=second["skip_matching_hash"],
                    match_aspect_by=second["match_aspect_by"],
                    keep_non_matching_aspects=second["keep_non_matching_aspects"],
                    cpu_diff=c["cpu_diff"],
                    gpu_diff=c["gpu_diff"],
                    backend=c["compare"]["backend"],
                    crops=crops,
                )
        jobs = len(partners)
        if second["skip_matching_hash"]:
            with self.job("match_hashes", "compare/match_hashes"):
                match_hashes(
                    [f"{self.thumbs}/{shard_file(s)}" for s in shards],
                    [f"{self.index}/{shard_file(s)}" for s in shards],
                    self.hash_pairs,
                    has_part_b=self.has_part_b,
                )
            jobs += 1
        self.stage("compare", jobs, started)

    @property
    def hash_pairs(self) -> str:
        from ._formats import HASH_PAIRS

        return f"{self.config['results_dir']}/{HASH_PAIRS}"

    def pair_files(self) -> list[str]:
        from ._formats import CARRIED_PAIRS
        from ._plan import block_partners

        c = self.config
        if not c["do_second_loop"]:
            return []
        files = [f"{self.pairs}/{a}.parquet" for a in block_partners(self.plan)]
        files.append(f"{self.plan}/{CARRIED_PAIRS}")
        if c["second_loop"]["skip_matching_hash"]:
            files.append(self.hash_pairs)
        return files

    def merge_database(self, shards: list[str]) -> None:
        from ._formats import DB_RECEIPT, PREVIEW_SUFFIX, REPORT_INDEX, REUSE_DIR, ROOTS_FILE, shard_file
        from ._progress import STAGE_OF_RULE
        from ._report import finish_run

        c, started = self.config, time.monotonic()
        with self.job("merge_database", "merge/merge_database"):
            finish_run(
                c["db_path"],
                roots_path=f"{self.index}/{ROOTS_FILE}",
                index_paths=[f"{self.index}/{shard_file(s)}" for s in shards],
                meta_paths=[f"{self.thumbs}/{shard_file(s)}" for s in shards],
                pair_paths=self.pair_files(),
                receipt=f"{c['results_dir']}/{DB_RECEIPT}",
                kept=self.kept_pairs if c["do_second_loop"] else None,
                pairs_fingerprint=self.fingerprint,
                forget=[self.thumbs, self.digests, f"{self.logs}/thumbnails", f"{self.benchmarks}/thumbnails"],
                reuse_root=f"{self.thumbs}/{REUSE_DIR}",
                out_dir=self.report,
                summary_file=self.summary,
                threshold=c["second_loop"]["diff_threshold"],
                threads=min(2, self.cores),
                previews=[f"{self.thumbs}/{shard_file(s, PREVIEW_SUFFIX)}" for s in shards],
                copy=f"{c['results_dir']}/gallery",
                benchmarks=self.benchmarks,
                gallery=os.path.join(self.report, REPORT_INDEX),
            )
        self.stage(STAGE_OF_RULE["merge_database"], 1, started)
