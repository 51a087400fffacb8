"""Snakemake adapter: compare one block with each block the plan pairs it with."""

import logging
import os

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import compare_blocks

logging.info("threads: %d (OMP_NUM_THREADS=%s)", snakemake.threads, os.environ.get("OMP_NUM_THREADS"))
p = snakemake.params
compare_blocks(
    os.path.dirname(snakemake.input.pairs),  # the plan folder, its block files in blocks/
    int(snakemake.wildcards.a),
    p.partners,
    snakemake.output.pairs,
    threshold=p.threshold,
    rotate=p.rotate,
    mirror=p.mirror,
    skip_matching_hash=p.skip_matching_hash,
    match_aspect_by=p.match_aspect_by,
    keep_non_matching_aspects=p.keep_non_matching_aspects,
    cpu_diff=p.cpu_diff,
    gpu_diff=p.gpu_diff,
    backend=p.backend,
    crops=bool(getattr(snakemake.input, "crops", None)),
)
