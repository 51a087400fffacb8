"""Snakemake adapter: compare one block pair."""
import logging
import os

from fast_diff_py._jobs import start_job

start_job(snakemake.log[0])

from fast_diff_py import compare_block_pair

logging.info("threads: %d (OMP_NUM_THREADS=%s)", snakemake.threads, os.environ.get("OMP_NUM_THREADS"))
p = snakemake.params
compare_block_pair(snakemake.input.plan_dir, list(snakemake.input.thumbs),
                   int(snakemake.wildcards.a), int(snakemake.wildcards.b), snakemake.output.pairs,
                   threshold=p.threshold, rotate=p.rotate, skip_matching_hash=p.skip_matching_hash,
                   match_aspect_by=p.match_aspect_by,
                   keep_non_matching_aspects=p.keep_non_matching_aspects, cpu_diff=p.cpu_diff,
                   gpu_diff=p.gpu_diff, backend=p.backend)
