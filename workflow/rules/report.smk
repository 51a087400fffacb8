rule make_report:
    input:
        receipt=DB_RECEIPT,
    output:
        # the gallery itself (REPORT, beside the database) is no output: see REPORT_RECEIPT
        receipt=REPORT_RECEIPT,
    params:
        db=config["db_path"],
        report=REPORT,
        threshold=SECOND["diff_threshold"],
    threads: 2
    conda:
        "../envs/cpu.yaml"
    log:
        f"{LOGS}/report/make_report.log",
    benchmark:
        f"{BENCHMARKS}/report/make_report.tsv",
    script:
        "../scripts/make_report.py"
