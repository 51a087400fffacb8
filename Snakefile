# fast-diff: find duplicate and similar images.
# index -> thumbnails (per shard) -> plan -> compare (per block pair) -> merge into SQLite.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/index.smk"
include: "workflow/rules/thumbnails.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/export.smk"


rule all:
    input:
        get_final_output(),
