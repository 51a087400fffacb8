"""Snakemake adapter: the gallery of duplicate groups, beside the database."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import link_gallery, make_report

p = snakemake.params
index = make_report(p.db, p.report, p.threshold, threads=snakemake.threads, previews=list(snakemake.input.previews))
link_gallery(index.parent, snakemake.output.gallery)  # what snakemake --report shows
with open(snakemake.output.receipt, "w") as fh:
    fh.write(f"{index}\n")
