rule difpy:
    input:
        receipt=DB_RECEIPT,
    output:
        results=f"{DIFPY}/results.json",
        lower_quality=f"{DIFPY}/lower_quality.txt",
        stats=f"{DIFPY}/stats.json",
    log:
        f"{LOGS}/export/difpy.log",
    benchmark:
        f"{BENCHMARKS}/export/difpy.tsv"
    conda:
        "../envs/cpu.yaml"
    params:
        db=config["db_path"],
        similarity=SECOND["diff_threshold"] / fdp.DIF_PER_MSE,
        given_roots=config["part_a"] + config["part_b"],
    script:
        "../scripts/export_difpy.py"
