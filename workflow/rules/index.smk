checkpoint index_files:
    output:
        index_dir=directory(f"{RESULTS}/index"),
    params:
        part_a=config["part_a"],
        part_b=config["part_b"],
        recursive=config["recursive"],
        ignore_names=config["ignore_names"],
        ignore_paths=config["ignore_paths"],
        allowed_file_extensions=config["allowed_file_extensions"],
        shard_size=config["shard_size"],
    conda:
        "../envs/cpu.yaml"
    log:
        "logs/index/index_files.log",
    script:
        "../scripts/index_files.py"
