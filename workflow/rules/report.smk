rule make_report:
    input:
        receipt=DB_RECEIPT,
        previews=get_previews,
    output:
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
        db=config["db_path"],
        report=REPORT,
        threshold=SECOND["diff_threshold"],
    script:
        "../scripts/make_report.py"
