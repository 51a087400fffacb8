"""Snakemake adapter: stream every stage's output into the SQLite database."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import build_database, write_receipt

# in a storage the database is an output (rule merge_database)
db = snakemake.output.get("db", snakemake.params.db)
build_database(
    db,
    roots_path=snakemake.input.roots,
    index_paths=list(snakemake.input.index),
    meta_paths=list(snakemake.input.meta),
    pair_paths=list(snakemake.input.pairs),
)
write_receipt(snakemake.output.receipt, db)
