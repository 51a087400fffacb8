"""Snakemake adapter: difPy's three output files from the database."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import difpy_parameters, difpy_report, write_difpy_files

out, p, cfg = snakemake.output, snakemake.params, snakemake.config
build, search = difpy_parameters(
    recursive=cfg["recursive"],
    in_folder=False,
    limit_extensions=True,
    px_size=cfg["compression_target"],
    similarity=p.similarity,
    rotate=cfg["rotate"],
    same_dim=cfg["second_loop"]["match_aspect_by"] == 0,
    processes=snakemake.threads,
    chunksize=cfg["block_size"],
)
results, lower, stats = difpy_report(
    p.db, similarity=p.similarity, given_roots=p.given_roots, build_parameters=build, search_parameters=search
)
write_difpy_files(results, lower, stats, out.results, out.lower_quality, out.stats)
