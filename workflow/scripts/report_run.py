"""Snakemake adapter: the gallery of duplicate groups and the run's summary, beside the
database."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import report_run

p = snakemake.params
# in a storage the database, the gallery and the summary are files of the job, and the
# summary names where they are in the storage
index, summary = report_run(
    snakemake.input.get("db", p.db),
    snakemake.output.get("report", p.report),
    snakemake.output.get("summary", p.summary),
    p.threshold,
    threads=snakemake.threads,
    previews=list(snakemake.input.previews),
    storage=tuple(p.storage) if p.get("storage") else None,
    copy=snakemake.output.gallery,  # what snakemake --report shows
    benchmarks=p.benchmarks,
    gallery=p.gallery,
    shown=p.get("shown"),
)
with open(snakemake.output.report_receipt, "w") as fh:
    fh.write(f"{index}\n")
with open(snakemake.output.summary_receipt, "w") as fh:
    fh.write(f"{summary}\n")
