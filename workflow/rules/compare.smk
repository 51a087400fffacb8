checkpoint plan_blocks:
    input:
        # the index folder, whose time is that of the index job: the plan is made again
        # whenever the index is (its shards may keep their contents, and Snakemake, which
        # would then drop the plan from the run, leaves the merge waiting on it)
        **({"index_dir": INDEX} if STORAGE is None else {}),
        index=get_index_shards,
        meta=get_thumb_meta,
        digests=get_digests,
        crop_sums=get_crop_sums,
        thumbs=get_thumb_stacks,
        crops=get_crop_stacks,
    output:
        blocks=directory(f"{PLAN}/{fdp.BLOCK_DIR}"),
        table=f"{PLAN}/blocks.parquet",
        pairs=f"{PLAN}/block_pairs.parquet",
        carried=f"{PLAN}/{fdp.CARRIED_PAIRS}",
    log:
        f"{LOGS}/compare/plan_blocks.log",
    benchmark:
        f"{BENCHMARKS}/compare/plan_blocks.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=get_plan_mem_mb,
    params:
        size=config["compression_target"],
        block_size=config["block_size"],
        threshold=SECOND["diff_threshold"],
        has_part_b=HAS_PART_B,
        prune=get_prune(),
        # the pairs the last run kept, taken again for files unchanged since
        kept=KEPT_PAIRS,
        pairs_fingerprint=PAIRS_FINGERPRINT,
    script:
        "../scripts/plan_blocks.py"


# A job reads its blocks' files of the plan and no other: their rows, thumbnails and crops.
rule compare_blocks:
    input:
        unpack(get_block_files),
        pairs=f"{PLAN}/block_pairs.parquet",
    output:
        pairs=f"{RESULTS}/{fdp.PAIR_DIR}/{{a}}.parquet",
    log:
        f"{LOGS}/compare/compare_blocks_{{a}}.log",
    benchmark:
        f"{BENCHMARKS}/compare/compare_blocks_{{a}}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: get_compare_threads
    resources:
        mem_mb=get_compare_mem_mb(),
        runtime=get_compare_runtime,
    params:
        partners=get_partners,
        threshold=SECOND["diff_threshold"],
        rotate=config["rotate"],
        mirror=config["mirror"],
        skip_matching_hash=SECOND["skip_matching_hash"],
        match_aspect_by=SECOND["match_aspect_by"],
        keep_non_matching_aspects=SECOND["keep_non_matching_aspects"],
        cpu_diff=config["cpu_diff"],
        gpu_diff=config["gpu_diff"],
        backend=config["compare"]["backend"],
    script:
        "../scripts/compare_blocks.py"


# The same comparison as a GPU job: a profile maps `gpu` to its cluster's GPU nodes.
use rule compare_blocks as compare_blocks_gpu with:
    output:
        pairs=f"{RESULTS}/{fdp.GPU_PAIR_DIR}/{{a}}.parquet",
    log:
        f"{LOGS}/compare/compare_blocks_gpu_{{a}}.log",
    benchmark:
        f"{BENCHMARKS}/compare/compare_blocks_gpu_{{a}}.tsv"
    conda:
        "../envs/gpu.yaml"
    resources:
        mem_mb=get_compare_mem_mb(gpu=True),
        runtime=get_compare_runtime,
        gpu=1,


rule match_hashes:
    input:
        index=get_index_shards,
        meta=get_thumb_meta,
    output:
        pairs=f"{RESULTS}/{fdp.HASH_PAIRS}",
    log:
        f"{LOGS}/compare/match_hashes.log",
    benchmark:
        f"{BENCHMARKS}/compare/match_hashes.tsv"
    conda:
        "../envs/cpu.yaml"
    params:
        has_part_b=HAS_PART_B,
    script:
        "../scripts/match_hashes.py"


rule compare_all_blocks:
    input:
        get_pair_files,
