"""What a run does, decided once from its configuration: which pruning and optional stages
apply, and what each job needs. Plain functions of the validated config, used by the
workflow's rules, the command lines and the tests alike."""

from __future__ import annotations

import math
from typing import Any

from ._formats import CROP_VARIANTS

__all__ = [
    "block_size_for",
    "compare_mem_mb",
    "compare_runtime_min",
    "digests_from_hashes",
    "job_memory",
    "needs_digests",
    "plan_mem_mb",
    "prunes",
    "thumbnail_mem_mb",
    "thumbnail_runtime_min",
]

Config = dict[str, Any]


def prunes(config: Config) -> bool:
    """Whether the plan and the compare jobs may skip pairs their bounds rule out: not when
    rejected aspects are kept (every pair gets a row) or a user difference replaces dif."""
    return not config["second_loop"]["keep_non_matching_aspects"] and not (config["cpu_diff"] or config["gpu_diff"])


def needs_digests(config: Config) -> bool:
    """Whether the plan groups images by canonical digest (the thumbnail jobs make them): only at
    diff_threshold 0, where equal digests are the only pairs that can match, only when
    pruning, and not with crop tolerance (a crop may match at 0 whatever the digests)."""
    return config["second_loop"]["diff_threshold"] == 0 and prunes(config) and not config.get("crop_tolerance")


def digests_from_hashes(config: Config) -> bool:
    """Whether the thumbnail shards' hashes are the digests already: made unshifted by the
    default hash, and no mirror images to add."""
    first = config["first_loop"]
    return first["compute_hash"] and first["shift_amount"] == 0 and not config["hash_fn"] and not config["mirror"]


def job_memory(config: Config) -> dict[str, int]:
    """Bytes of thumbnails a thumbnail job (its shard, of the longest) and a compare job (two
    blocks) hold, crop thumbnails (crop_tolerance) included."""
    from ._formats import LONGEST_SHARD

    thumb = 3 * config["compression_target"] ** 2 * (1 + (CROP_VARIANTS if config.get("crop_tolerance") else 0))
    return {
        "make_thumbnails": LONGEST_SHARD * config["shard_size"] * thumb,
        "compare_blocks": 2 * config["block_size"] * thumb,
    }


def thumbnail_mem_mb(config: Config, threads: int) -> int:
    """The memory (MB) a thumbnail job of ``threads`` threads declares: its shard's stack,
    and per thread the file it reads and the image it decodes, counted as a photo of at most
    50 MB and 50 megapixels (``max_file_bytes`` and ``max_image_pixels`` bound the rare
    larger ones)."""
    per_thread = min(config["max_file_bytes"], 50 << 20) + 3 * min(config["max_image_pixels"], 50_000_000)
    return 400 + (job_memory(config)["make_thumbnails"] + max(1, threads) * per_thread) // 2**20


def plan_mem_mb(config: Config, files: int) -> int:
    """The memory (MB) the plan job declares: the metadata of up to ``files`` decoded files
    (sums, hashes, keys and blocks, with the copies sorting makes), and one block's
    thumbnails and crop thumbnails, gathered from the shards and written out block by block."""
    return 500 + (files * 1024 + job_memory(config)["compare_blocks"]) // 2**20


def compare_mem_mb(config: Config, gpu: bool = False) -> int:
    """The memory (MB) a compare job declares: two blocks of uint8 thumbnails and their grid
    sums; the numpy kernel works through tiles of 1024 x 1024 pairs (centred float32 copies,
    float64 score tiles), the torch kernel through whole blocks (block_size^2 masks and
    scores on the host). Crop thumbnails (crop_tolerance) add their stacks, read and then
    laid out crop by crop (two copies while a block loads), and their grid sums."""
    d = 3 * config["compression_target"] ** 2
    n = config["block_size"]
    tile = n if gpu else min(n, 1024)
    crops = (CROP_VARIANTS + 1) * 2 * n * (d + 1536) if config.get("crop_tolerance") else 0
    return 500 + (2 * n * d + 2 * n * 1536 + crops + 2 * tile * d * 4 * 2 + 8 * tile * tile * 8) // 2**20


def block_size_for(compression_target: int) -> int:
    """Thumbnails per comparison block when none is asked for (``difpy`` without ``-ch``):
    one compare job's two blocks near 256 MB whatever the thumbnail size, between 8 and 8192."""
    return max(8, min(8192, 2**27 // (3 * compression_target * compression_target)))


# One thread's work, with room for slow nodes and large photos: seconds to decode one photo
# (a 50-megapixel JPEG decoded whole), and to compare a million pairs of 64 x 64 thumbnails
# with every rotation (scaled by the thumbnail's pixels). A cluster job asks for the time
# these give, at least SHORTEST_JOB_MIN, and times its attempt on retry.
SECONDS_PER_PHOTO = 1.0
SECONDS_PER_MILLION_PAIRS = 2.0
SHORTEST_JOB_MIN = 10


def thumbnail_runtime_min(config: Config, threads: int, attempt: int = 1) -> int:
    """Minutes a thumbnail job of ``threads`` threads asks for: a whole shard of photos, of
    the longest."""
    from ._formats import LONGEST_SHARD

    seconds = LONGEST_SHARD * config["shard_size"] * SECONDS_PER_PHOTO / max(1, threads)
    return attempt * max(SHORTEST_JOB_MIN, math.ceil(seconds / 60))


def compare_runtime_min(config: Config, partners: int, threads: int, attempt: int = 1) -> int:
    """Minutes a compare job of ``threads`` threads asks for: one block against ``partners``
    blocks, every pair compared (pruning only shortens it)."""
    pairs = config["block_size"] ** 2 * max(1, partners)
    scale = (config["compression_target"] / 64) ** 2
    seconds = pairs / 1e6 * SECONDS_PER_MILLION_PAIRS * scale / max(1, threads)
    return attempt * max(SHORTEST_JOB_MIN, math.ceil(seconds / 60))
