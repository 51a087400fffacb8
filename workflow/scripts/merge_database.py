"""Snakemake adapter: stream every stage's output into the SQLite database."""
from fast_diff_py._jobs import start_job

start_job(snakemake.log[0])

from fast_diff_py import build_database

build_database(snakemake.output.db, roots_path=snakemake.params.roots,
               index_paths=list(snakemake.input.index), meta_paths=list(snakemake.input.meta),
               pair_paths=list(snakemake.input.pairs))
