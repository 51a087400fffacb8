rule make_report:
    input:
        **in_storage(db=config["db_path"]),
        receipt=DB_RECEIPT,
        previews=get_previews,
    output:
        **in_storage(report=directory(REPORT)),
        # the gallery itself (REPORT, beside the database) is no output: see REPORT_RECEIPT;
        # its copy (hard links) in results_dir is, for snakemake --report
        receipt=REPORT_RECEIPT,
        gallery=report(
            directory(f"{RESULTS}/gallery"),
            htmlindex="index.html",
            caption="../report/gallery.rst",
            category="Gallery",
        ),
    log:
        f"{LOGS}/report/make_report.log",
    benchmark:
        f"{BENCHMARKS}/report/make_report.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 2
    params:
        **in_storage(storage=[STORAGE_PREFIX, REPORT]),
        db=config["db_path"],
        report=REPORT,
        threshold=SECOND["diff_threshold"],
        # in a storage, images link to their photos relative to the gallery's folder there
    script:
        "../scripts/make_report.py"
