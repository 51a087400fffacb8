"""Snakemake adapter: index the partitions into Parquet shards."""

from fast_diff_py import start_job

start_job(snakemake.log[0])

from fast_diff_py import write_index

p = snakemake.params
write_index(
    snakemake.output.index_dir,
    part_a=p.part_a,
    part_b=p.part_b,
    recursive=p.recursive,
    ignore_names=p.ignore_names,
    ignore_paths=p.ignore_paths,
    allowed_file_extensions=p.allowed_file_extensions,
    shard_size=p.shard_size,
    file_list=p.file_list,
    exclude_paths=p.exclude_paths,
    listing=snakemake.input.get("listing"),
    kept=p.kept,
    walked=p.walked,
)
