"""Snakemake adapter: canonical digests of one shard's thumbnails."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import make_digests

make_digests(
    snakemake.input.thumbs,
    snakemake.input.meta,
    snakemake.output.digests,
    rotate=snakemake.params.rotate,
    mirror=snakemake.params.mirror,
    from_hashes=snakemake.params.from_hashes,
)
