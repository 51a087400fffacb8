"""Snakemake adapter: order images into blocks and list the block pairs to compare."""

import os

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import KEPT_PAIRS_DIR, inline_results_dir, make_plan

p = snakemake.params
make_plan(
    list(snakemake.input.meta),
    list(snakemake.input.index),
    os.path.dirname(snakemake.output.pairs),  # the plan folder, written whole
    size=p.size,
    block_size=p.block_size,
    threshold=p.threshold,
    has_part_b=p.has_part_b,
    prune=p.prune,
    digest_paths=list(snakemake.input.digests),
    crop_sums_paths=list(snakemake.input.crop_sums),
    thumb_paths=list(snakemake.input.thumbs),
    crop_paths=list(snakemake.input.crops),
    # the pairs this workflow's last run kept, and those of a run in one process over the
    # same settings (difpy, the API); none to take (a storage run, a difference function of
    # the user's): no versions read
    kept=(
        (
            [p.kept, os.path.join(inline_results_dir(snakemake.config["results_dir"]), KEPT_PAIRS_DIR)],
            p.pairs_fingerprint,
        )
        if p.kept and p.pairs_fingerprint
        else None
    ),
    # its block thumbnails kept beside the plan, for the next (on a disk that outlives the jobs)
    keep_blocks=bool(p.kept),
)
