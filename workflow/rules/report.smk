rule report_run:
    input:
        **in_storage(db=config["db_path"]),
        receipt=DB_RECEIPT,
        previews=get_previews,
    output:
        **in_storage(report=directory(REPORT), summary=SUMMARY),
        # the gallery and summary.json themselves (beside the database) are no outputs: see
        # REPORT_RECEIPT and SUMMARY_RECEIPT; the gallery's copy (hard links) in results_dir
        # is, for snakemake --report
        report_receipt=REPORT_RECEIPT,
        summary_receipt=SUMMARY_RECEIPT,
        gallery=report(
            directory(f"{RESULTS}/gallery"),
            htmlindex="index.html",
            caption="../report/gallery.rst",
            category="Gallery",
        ),
    log:
        f"{LOGS}/report/report_run.log",
    benchmark:
        f"{BENCHMARKS}/report/report_run.tsv"
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
        report=REPORT,
        summary=SUMMARY,
        threshold=SECOND["diff_threshold"],
        gallery=os.path.join(REPORT, fdp.REPORT_INDEX),
        benchmarks=BENCHMARKS,
    script:
        "../scripts/report_run.py"
