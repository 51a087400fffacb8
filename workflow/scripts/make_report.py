"""Snakemake adapter: the gallery of duplicate groups, beside the database."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import link_gallery, make_report

p = snakemake.params
# in a storage the database and the gallery are files of the job (rule make_report)
index = make_report(
    snakemake.input.get("db", p.db),
    snakemake.output.get("report", p.report),
    p.threshold,
    threads=snakemake.threads,
    previews=list(snakemake.input.previews),
    storage=tuple(p.storage) if p.get("storage") else None,
)
link_gallery(index.parent, snakemake.output.gallery)  # what snakemake --report shows
with open(snakemake.output.receipt, "w") as fh:
    fh.write(f"{index}\n")
