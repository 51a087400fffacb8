rule merge_database:
    input:
        roots=get_roots,
        index=get_index_shards,
        meta=get_thumb_meta,
        pairs=get_pair_files,
    output:
        **in_storage(db=config["db_path"]),
        # db_path itself is no output: Snakemake would delete it before the job, and the
        # previous database must survive a failed build (the job replaces it atomically)
        receipt=DB_RECEIPT,
    log:
        f"{LOGS}/merge/merge_database.log",
    benchmark:
        f"{BENCHMARKS}/merge/merge_database.tsv"
    conda:
        "../envs/cpu.yaml"
    params:
        db=config["db_path"],
        # what the next run takes again (fast_diff_py._carry)
        kept=KEPT_PAIRS if config["do_second_loop"] else None,
        pairs_fingerprint=PAIRS_FINGERPRINT,
        threshold=SECOND["diff_threshold"],
        # the files of shards no longer in the index are removed (not in a storage)
        forget=(
            [
                THUMBS,
                DIGESTS,
                f"{LOGS}/thumbnails",
                f"{BENCHMARKS}/thumbnails",
            ]
            if STORAGE is None
            else []
        ),
        reuse_root=f"{THUMBS}/{fdp.REUSE_DIR}",
    script:
        "../scripts/merge_database.py"
