rule merge_database:
    input:
        roots=get_roots,
        index=get_index_shards,
        meta=get_thumb_meta,
        pairs=get_pair_files,
        previews=get_previews,
    output:
        **in_storage(db=config["db_path"], report=directory(REPORT), summary=SUMMARY),
        # db_path itself is no output: Snakemake would delete it before the job, and the
        # previous database must survive a failed build (the job replaces it atomically);
        # nor are the gallery and summary.json beside it (see REPORT_RECEIPT and
        # SUMMARY_RECEIPT); the gallery's copy (hard links) in results_dir is, for
        # snakemake --report
        receipt=DB_RECEIPT,
        report_receipt=REPORT_RECEIPT,
        summary_receipt=SUMMARY_RECEIPT,
        gallery=report(
            directory(f"{RESULTS}/gallery"),
            htmlindex="index.html",
            caption="../report/gallery.rst",
            category="Gallery",
        ),
    log:
        f"{LOGS}/merge/merge_database.log",
    benchmark:
        f"{BENCHMARKS}/merge/merge_database.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 2
    params:
        **in_storage(
            storage=[STORAGE_PREFIX, REPORT],
            shown={
                "database": STORAGE_PREFIX
                and fdp.storage_query(STORAGE_PREFIX, config["db_path"]),
                "gallery": STORAGE_PREFIX
                and fdp.storage_query(STORAGE_PREFIX, f"{REPORT}/{fdp.REPORT_INDEX}"),
            },
        ),
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
        report=REPORT,
        summary=SUMMARY,
        gallery=os.path.join(REPORT, fdp.REPORT_INDEX),
        benchmarks=BENCHMARKS,
    script:
        "../scripts/merge_database.py"
