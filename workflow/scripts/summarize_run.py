"""Snakemake adapter: what the run found, as summary.json beside the database."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import summarize, write_summary

p = snakemake.params
# in a storage the database and the summary are files of the job (rule summarize_run), and
# the summary names where they are in the storage
summary = summarize(snakemake.input.get("db", p.db), p.threshold, p.benchmarks, p.gallery)
summary.update(p.get("shown", {}))
out = snakemake.output.get("summary", p.summary)
write_summary(summary, out)
with open(snakemake.output.receipt, "w") as fh:
    fh.write(f"{out}\n")
