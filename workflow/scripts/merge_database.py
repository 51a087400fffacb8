"""Snakemake adapter: stream every stage's output into the SQLite database."""
import logging

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")

from fast_diff_py import build_database

build_database(snakemake.output.db, roots_path=snakemake.params.roots,
               index_paths=list(snakemake.input.index), meta_paths=list(snakemake.input.meta),
               pair_paths=list(snakemake.input.pairs))
