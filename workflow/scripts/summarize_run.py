"""Snakemake adapter: what the run found, as summary.json beside the database."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import summarize, write_summary

p = snakemake.params
write_summary(summarize(p.db, p.threshold, p.benchmarks, p.gallery), p.summary)
with open(snakemake.output.receipt, "w") as fh:
    fh.write(f"{p.summary}\n")
