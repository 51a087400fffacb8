"""The staged pipeline (plan pruning, block kernel, hash and aspect filters) against the
naive computation over every pair."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import photo, shard_inputs, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fast_diff_py import (
    PairStatus,
    block_pair_ids,
    block_partners,
    compare_block_pair,
    compare_blocks,
    keep_pairs,
    make_digests,
    make_plan,
    make_thumbnails,
    match_hashes,
    naive_crop_dif,
    naive_dif,
    needs_digests,
    prunes,
    shard_file,
    shard_ids,
    write_index,
)
from fast_diff_py._errors import IntermediateError
from fast_diff_py._plan import block_path

SIZE = 16
CROP_TOLERANCE = 0.12  # crops of 4, 8 and 12 % of each side: visible at 16 x 16


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """Images spread over brightness, with near copies and rotations, thumbnailed once."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(11)
    for i in range(14):
        base = photo(i, 40 + 4 * (i % 3), 50)
        base = np.clip(base.astype(int) * (0.3 + i / 14), 0, 255).astype(np.uint8)
        write(root / "A" / f"{i:02d}.png", base)
        if i % 3 == 0:
            near = np.clip(base.astype(int) + rng.integers(-6, 7, base.shape), 0, 255)
            write(root / "B" / f"{i:02d}_near.png", near.astype(np.uint8))
        if i % 4 == 1:
            write(root / "B" / f"{i:02d}_rot.png", np.rot90(base, 3).copy())
        if i % 5 == 3:  # mirror images, as a front camera or an editor's flip makes them
            write(root / "B" / f"{i:02d}_mirror.png", np.ascontiguousarray(base[:, ::-1] if i % 2 else base[::-1]))
        if i in (2, 7):  # exact copies: dif 0 whatever the resize does
            write(root / "B" / f"{i:02d}_copy.png", base)
        if i % 4 == 2:  # trimmed copies: 4 % of each side, two rows and columns off each end
            h, w = base.shape[:2]
            write(root / "B" / f"{i:02d}_trimmed.png", base[h // 25 : h - h // 25, w // 25 : w - w // 25].copy())
    # thumbnail-sized images constant on the pruning grid's cells, and copies 3 levels
    # brighter: the grid bound equals their true difference (27), so pruning is at its edge
    for i in range(3):
        cells = rng.integers(10, 240, (8, 8, 3), dtype=np.uint8)
        blocky = np.repeat(np.repeat(cells, 2, axis=0), 2, axis=1)
        write(root / "A" / f"blocky_{i}.png", blocky)
        write(root / "B" / f"blocky_{i}_bright.png", blocky + np.uint8(3))
    (root / "A" / "broken.png").write_bytes(b"\x89PNG broken")
    out = {"root": root}
    for tag, part_a, part_b in (
        ("a", [str(root / "A"), str(root / "B")], []),
        ("ab", [str(root / "A")], [str(root / "B")]),
    ):
        work = root / f"work_{tag}"
        write_index(
            work / "index",
            part_a=part_a,
            part_b=part_b,
            recursive=True,
            ignore_names=[],
            ignore_paths=[],
            allowed_file_extensions=[".png"],
            shard_size=5,
        )
        shards = [work / "index" / shard_file(s) for s in shard_ids(work / "index")]
        metas, thumbs, crops, crop_sums = [], [], [], []
        for s, files in zip(shards, shard_inputs(work / "index")):
            t, m = work / "thumbs" / f"{s.stem}.npy", work / "thumbs" / f"{s.stem}.parquet"
            c, cs = work / "thumbs" / f"{s.stem}.crops.npy", work / "thumbs" / f"{s.stem}.crops.parquet"
            make_thumbnails(
                files,
                t,
                m,
                size=SIZE,
                compute_hash=True,
                shift_amount=2,
                crop_tolerance=CROP_TOLERANCE,
                out_crops=c,
                out_crop_sums=cs,
            )
            metas.append(str(m))
            thumbs.append(str(t))
            crops.append(str(c))
            crop_sums.append(str(cs))
        out[tag] = {
            "work": work,
            "index": [str(s) for s in shards],
            "meta": metas,
            "thumbs": thumbs,
            "crops": crops,
            "crop_sums": crop_sums,
            "has_b": bool(part_b),
        }
    return out


def all_images(run):
    """key -> (thumbnail, part_b, (px, py), hashes, crops) for decoded images."""
    images = {}
    for index, meta, thumbs, crops in zip(run["index"], run["meta"], run["thumbs"], run["crops"]):
        stack, crop_stack = np.load(thumbs), np.load(crops)
        parts = pq.read_table(index).column("part_b").to_pylist()
        keys = pq.read_table(index).column("key").to_pylist()
        for row, part, key in zip(pq.read_table(meta).to_pylist(), parts, keys, strict=True):
            if row["success"] == 1:
                hashes = {row[h] for h in ("hash_0", "hash_90", "hash_180", "hash_270")} - {None}
                images[key] = (
                    stack[row["thumb_row"]],
                    part,
                    (row["px"], row["py"]),
                    hashes,
                    crop_stack[row["thumb_row"]],
                )
    return images


def naive_pairs(run, threshold, rotate, skip_hash, aspect, keep_aspect, mirror=False, crop=False):
    images = all_images(run)
    rows = {}
    for ka, kb in itertools.combinations(sorted(images), 2):
        (ta, pa_, sa, ha, ca), (tb, pb, sb, hb, cb) = images[ka], images[kb]
        if run["has_b"] and (pa_, pb) != (0, 1):
            continue
        if skip_hash and ha & hb:
            rows[(ka, kb)] = (0.0, PairStatus.MATCHING_HASH)
            continue
        if aspect is not None:
            if aspect == 0:
                ok = sorted(sa) == sorted(sb)
            else:
                ra, rb = max(sa) / min(sa), max(sb) / min(sb)
                ok = ra * aspect >= rb >= ra / aspect
            if not ok:
                if keep_aspect:
                    rows[(ka, kb)] = (-1.0, PairStatus.NON_MATCHING_ASPECT)
                continue
        d = naive_crop_dif(ta, tb, ca, cb, rotate, mirror) if crop else naive_dif(ta, tb, rotate, mirror)
        if d <= threshold:
            rows[(ka, kb)] = (d, PairStatus.COMPUTED)
    return rows


def digests(run, tmp, rotate=True, mirror=False):
    """make_digests of every shard of a run, as the workflow makes them for threshold 0."""
    paths = []
    for i, (thumbs, meta) in enumerate(zip(run["thumbs"], run["meta"])):
        paths.append(str(tmp / f"digests_{i}.parquet"))
        make_digests(thumbs, meta, paths[-1], rotate=rotate, mirror=mirror)
    return paths


def staged_pairs(
    run,
    tmp,
    threshold,
    rotate,
    skip_hash,
    aspect,
    keep_aspect,
    block_size,
    backend="numpy",
    tile=1024,
    mirror=False,
    crop=False,
    kept=None,
):
    plan = tmp / "plan"
    # the workflow's own decisions, from the configuration these arguments make
    config = {
        "second_loop": {"diff_threshold": threshold, "keep_non_matching_aspects": keep_aspect},
        "cpu_diff": None,
        "gpu_diff": None,
        "crop_tolerance": CROP_TOLERANCE if crop else 0,
    }
    make_plan(
        run["meta"],
        run["index"],
        plan,
        size=SIZE,
        block_size=block_size,
        threshold=threshold,
        has_part_b=run["has_b"],
        prune=prunes(config),
        digest_paths=digests(run, tmp, rotate, mirror) if needs_digests(config) else None,
        crop_sums_paths=run["crop_sums"] if crop else None,
        thumb_paths=run["thumbs"],
        crop_paths=run["crops"] if crop else None,
        kept=kept,
    )
    rows = {}
    files = [plan / "carried_pairs.parquet"]  # the pairs taken from a last run (kept)
    for a, partners in block_partners(plan).items():  # one job per A block, as in the workflow
        out = tmp / f"pairs_{a}.parquet"
        compare_blocks(
            plan,
            a,
            partners,
            out,
            threshold=threshold,
            rotate=rotate,
            mirror=mirror,
            skip_matching_hash=skip_hash,
            match_aspect_by=aspect,
            keep_non_matching_aspects=keep_aspect,
            backend=backend,
            tile=tile,
            crops=crop,
        )
        files.append(out)
    if skip_hash:
        match_hashes(run["meta"], run["index"], tmp / "hash.parquet", has_part_b=run["has_b"])
        files.append(tmp / "hash.parquet")
    for f in files:
        for r in pq.read_table(f).to_pylist():
            key = (r["key_a"], r["key_b"])
            assert key not in rows, f"pair {key} stored twice"
            rows[key] = (r["dif"], PairStatus(r["success"]))
    return rows


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    tag=st.sampled_from(["a", "ab"]),
    threshold=st.one_of(st.sampled_from([0.0, 15.0, 27.0, 30.0, 200.0, 3 * 255.0**2]), st.floats(0, 3000)),
    rotate=st.booleans(),
    mirror=st.booleans(),
    crop=st.booleans(),
    skip_hash=st.booleans(),
    aspect=st.sampled_from([None, 0, 1, 1.2]),
    keep_aspect=st.booleans(),
    block_size=st.integers(1, 40),
    tile=st.integers(1, 12),
    backend=st.sampled_from(["numpy", "torch"] if _has_torch() else ["numpy"]),
)
def test_staged_equals_naive(
    corpus,
    tmp_path_factory,
    tag,
    threshold,
    rotate,
    mirror,
    crop,
    skip_hash,
    aspect,
    keep_aspect,
    block_size,
    tile,
    backend,
):
    run = corpus[tag]
    tmp = tmp_path_factory.mktemp("staged")
    expected = naive_pairs(run, threshold, rotate, skip_hash, aspect, keep_aspect, mirror, crop)
    got = staged_pairs(
        run, tmp, threshold, rotate, skip_hash, aspect, keep_aspect, block_size, backend, tile, mirror, crop
    )
    assert got == expected


def _forget(store: Path, rng: np.random.Generator, added: float, changed: float) -> set[int]:
    """Make the kept store of a full run that of a run before ``added`` of its files were
    added (forgotten) and ``changed`` changed (another size); returns their keys."""
    meta = json.loads((store / "kept.json").read_text())
    files = pq.read_table(store / "files.parquet")
    draw = rng.random(len(files))
    keep = draw >= added
    size = files.column("file_size").to_numpy().copy()
    size[draw >= 1 - changed] += 1
    files = files.set_column(files.schema.get_field_index("file_size"), "file_size", pa.array(size))
    pq.write_table(files.filter(pa.array(keep)), store / "files.parquet")
    with open(store / "files.parquet", "rb") as fh:
        meta["files_sha1"] = hashlib.file_digest(fh, "sha1").hexdigest()
    (store / "kept.json").write_text(json.dumps(meta))
    keys = files.column("key").to_numpy()
    return set(keys[~keep].tolist()) | set(keys[draw >= 1 - changed].tolist())


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    tag=st.sampled_from(["a", "ab"]),
    kept_threshold=st.sampled_from([30.0, 200.0, 3000.0]),
    lower=st.floats(0.05, 1),
    rotate=st.booleans(),
    mirror=st.booleans(),
    crop=st.booleans(),
    skip_hash=st.booleans(),
    aspect=st.sampled_from([None, 1.2]),
    block_size=st.integers(1, 40),
    added=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    changed=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**32 - 1),
)
def test_pairs_kept_from_a_last_run_give_the_pairs_of_comparing_all(
    corpus,
    tmp_path_factory,
    tag,
    kept_threshold,
    lower,
    rotate,
    mirror,
    crop,
    skip_hash,
    aspect,
    block_size,
    added,
    changed,
    seed,
):
    """A run that takes the pairs of unchanged files from a last run's kept store (at a
    threshold at least its own) and compares only the rest stores the pairs of comparing
    every pair, whatever was added or changed since."""
    run = corpus[tag]
    tmp = tmp_path_factory.mktemp("carry")
    options = (rotate, skip_hash, aspect, False)
    (tmp / "last").mkdir()
    staged_pairs(run, tmp / "last", kept_threshold, *options, block_size, mirror=mirror, crop=crop)
    store = tmp / "kept"
    last = tmp / "last"
    pair_files = [str(p) for p in [*last.glob("pairs_*.parquet"), *last.glob("hash.parquet")]]
    pair_files.append(str(last / "plan" / "carried_pairs.parquet"))
    keep_pairs(store, run["index"], run["meta"], pair_files, pairs_fingerprint="same", threshold=kept_threshold)
    new = _forget(store, np.random.default_rng(seed), added, changed)
    threshold = kept_threshold * lower
    (tmp / "now").mkdir()
    got = staged_pairs(
        run, tmp / "now", threshold, *options, block_size, mirror=mirror, crop=crop, kept=(store, "same")
    )
    assert got == naive_pairs(run, threshold, *options, mirror, crop)
    compared = [r for f in (tmp / "now").glob("pairs_*.parquet") for r in pq.read_table(f).to_pylist()]
    assert all(r["key_a"] in new or r["key_b"] in new for r in compared)  # only pairs with a new file


def test_pruning_skips_block_pairs(corpus, tmp_path):
    run = corpus["a"]
    total = make_plan(
        run["meta"],
        run["index"],
        tmp_path / "all",
        size=SIZE,
        block_size=2,
        threshold=10.0,
        has_part_b=False,
        prune=False,
    )
    kept = make_plan(
        run["meta"],
        run["index"],
        tmp_path / "pruned",
        size=SIZE,
        block_size=2,
        threshold=10.0,
        has_part_b=False,
        prune=True,
    )
    assert kept < total / 2


def test_threshold_zero_pairs_only_blocks_sharing_a_digest(corpus, tmp_path):
    run = corpus["a"]
    n_images = len(all_images(run))
    paths = digests(run, tmp_path)
    pairs = make_plan(
        run["meta"],
        run["index"],
        tmp_path / "zero",
        size=SIZE,
        block_size=2,
        threshold=0.0,
        has_part_b=False,
        digest_paths=paths,
    )
    blocks = pq.read_table(tmp_path / "zero" / "blocks.parquet").column("block").to_numpy()
    assert pairs <= (n_images + 1) // 2  # at most one per block, not one per pair of blocks
    canonical = [d for p in paths for d in pq.read_table(p).column("canonical").to_pylist()]
    assert len(canonical) == n_images
    assert len(set(canonical)) < len(canonical)  # the corpus holds rotated copies
    assert blocks.max() + 1 == (n_images + 1) // 2


def test_threshold_zero_plan_needs_every_digest(corpus, tmp_path):
    run = corpus["a"]
    with pytest.raises(ValueError, match="digest_paths"):
        make_plan(
            run["meta"], run["index"], tmp_path / "none", size=SIZE, block_size=2, threshold=0.0, has_part_b=False
        )
    with pytest.raises(ValueError, match="no canonical digest for"):
        make_plan(
            run["meta"],
            run["index"],
            tmp_path / "some",
            size=SIZE,
            block_size=2,
            threshold=0.0,
            has_part_b=False,
            digest_paths=digests(run, tmp_path)[1:],
        )


def test_custom_difference_function(corpus, tmp_path):
    run = corpus["a"]
    make_plan(
        run["meta"],
        run["index"],
        tmp_path / "plan",
        size=SIZE,
        block_size=4,
        threshold=50.0,
        has_part_b=False,
        prune=False,
        thumb_paths=run["thumbs"],
    )
    images = all_images(run)
    rows = {}
    for pair in block_pair_ids(tmp_path / "plan"):
        a, b = map(int, pair.split("_"))
        out = tmp_path / f"{pair}.parquet"
        compare_block_pair(tmp_path / "plan", a, b, out, threshold=50.0, cpu_diff="diffs:mean_abs")
        rows.update({(r["key_a"], r["key_b"]): r["dif"] for r in pq.read_table(out).to_pylist()})
    from diffs import mean_abs

    expected = {}
    for ka, kb in itertools.combinations(sorted(images), 2):
        d = mean_abs(images[ka][0], images[kb][0], True)
        if d <= 50.0:
            expected[(ka, kb)] = d
    assert rows == expected and rows


def test_gpu_diff_replaces_cpu_diff_where_a_gpu_is_seen(corpus, tmp_path, monkeypatch):
    import fast_diff_py._compare as compare

    run = corpus["a"]
    make_plan(
        run["meta"],
        run["index"],
        tmp_path / "plan",
        size=SIZE,
        block_size=100,
        threshold=1e9,
        has_part_b=False,
        prune=False,
        thumb_paths=run["thumbs"],
    )
    kw = dict(threshold=1e9, cpu_diff="diffs:mean_abs", gpu_diff="diffs:coarse_gpu")
    monkeypatch.setattr(compare, "gpu_available", lambda: False)
    compare_block_pair(tmp_path / "plan", 0, 0, tmp_path / "cpu.parquet", **kw)
    monkeypatch.setattr(compare, "gpu_available", lambda: True)
    compare_block_pair(tmp_path / "plan", 0, 0, tmp_path / "gpu.parquet", **kw)
    cpu = pq.read_table(tmp_path / "cpu.parquet").column("dif").to_pylist()
    gpu = pq.read_table(tmp_path / "gpu.parquet").column("dif").to_pylist()
    assert len(cpu) == len(gpu) > 0 and set(gpu) == {7.0} and set(cpu) != {7.0}


@pytest.mark.parametrize("tag", ["a", "ab"])
@pytest.mark.parametrize("block_size, tile", [(1, 1), (40, 1), (2, 1)])
def test_range_pruning_at_its_edge(corpus, tmp_path, tag, block_size, tile):
    """One image per block or tile: every block pair and tile is pruned by its own pair's
    bound, and the blocky copies 3 levels brighter (dif 27) sit exactly on it."""
    run = corpus[tag]
    expected = naive_pairs(run, 27.0, True, False, None, False)
    assert any(d == 27.0 for d, _ in expected.values())
    assert staged_pairs(run, tmp_path, 27.0, True, False, None, False, block_size, "numpy", tile) == expected


@pytest.mark.parametrize("tag", ["a", "ab"])
def test_one_compare_job_per_block(corpus, tmp_path, tag):
    """A job compares one A block with all its partners: as many jobs as A blocks at most,
    and the same rows as comparing the block pairs one at a time."""
    run = corpus[tag]
    n_pairs = make_plan(
        run["meta"],
        run["index"],
        tmp_path / "plan",
        size=SIZE,
        block_size=3,
        threshold=1e9,
        has_part_b=run["has_b"],
        thumb_paths=run["thumbs"],
    )
    blocks = pq.read_table(tmp_path / "plan" / "blocks.parquet")
    n_a = len({b for b, p in zip(blocks.column("block").to_pylist(), blocks.column("part_b").to_pylist()) if not p})
    partners = block_partners(tmp_path / "plan")
    assert len(partners) == n_a and sum(map(len, partners.values())) == n_pairs > len(partners)
    assert [f"{a}_{b}" for a, bs in partners.items() for b in bs] == block_pair_ids(tmp_path / "plan")
    a, bs = max(partners.items(), key=lambda item: len(item[1]))
    kw = dict(threshold=1e9, rotate=True)
    compare_blocks(tmp_path / "plan", a, bs, tmp_path / "row.parquet", **kw)
    one_by_one = []
    for b in bs:
        compare_block_pair(tmp_path / "plan", a, b, tmp_path / f"{b}.parquet", **kw)
        one_by_one += pq.read_table(tmp_path / f"{b}.parquet").to_pylist()
    row = pq.read_table(tmp_path / "row.parquet").to_pylist()
    assert row == one_by_one and len(row) > len(bs)


def test_trimmed_copies_are_closer_with_their_crops(corpus):
    """The corpus's trimmed copies match their originals far better through a crop, so the
    staged test above sees pairs that only crop tolerance finds."""
    images = all_images(corpus["a"])
    closer = 0
    for ka, kb in itertools.combinations(sorted(images), 2):
        (ta, _, _, _, ca), (tb, _, _, _, cb) = images[ka], images[kb]
        plain, cropped = naive_dif(ta, tb), naive_crop_dif(ta, tb, ca, cb)
        assert cropped <= plain
        closer += cropped < plain / 2
    assert closer >= 3


def test_the_database_reads_hashes_unless_the_statistics_say_there_are_none(tmp_path):
    """The database build skips reading a metadata file's hashes only where its Parquet
    statistics say every hash is null: a hash in any row group, or a file written without
    statistics, is read."""
    from fast_diff_py._db import _hashes_all_null
    from fast_diff_py._formats import HASH_COLUMNS, META_SCHEMA

    def meta(name: str, hashes: list[str | None], **options) -> str:
        cols = {f.name: pa.nulls(len(hashes), f.type) for f in META_SCHEMA}
        cols[HASH_COLUMNS[-1]] = pa.array(hashes, pa.string())
        path = tmp_path / name
        pq.write_table(pa.table(cols, schema=META_SCHEMA), path, **options)
        return str(path)

    assert _hashes_all_null(meta("none.parquet", [None] * 6, row_group_size=2))
    assert not _hashes_all_null(meta("last.parquet", [None] * 5 + ["ff00"], row_group_size=2))
    assert not _hashes_all_null(meta("unsaid.parquet", [None] * 6, write_statistics=False))
    (tmp_path / "cut.parquet").write_bytes(Path(meta("whole.parquet", [None] * 6)).read_bytes()[:-9])
    assert not _hashes_all_null(str(tmp_path / "cut.parquet"))


def test_a_compare_job_reads_the_thumbnails_near_a_match_and_checks_each(corpus, tmp_path, monkeypatch):
    """A compare job reads, of each block, the thumbnails of the images the bounds leave near
    a match, and checks each against its recorded sums: a thumbnail damaged in place that is
    read stops the job (and removes the plan); one it needs not read changes nothing."""
    import fast_diff_py._compare as compare

    run = corpus["a"]
    plan = tmp_path / "plan"

    def compared() -> tuple[dict, dict[int, set[int]], int]:
        if not plan.exists():
            make_plan(
                run["meta"],
                run["index"],
                plan,
                size=SIZE,
                block_size=4,
                threshold=15.0,
                has_part_b=False,
                thumb_paths=run["thumbs"],
            )
        seen: dict[int, list] = {}
        real = compare._thumbnails

        def spy(plan_dir, block, rows, sums):
            thumbs = real(plan_dir, block, rows, sums)
            seen.setdefault(block, []).append(thumbs)
            return thumbs

        monkeypatch.setattr(compare, "_thumbnails", spy)
        rows = {}
        for a, bs in block_partners(plan).items():
            compare_blocks(plan, a, bs, tmp_path / f"{a}.parquet", threshold=15.0)
            rows[a] = pq.read_table(tmp_path / f"{a}.parquet").to_pylist()
        read = {b: {int(r) for t in ts for r in t._rows[t._have]} for b, ts in seen.items()}
        return rows, read, sum(len(t) for ts in seen.values() for t in ts)

    pairs, read, total = compared()
    assert any(pairs.values()) and 0 < sum(map(len, read.values())) < total
    unread = next(
        (b, r) for b, rs in read.items() for r in range(len(np.load(block_path(plan, b, ".npy")))) if r not in rs
    )
    first_read = next((b, min(rs)) for b, rs in read.items() if rs)

    def damage(block: int, row: int) -> None:
        stack = np.load(block_path(plan, block, ".npy"), mmap_mode="r+")
        stack[row] = 255 - stack[row]
        stack.flush()
        del stack

    damage(*unread)
    assert compared()[0] == pairs
    damage(*first_read)
    with pytest.raises(IntermediateError, match="changed since it was written"):
        compared()
    assert not os.path.exists(block_path(plan, first_read[0], ".npy"))  # the workflow: the whole plan
    shutil.rmtree(plan)
    assert compared()[0] == pairs  # the plan made again
