rule merge_database:
    input:
        index=get_index_shards,
        meta=get_thumb_meta,
        pairs=get_pair_files,
    output:
        db=config["db_path"],
    params:
        roots=f"{RESULTS}/index/roots.parquet",
    conda:
        "../envs/cpu.yaml"
    log:
        "logs/merge/merge_database.log",
    benchmark:
        "benchmarks/merge/merge_database.tsv",
    script:
        "../scripts/merge_database.py"
