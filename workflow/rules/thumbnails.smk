rule make_thumbnails:
    input:
        shard=f"{RESULTS}/index/shard_{{shard}}.parquet",
    output:
        thumbs=f"{RESULTS}/thumbnails/shard_{{shard}}.npy",
        meta=f"{RESULTS}/thumbnails/shard_{{shard}}.parquet",
    params:
        size=config["compression_target"],
        interpolation=config["thumbnail_interpolation"],
        compute_hash=FIRST["compute_hash"],
        shift_amount=FIRST["shift_amount"],
        rotate=config["rotate"],
        hash_fn=config["hash_fn"],
    threads: 2
    conda:
        "../envs/cpu.yaml"
    log:
        "logs/thumbnails/make_thumbnails_{shard}.log",
    script:
        "../scripts/make_thumbnails.py"


rule make_all_thumbnails:
    input:
        get_thumb_stacks,
        get_thumb_meta,
