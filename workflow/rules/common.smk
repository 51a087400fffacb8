# Configuration check and the helpers that list each stage's files.
import os
import sys
from pathlib import Path

# The package fast_diff_py holds the logic. Run from a checkout, its src/ comes first, here
# and in every job, so that the workflow runs the code beside it; installed (a wheel, the
# conda environments, a module), it is imported as any package.
_SRC = Path(str(workflow.current_basedir)).parent.parent / "src"
if (_SRC / "fast_diff_py" / "__init__.py").is_file():
    sys.path.insert(0, str(_SRC))
    os.environ.update(
        PYTHONPATH=os.pathsep.join(
            p for p in (str(_SRC), os.environ.get("PYTHONPATH")) if p
        )
    )

try:
    import fast_diff_py as fdp
except ImportError as error:
    raise ImportError(
        f"fast-diff's workflow needs its package in this Python ({sys.executable}): "
        f"pip install fast-diff (or pip install -e . in a checkout) [{error}]"
    ) from None

# With a default storage (--default-storage-provider: nodes that share no disk) the searched
# folders, the intermediate files and the products are in the storage (fast_diff_py._storage)
STORAGE = workflow.storage_registry.default_storage_provider
STORAGE_PREFIX = workflow.storage_settings.default_storage_prefix
from fast_diff_py._jobs import cancel_pending_timers, outdated_jobs, threads_per_job
from snakemake.exceptions import WorkflowError

# a bad setting: its message, without a traceback of the workflow's code
try:
    fdp.validate_config(config, check_paths=STORAGE is None)
except fdp.ConfigError as error:
    raise WorkflowError(f"{type(error).__name__}: {error}") from None


# Once the run is over: what it found; and Snakemake would still wait up to a second for
# its scheduler's timer.
onsuccess:
    if STORAGE is None:
        fdp.print_summary(SUMMARY, DB_RECEIPT)
    else:
        fdp.print_stored_summary(STORAGE, STORAGE_PREFIX, SUMMARY)
    cancel_pending_timers()


onerror:
    print(
        "fast-diff: stopped; run the same command again to resume (finished jobs are kept)",
        file=sys.stderr,
    )
    cancel_pending_timers()


RESULTS = config["results_dir"]
FIRST = config["first_loop"]
SECOND = config["second_loop"]
HAS_PART_B = bool(config["part_b"]) or fdp.file_list_has_part_b(config["file_list"])
PAIRS = fdp.GPU_PAIR_DIR if config["compare"]["gpu_jobs"] else fdp.PAIR_DIR
# each run's job logs and Snakemake's benchmark files, with its other files
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
# the stages' folders (fast_diff_py._formats names every file between the stages)
INDEX = f"{RESULTS}/{fdp.INDEX_DIR}"
THUMBS = f"{RESULTS}/{fdp.THUMBNAIL_DIR}"
DIGESTS = f"{RESULTS}/{fdp.DIGEST_DIR}"
PLAN = f"{RESULTS}/{fdp.PLAN_DIR}"
DIFPY = os.path.join(os.path.dirname(config["db_path"]) or ".", "difpy")
# written by merge_database once db_path holds the whole new database
DB_RECEIPT = f"{RESULTS}/{fdp.DB_RECEIPT}"
# what the run found, beside the database, and the gallery (rule merge_database)
SUMMARY = fdp.summary_path(config["db_path"])
REPORT = fdp.report_path(config["db_path"])
REPORT_RECEIPT = f"{RESULTS}/{fdp.REPORT_RECEIPT}"
SUMMARY_RECEIPT = f"{RESULTS}/{fdp.SUMMARY_RECEIPT}"
# a digest of the folders as they are now (a stat walk): rewritten only when they changed,
# so that the index, and every stage after it, is made again exactly then
FOLDER_STATE = f"{RESULTS}/{fdp.FOLDER_STATE}"
FOLDER_WALK = f"{RESULTS}/{fdp.FOLDER_WALK}"
# the pairs a run kept for the next (on a disk that outlives the jobs), and the settings
# they hold under
KEPT_PAIRS = f"{RESULTS}/{fdp.KEPT_PAIRS_DIR}" if STORAGE is None else None
# the last index's thumbnail job inputs (on a disk that outlives the jobs)
KEPT_INDEX = f"{RESULTS}/{fdp.KEPT_INDEX_DIR}" if STORAGE is None else None
PAIRS_FINGERPRINT = fdp.pairs_fingerprint(config, HAS_PART_B)
# in a storage, the folders' files as listed there instead
STORAGE_LISTING = f"{RESULTS}/{fdp.STORAGE_LISTING}"


def check_gpu_partition():
    # the GPU profile leaves the GPU jobs' partition empty for the user to fill in: refuse
    # to send them to the default (CPU) partition
    wanted = workflow.resource_settings.overwrite_resources.get(
        "compare_blocks_gpu", {}
    )
    partition = wanted.get("slurm_partition")
    if partition is not None and str(partition.raw).strip("\"' ") == "":
        raise WorkflowError(
            "the GPU compare jobs have no partition: set slurm_partition under "
            "set-resources: compare_blocks_gpu: in the slurm-gpu profile "
            "(profiles/slurm-gpu/config.yaml), or pass "
            "--set-resources compare_blocks_gpu:slurm_partition=YOUR_GPU_PARTITION"
        )


if workflow.is_main_process:
    check_gpu_partition()
    if STORAGE is None:
        fdp.forget_changed_database(DB_RECEIPT, config["db_path"])
        # a run that stopped between the index or the plan and the merge: merged again
        fdp.forget_unfinished_database(
            DB_RECEIPT,
            [
                INDEX,
                *(
                    [
                        f"{PLAN}/{fdp.BLOCK_DIR}",
                        f"{PLAN}/blocks.parquet",
                        f"{PLAN}/block_pairs.parquet",
                        f"{PLAN}/{fdp.CARRIED_PAIRS}",
                    ]
                    if config["do_second_loop"]
                    else []
                ),
            ],
        )
        # an index folder missing a file since: indexed again
        fdp.forget_incomplete_index(INDEX, DB_RECEIPT)
        # a gallery or summary deleted since: written again (with the database)
        fdp.forget_missing_product(
            REPORT_RECEIPT, f"{REPORT}/{fdp.REPORT_INDEX}", "the gallery"
        )
        fdp.forget_missing_product(SUMMARY_RECEIPT, SUMMARY, "the summary")
        fdp.record_folder_state(FOLDER_STATE, config)
    else:
        fdp.record_storage_listing(
            STORAGE,
            STORAGE_PREFIX,
            STORAGE_LISTING,
            fdp.list_storage(
                STORAGE,
                STORAGE_PREFIX,
                **{**config, "exclude_paths": fdp.own_paths(config)},
            ),
        )


wildcard_constraints:
    shard=r"\d+",
    a=r"\d+",


def get_final_output():
    return [DB_RECEIPT, REPORT_RECEIPT, SUMMARY_RECEIPT]


def get_file_list(wildcards):
    return [config["file_list"]] if config["file_list"] else []


def get_folder_state(wildcards):
    # what the index is made from besides the configuration: the folders' digest, or their
    # listing in the storage
    if STORAGE is None:
        return {"state": FOLDER_STATE}
    return {"listing": STORAGE_LISTING}


def get_photos(wildcards):
    # in a storage, a thumbnail job's photos are its inputs, for Snakemake to stage
    if STORAGE is None:
        return {}
    shard = f"{index_dir()}/{fdp.shard_file(wildcards.shard, fdp.SHARD_FILES_SUFFIX)}"
    return {"photos": fdp.photos_to_read(shard)}


def in_storage(**files):
    # files that are no Snakemake outputs (the database, and the summary and gallery beside
    # it: see DB_RECEIPT) but must be where nodes share no disk: then they are
    return files if STORAGE is not None else {}


def index_dir():
    # the index job's folder, as the DAG reads it (a local copy where it is in a storage)
    return fdp.fetch(checkpoints.index_files.get().output.index_dir)


def get_shards():
    return fdp.shard_ids(index_dir())


def get_roots(wildcards):
    checkpoints.index_files.get()  # written by the index job, beside its shards
    return f"{INDEX}/{fdp.ROOTS_FILE}"


def get_index_shards(wildcards):
    return [f"{INDEX}/{fdp.shard_file(s)}" for s in get_shards()]


def get_cores():
    try:
        return workflow.cores
    except WorkflowError:  # no --cores: a cluster run, where profiles set the threads
        return None


def get_thumbnail_threads(wildcards):
    # the cores shared out among the jobs that run: all shards' side by side where there
    # are cores enough, else one thread each
    return threads_per_job(get_cores(), thumbnail_jobs(tuple(get_shards())), most=8)


_THUMBNAIL_JOBS = {}


def thumbnail_jobs(shards):
    # how many thumbnail jobs run: on a rerun, those of new and changed shards (the kept
    # shards' files keep their times); all where the files' times show none (new settings,
    # --forcerun) or the files are in a storage
    if STORAGE is not None:
        return len(shards)
    if shards not in _THUMBNAIL_JOBS:
        files = [f"{INDEX}/{fdp.shard_file(s, fdp.SHARD_FILES_SUFFIX)}" for s in shards]
        made = zip(get_thumb_meta(None), get_thumb_stacks(None), get_previews(None))
        outdated = outdated_jobs(zip(files, made))
        _THUMBNAIL_JOBS[shards] = outdated or len(shards)
    return _THUMBNAIL_JOBS[shards]


def get_thumb_stacks(wildcards):
    return [f"{THUMBS}/{fdp.shard_file(s, '.npy')}" for s in get_shards()]


def get_thumb_meta(wildcards):
    return [f"{THUMBS}/{fdp.shard_file(s)}" for s in get_shards()]


def get_previews(wildcards):
    return [f"{THUMBS}/{fdp.shard_file(s, fdp.PREVIEW_SUFFIX)}" for s in get_shards()]


def get_crop_stacks(wildcards):
    # crop thumbnails exist with crop_tolerance only
    if not config["crop_tolerance"]:
        return []
    return [
        f"{THUMBS}/{fdp.shard_file(s, fdp.CROP_STACK_SUFFIX)}" for s in get_shards()
    ]


def get_crop_sums(wildcards):
    if not config["crop_tolerance"]:
        return []
    return [f"{THUMBS}/{fdp.shard_file(s, fdp.CROP_SUMS_SUFFIX)}" for s in get_shards()]


def crop_outputs():
    # make_thumbnails' crop outputs, named only with crop_tolerance: runs without it keep
    # their shards
    if not config["crop_tolerance"]:
        return {}
    return {
        "crops": f"{THUMBS}/{fdp.shard_file('{shard}', fdp.CROP_STACK_SUFFIX)}",
        "crop_sums": f"{THUMBS}/{fdp.shard_file('{shard}', fdp.CROP_SUMS_SUFFIX)}",
    }


def digest_outputs():
    # make_thumbnails' digests, named only where the plan groups by them (diff_threshold 0):
    # a run at another threshold makes none
    if not fdp.needs_digests(config):
        return {}
    return {"digests": f"{DIGESTS}/{fdp.shard_file('{shard}')}"}


def get_digests(wildcards):
    # the plan for diff_threshold 0 groups images by digest; other thresholds need none
    if fdp.needs_digests(config):
        return [f"{DIGESTS}/{fdp.shard_file(s)}" for s in get_shards()]
    return []


def get_block_partners():
    # one compare job per A block, with every block its brightness range can match
    pairs = fdp.fetch(checkpoints.plan_blocks.get().output.pairs)
    return fdp.block_partners(os.path.dirname(pairs))


def get_partners(wildcards):
    # none for a block that no longer has a job (a plan made again: its job leaves the DAG)
    return get_block_partners().get(int(wildcards.a), [])


def get_block_files(wildcards):
    # block a and its partners: rows, thumbnails and (crop_tolerance) crops; none for a
    # block that no longer has a job (a plan made again, which writes thumbnails only for
    # the blocks it compares: its job leaves the DAG)
    if int(wildcards.a) not in get_block_partners():
        return {}
    blocks = dict.fromkeys([int(wildcards.a), *get_partners(wildcards)])
    files = {
        "rows": [f"{PLAN}/{fdp.BLOCK_DIR}/{fdp.block_file(b)}" for b in blocks],
        "thumbs": [
            f"{PLAN}/{fdp.BLOCK_DIR}/{fdp.block_file(b, '.npy')}" for b in blocks
        ],
    }
    if config["crop_tolerance"]:
        files["crops"] = [
            f"{PLAN}/{fdp.BLOCK_DIR}/{fdp.block_file(b, fdp.CROP_STACK_SUFFIX)}"
            for b in blocks
        ]
    return files


def get_compare_jobs():
    return list(get_block_partners())


def get_compare_threads(wildcards):
    return threads_per_job(get_cores(), len(get_compare_jobs()), most=4)


def get_pair_files(wildcards):
    if not config["do_second_loop"]:
        return []
    files = [f"{RESULTS}/{PAIRS}/{a}.parquet" for a in get_compare_jobs()]
    files.append(f"{PLAN}/{fdp.CARRIED_PAIRS}")
    if SECOND["skip_matching_hash"]:
        files.append(f"{RESULTS}/{fdp.HASH_PAIRS}")
    return files


def get_prune():
    return fdp.prunes(config)


# What a cluster job asks for: memory and minutes from the job's size (fast_diff_py._decisions),
# times its attempt when a job that ran out of either is retried.
def get_thumbnail_mem_mb(wildcards, threads, attempt):
    return attempt * fdp.thumbnail_mem_mb(config, threads)


def get_thumbnail_runtime(wildcards, threads, attempt):
    return fdp.thumbnail_runtime_min(config, threads, attempt)


def get_plan_mem_mb(wildcards, input, attempt):
    # the index shards bound the number of decoded files
    files = len(input.index) * config["shard_size"]
    return attempt * fdp.plan_mem_mb(config, files)


def get_compare_mem_mb(gpu=False):
    def compare_mem_mb(wildcards, attempt):
        return attempt * fdp.compare_mem_mb(config, gpu)

    return compare_mem_mb


def get_compare_runtime(wildcards, threads, attempt):
    partners = get_block_partners().get(int(wildcards.a), [])
    return fdp.compare_runtime_min(config, len(partners), threads, attempt)
