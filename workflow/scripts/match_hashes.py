"""Snakemake adapter: pairs that share a thumbnail hash."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import match_hashes

match_hashes(
    list(snakemake.input.meta),
    list(snakemake.input.index),
    snakemake.output.pairs,
    has_part_b=snakemake.params.has_part_b,
)
