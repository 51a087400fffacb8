"""Snakemake adapter: every stage's output streamed into the SQLite database, then the
gallery of duplicate groups and the run's summary beside it."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import finish_run

p = snakemake.params
# in a storage the database, the gallery and the summary are files of the job, and the
# summary names where they are in the storage
index, summary = finish_run(
    snakemake.output.get("db", p.db),
    roots_path=snakemake.input.roots,
    index_paths=list(snakemake.input.index),
    meta_paths=list(snakemake.input.meta),
    pair_paths=list(snakemake.input.pairs),
    receipt=snakemake.output.receipt,
    kept=p.kept,
    pairs_fingerprint=p.pairs_fingerprint,
    forget=p.forget,
    reuse_root=p.reuse_root,
    out_dir=snakemake.output.get("report", p.report),
    summary_file=snakemake.output.get("summary", p.summary),
    threshold=p.threshold,
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
