"""Snakemake adapter: stream every stage's output into the SQLite database."""

import os

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import build_database, forget_shards, keep_pairs, write_receipt

# in a storage the database is an output (rule merge_database)
db = snakemake.output.get("db", snakemake.params.db)
build_database(
    db,
    roots_path=snakemake.input.roots,
    index_paths=list(snakemake.input.index),
    meta_paths=list(snakemake.input.meta),
    pair_paths=list(snakemake.input.pairs),
)
p = snakemake.params
if p.kept:  # for the next run: the pairs of files that will not have changed
    keep_pairs(
        p.kept,
        list(snakemake.input.index),
        list(snakemake.input.meta),
        list(snakemake.input.pairs),
        pairs_fingerprint=p.pairs_fingerprint,
        threshold=p.threshold,
    )
if p.forget:  # the files of shards gone from the index (every thumbnail job has run)
    forget_shards(os.path.dirname(snakemake.input.roots), p.forget, p.reuse_root)
write_receipt(snakemake.output.receipt, db)
