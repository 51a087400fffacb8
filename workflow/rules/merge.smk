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


rule summarize_run:
    input:
        **in_storage(db=config["db_path"]),
        receipt=DB_RECEIPT,
        report=REPORT_RECEIPT,
    output:
        **in_storage(summary=SUMMARY),
        # summary.json itself (SUMMARY, beside the database) is no output: see SUMMARY_RECEIPT
        receipt=SUMMARY_RECEIPT,
    log:
        f"{LOGS}/merge/summarize_run.log",
    conda:
        "../envs/cpu.yaml"
    params:
        **in_storage(
            shown={
                "database": STORAGE_PREFIX
                and fdp.storage_query(STORAGE_PREFIX, config["db_path"]),
                "gallery": STORAGE_PREFIX
                and fdp.storage_query(STORAGE_PREFIX, f"{REPORT}/{fdp.REPORT_INDEX}"),
            }
        ),
        db=config["db_path"],
        summary=SUMMARY,
        threshold=SECOND["diff_threshold"],
        gallery=os.path.join(REPORT, fdp.REPORT_INDEX),
        benchmarks=BENCHMARKS,
    script:
        "../scripts/summarize_run.py"
