rule make_report:
    input:
        receipt=DB_RECEIPT,
    output:
        report=report(
            directory(REPORT),
            htmlindex=fdp.REPORT_INDEX,
            caption="../report/gallery.rst",
            category="Duplicates",
        ),
    params:
        db=config["db_path"],
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
