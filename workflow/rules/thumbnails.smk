rule make_thumbnails:
    input:
        unpack(get_photos),
        # the shard's files without keys: the same while they are, whatever other shards hold
        shard=f"{INDEX}/{fdp.shard_file('{shard}', fdp.SHARD_FILES_SUFFIX)}",
    output:
        **crop_outputs(),
        **digest_outputs(),
        thumbs=f"{THUMBS}/{fdp.shard_file('{shard}', '.npy')}",
        meta=f"{THUMBS}/{fdp.shard_file('{shard}')}",
        previews=f"{THUMBS}/{fdp.shard_file('{shard}', fdp.PREVIEW_SUFFIX)}",
    log:
        f"{LOGS}/thumbnails/make_thumbnails_{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/thumbnails/make_thumbnails_{{shard}}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: get_thumbnail_threads  # the cores shared out among the shards; profiles may set their own
    resources:
        mem_mb=get_thumbnail_mem_mb,
        runtime=get_thumbnail_runtime,
    params:
        **(
            {"crop_tolerance": config["crop_tolerance"]}
            if config["crop_tolerance"]
            else {}
        ),
        **({"staged": True} if STORAGE is not None else {}),
        size=config["compression_target"],
        method=config["thumbnail_method"],
        compute_hash=FIRST["compute_hash"],
        shift_amount=FIRST["shift_amount"],
        rotate=config["rotate"],
        hash_fn=config["hash_fn"],
        max_image_pixels=config["max_image_pixels"],
        max_file_bytes=config["max_file_bytes"],
        meta_version=fdp.META_VERSION,  # a new definition makes the shards of older runs again
        preview_version=fdp.PREVIEW_VERSION,  # and of the previews, from the kept thumbnails
        # how the digests are made where the plan asks for them (any threshold, so that a
        # change of threshold alone does not remake the thumbnails)
        mirror=config["mirror"],
        digests_from_hashes=fdp.digests_from_hashes(config),
        # what this shard's last job made, taken again for files of the same version (on a
        # disk that outlives the jobs)
        reuse=f"{THUMBS}/{fdp.REUSE_DIR}/{{shard}}" if STORAGE is None else None,
        # and what the neighbouring shards' jobs kept (files move across a shard's ends):
        # the job finds them in the index beside its input, so that no other shard's id is
        # a param of this one
        reuse_root=f"{THUMBS}/{fdp.REUSE_DIR}" if STORAGE is None else None,
    script:
        "../scripts/make_thumbnails.py"


rule make_all_thumbnails:
    input:
        get_thumb_stacks,
        get_thumb_meta,
