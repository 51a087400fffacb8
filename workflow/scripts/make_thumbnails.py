"""Snakemake adapter: thumbnails and hashes of one index shard."""

import logging
import os

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import inline_results_dir, make_thumbnails, photos_to_read, reuse_folders, reuse_root

logging.info("threads: %d (OMP_NUM_THREADS=%s)", snakemake.threads, os.environ.get("OMP_NUM_THREADS"))
p = snakemake.params
sources = None
if p.get("staged"):  # photos staged from a storage: each path's copy
    photos = snakemake.input.get("photos", [])
    photos = [photos] if isinstance(photos, str) else list(photos)
    sources = dict(zip(photos_to_read(snakemake.input.shard), photos, strict=True))
make_thumbnails(
    snakemake.input.shard,
    snakemake.output.thumbs,
    snakemake.output.meta,
    size=p.size,
    method=p.method,
    compute_hash=p.compute_hash,
    shift_amount=p.shift_amount,
    rotate=p.rotate,
    hash_fn=p.hash_fn,
    threads=snakemake.threads,
    max_image_pixels=p.max_image_pixels,
    max_file_bytes=p.max_file_bytes,
    crop_tolerance=p.get("crop_tolerance", 0.0),
    out_crops=snakemake.output.get("crops"),
    out_crop_sums=snakemake.output.get("crop_sums"),
    out_previews=snakemake.output.previews,
    reuse_dir=p.reuse,
    reuse_from=(
        reuse_folders(
            os.path.dirname(snakemake.input.shard),
            snakemake.wildcards.shard,
            p.reuse_root,
            # and what a run in one process over the same settings kept (difpy, the API)
            also=[reuse_root(inline_results_dir(snakemake.config["results_dir"]))],
        )
        if p.reuse
        else ()
    ),
    sources=sources,
    out_digests=snakemake.output.get("digests"),
    mirror=p.mirror,
    digests_from_hashes=p.digests_from_hashes,
)
