checkpoint index_files:
    input:
        get_file_list,
        unpack(get_folder_state),
    output:
        index_dir=directory(INDEX),
    log:
        f"{LOGS}/index/index_files.log",
    benchmark:
        f"{BENCHMARKS}/index/index_files.tsv"
    conda:
        "../envs/cpu.yaml"
    params:
        part_a=config["part_a"],
        part_b=config["part_b"],
        recursive=config["recursive"],
        ignore_names=config["ignore_names"],
        ignore_paths=config["ignore_paths"],
        exclude_paths=fdp.own_paths(config),
        allowed_file_extensions=config["allowed_file_extensions"],
        shard_size=config["shard_size"],
        file_list=config["file_list"],
        # the last index's shard files, whose times an unchanged shard keeps
        kept=KEPT_INDEX,
        # the walk that found the folders changed, where the DAG was built
        walked=(FOLDER_WALK, FOLDER_STATE) if STORAGE is None else None,
    script:
        "../scripts/index_files.py"
