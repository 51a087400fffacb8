"""Snakemake adapter: pairs that share a thumbnail hash."""
import logging

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")

from fast_diff_py import match_hashes

match_hashes(list(snakemake.input.meta), list(snakemake.input.index), snakemake.output.pairs,
             has_part_b=snakemake.params.has_part_b)
