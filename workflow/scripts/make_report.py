"""Snakemake adapter: the gallery of duplicate groups, beside the database."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import make_report

make_report(snakemake.params.db, snakemake.output.report, snakemake.params.threshold, threads=snakemake.threads)
