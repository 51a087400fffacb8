"""The thumbnail stage: one shard of the index to a stack of thumbnails, their hashes and
sums; and the canonical digests the plan for ``diff_threshold == 0`` groups by."""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._crops import crop_fractions
from ._decode import MAX_IMAGE_PIXELS, PREVIEW_SIDE, Method, decode_thumbnail_and_crops
from ._errors import ImageReadError
from ._files import MAX_FILE_BYTES, READ_AHEAD_BYTES, READ_AHEAD_FILES, FileIdentity, advise, read_ahead
from ._formats import (
    CROP_SUMS_SCHEMA,
    DIGEST_SCHEMA,
    HASH_COLUMNS,
    META_SCHEMA,
    PREVIEW_MADE_AS,
    PREVIEW_ROW_GROUP,
    PREVIEW_SCHEMA,
    FileStatus,
    crop_sum_columns,
)
from ._hashing import canonical, canonical_digests, default_hash, hash_stack
from ._io import arrow_array, atomic_path, read_parquet
from ._kernel import channel_sums
from ._paths import native
from ._plugins import resolve
from ._progress import Progress
from ._reuse import HashKeys, Kept, Previous, fingerprint, keep

__all__ = ["make_digests", "make_thumbnails"]

logger = logging.getLogger(__name__)

# the index columns a thumbnail job reads
_INDEX_COLUMNS = [
    "path",
    "path_bytes",
    "file_size",
    "created",
    "allowed",
    "error",
    "alias",
    "dev",
    "inode",
    "mtime_ns",
]
# the meta columns taken from each file's row as the job made it
_ROW_COLUMNS = ("success", "error", "px", "py", *FileIdentity._fields)


def make_thumbnails(
    index_shard: str | os.PathLike[str],
    out_thumbs: str | os.PathLike[str],
    out_meta: str | os.PathLike[str],
    *,
    size: int,
    method: Method = "quality",
    compute_hash: bool = False,
    shift_amount: int = 0,
    rotate: bool = True,
    hash_fn: str | Callable[[np.ndarray], str] | None = None,
    threads: int = 1,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    max_file_bytes: int = MAX_FILE_BYTES,
    crop_tolerance: float = 0.0,
    out_crops: str | os.PathLike[str] | None = None,
    out_crop_sums: str | os.PathLike[str] | None = None,
    out_previews: str | os.PathLike[str] | None = None,
    reuse_dir: str | os.PathLike[str] | None = None,
    reuse_from: Sequence[str | os.PathLike[str]] = (),
    sources: Mapping[str, str] | None = None,
    out_digests: str | os.PathLike[str] | None = None,
    mirror: bool = False,
    digests_from_hashes: bool = False,
) -> None:
    """Thumbnail and hash every allowed file of one index shard (``index_shard``: its rows
    without keys, SHARD_FILES_SCHEMA).

    Writes ``out_thumbs`` (uint8, N x size x size x 3, one row per decoded file) and
    ``out_meta`` (one row per file of the shard, schema META_SCHEMA). Files that fail get
    ``success = 0`` and their error (a file no longer the version indexed among them);
    disallowed files and second names of a file (``alias``) ``success = -1``. With
    ``crop_tolerance`` also ``out_crops`` (uint8, N x CROP_VARIANTS x size x size x 3: the
    crop thumbnails of ``fast_diff_py._crops``, rows as in ``out_thumbs``) and
    ``out_crop_sums`` (CROP_SUMS_SCHEMA). With ``out_previews`` also the gallery's thumbnail of
    each decoded file (PREVIEW_SCHEMA), from the same decoding.

    With ``reuse_dir`` (and ``out_previews``) the job keeps what it made there, and takes
    from what the last jobs kept in ``reuse_dir`` and ``reuse_from`` (the neighbouring
    shards' folders) every file of the same version instead of decoding it again
    (``fast_diff_py._reuse``), with its hashes and digest where they were kept with the same
    settings: the outputs are those of decoding and hashing every file.

    With ``sources`` (path -> file, for every path the job reads: ``_storage.photos_to_read``)
    each photo is read from the file given for its path, a copy Snakemake staged from a
    storage, known to be the version indexed by its size.

    With ``out_digests`` (the plan for ``diff_threshold`` 0 only) also the shard's canonical
    digests, as ``make_digests`` makes them of the outputs (with ``rotate``, ``mirror`` and
    ``digests_from_hashes``): in the same job, which the digests would otherwise cost a start.
    """
    fractions = crop_fractions(crop_tolerance)
    if fractions and (out_crops is None or out_crop_sums is None):
        raise ValueError("crop_tolerance > 0 writes crop thumbnails: pass out_crops and out_crop_sums")
    fn = resolve(hash_fn) if hash_fn else default_hash
    index = read_parquet(index_shard, columns=_INDEX_COLUMNS).to_pylist()
    for i, row in enumerate(index):
        row["row"] = i
    if sources is not None:
        for row in index:
            if _to_read(row):
                try:
                    row["source"] = sources[row["path"]]
                except KeyError:
                    raise ValueError(f"{row['path']!r} of {os.fspath(index_shard)!r}: no staged copy given") from None
    cv2.setNumThreads(1)
    # OpenCV's own bound for the formats whose headers header_size does not read (it is read
    # once per process, at the first decode)
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(max_image_pixels))
    reusing = reuse_dir is not None and out_previews is not None
    made_as = fingerprint(
        size=size,
        method=method,
        crops=fractions,
        preview=PREVIEW_SIDE,
        max_image_pixels=max_image_pixels,
        max_file_bytes=max_file_bytes,
    )
    previous = Previous([reuse_dir, *reuse_from] if reuse_dir is not None and reusing else [], made_as)
    # one row per file, allocated but untouched (no memory) until a thumbnail is written into it
    buf = np.empty((len(index), size, size, 3), np.uint8)
    crop_buf = np.empty((len(index), len(fractions), size, size, 3), np.uint8)
    kept: dict[int, tuple] = {}
    if len(previous):
        kept = previous.take_into([row for row in index if _to_read(row)], size, len(fractions), buf, crop_buf)
    thumbnail = functools.partial(
        _thumbnail_row,
        size=size,
        method=method,
        crops=fractions,
        preview=out_previews is not None,
        max_pixels=max_image_pixels,
        max_bytes=max_file_bytes,
        kept=kept,
    )
    # the files read: those without a kept thumbnail (the kernel is asked to read them ahead)
    reads = (lambda row: _to_read(row) and row["row"] not in kept) if kept else _to_read
    stack, crops, rows = _decode_shard(index, thumbnail, buf, crop_buf, threads, reads)
    # where each thumbnail of the stack was kept, if it was taken from there
    taken = [r.pop("kept", None) for r in rows if r["success"] == FileStatus.SUCCESS]
    if reusing:
        logger.info(
            "%d of %d files taken from the last run's thumbnails (the same version)",
            sum(k is not None for k in taken),
            len(rows),
        )
    # the settings hashes and digests are made with: what was kept under the same is taken
    keys = HashKeys(
        json.dumps({"shift_amount": shift_amount, "rotate": rotate}) if compute_hash and fn is default_hash else None,
        json.dumps({"rotate": rotate, "mirror": mirror}) if out_digests is not None else None,
    )
    # hashing is a Python loop over the thumbnails (OpenCV turns them, hashlib hashes them):
    # more threads would only take turns at the GIL
    hashes = (
        _taking_kept(
            stack,
            taken,
            lambda k: k.hashes(keys.hashes),
            lambda part: hash_stack(part, shift_amount=shift_amount, rotate=rotate, hash_fn=fn),
        )
        if compute_hash
        else None
    )
    digests = None
    if out_digests is not None:
        if digests_from_hashes:
            if hashes is None:
                raise ValueError("digests_from_hashes takes the digests from the hashes: it needs compute_hash")
            digests = [canonical(h) for h in hashes]
        else:
            digests = _taking_kept(
                stack,
                taken,
                lambda k: k.digest(keys.digests),
                lambda part: canonical_digests(part, rotate, mirror),
            )
    _save_stack(out_thumbs, stack)
    if fractions:
        assert out_crops is not None and out_crop_sums is not None
        _save_stack(out_crops, crops)
        with atomic_path(out_crop_sums) as tmp:
            pq.write_table(_crop_sums_table(rows, crops), tmp)
    if out_previews is not None:
        decoded = [(i, r) for i, r in zip(index, rows) if r["success"] == FileStatus.SUCCESS]
        previews = {"path": [i["path"] for i, _ in decoded], "jpeg": [r.get("preview") for _, r in decoded]}
        with atomic_path(out_previews) as tmp:
            # no dictionary: every path and every JPEG differs, and the gallery reads the
            # previews faster without one (bench/README.md)
            # with the settings they were made under: the gallery knows a page it wrote by them
            table = pa.table(previews, schema=PREVIEW_SCHEMA.with_metadata({PREVIEW_MADE_AS: made_as}))
            pq.write_table(table, tmp, row_group_size=PREVIEW_ROW_GROUP, use_dictionary=False)
    with atomic_path(out_meta) as tmp:
        pq.write_table(_meta_table(rows, stack, hashes), tmp)
    if out_digests is not None:
        assert digests is not None
        decoded_rows = [i for i, r in enumerate(rows) if r["success"] == FileStatus.SUCCESS]
        _write_digests(out_digests, decoded_rows, digests)
    if reusing:
        assert reuse_dir is not None and out_previews is not None
        keep(
            reuse_dir,
            index,
            rows,
            stack,
            crops,
            out_thumbs,
            out_crops if fractions else None,
            out_previews,
            made_as,
            keys,
            hashes,
            digests,
        )


def _taking_kept(
    stack: np.ndarray,
    taken: Sequence[Kept | None],
    kept: Callable[[Kept], object | None],
    make: Callable[[np.ndarray], Sequence],
) -> list:
    """For each thumbnail of ``stack``: what ``kept`` finds where it was kept (``taken``),
    else what ``make`` makes of it (called once, on the thumbnails without)."""
    out = [kept(k) if k is not None else None for k in taken]
    missing = [i for i, v in enumerate(out) if v is None]
    if missing:
        for i, v in zip(missing, make(stack[missing] if len(missing) < len(stack) else stack), strict=True):
            out[i] = v
    return out


def _save_stack(path: str | os.PathLike[str], stack: np.ndarray) -> None:
    """Write ``stack`` as an ``.npy`` file, whole or not at all."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, stack)


def _to_read(row: dict) -> bool:
    """Whether a file of the index is read: allowed, listed without error, under its own name."""
    return bool(row["allowed"]) and not row["error"] and not row["alias"]


def _source(row: dict) -> str:
    """The file to read for an index row: its staged copy, or the path itself."""
    return row.get("source") or native(row["path"], row["path_bytes"])


def _thumbnail_row(
    row: dict,
    *,
    size: int,
    method: Method,
    crops: tuple[float, ...],
    preview: bool,
    max_pixels: int,
    max_bytes: int,
    kept: Mapping[int, tuple[int, int, bytes | None, Kept]] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray] | None, dict]:
    """One file of the index: its thumbnail and crop thumbnails (None where there is none,
    or where they were taken from the last run's: ``kept``, by row, which
    ``Previous.take_into`` copied into the stack already) and its meta row."""
    out = {
        "row": row["row"],
        "success": int(FileStatus.NOT_COMPUTED),
        "error": row["error"],
        "px": -1,
        "py": -1,
        "dev": -1,
        "inode": 0,
        "file_size": -1,
        "mtime_ns": -1,
    }
    if row["alias"]:  # another name of a file that is read under its own
        return None, out
    if row["error"]:
        out["success"] = int(FileStatus.ERROR)
        return None, out
    if not row["allowed"]:
        return None, out
    if "source" in row:  # a staged copy: known by its size
        expected = FileIdentity(-1, 0, row["file_size"], -1)
    else:
        expected = FileIdentity(row["dev"], row["inode"], row["file_size"], row["mtime_ns"])
    taken = kept.get(row["row"]) if kept else None
    if taken is not None:
        out["px"], out["py"], out["preview"], out["kept"] = taken
        out.update(success=int(FileStatus.SUCCESS), **expected._asdict())
        return None, out
    try:
        thumb, cropped, out["px"], out["py"], out["preview"] = decode_thumbnail_and_crops(
            _source(row),
            size,
            method,
            crops,
            preview=preview,
            expected=expected,
            max_pixels=max_pixels,
            max_bytes=max_bytes,
        )
    except ImageReadError as exc:
        logger.warning("%r: %s", row["path"], exc)
        out.update(success=int(FileStatus.ERROR), error=str(exc))
        return None, out
    except Exception as exc:  # a decoder's own failure is this file's error, not the job's
        logger.exception("%r: unexpected error while decoding", row["path"])
        out.update(success=int(FileStatus.ERROR), error=f"cannot decode image: {type(exc).__name__}: {exc}")
        return None, out
    out.update(success=int(FileStatus.SUCCESS), **expected._asdict())
    return (thumb, cropped), out


def _decode_run(
    rows: list[dict],
    first: int,
    buf: np.ndarray,
    crop_buf: np.ndarray,
    thumbnail: Callable[[dict], tuple[tuple[np.ndarray, np.ndarray] | None, dict]],
    progress: Progress,
    reads: Callable[[dict], bool] = _to_read,
) -> list[dict]:
    """Thumbnails of a run of consecutive files into ``buf[first:]``; their meta rows.

    The kernel reads ahead the files ``reads`` says are read (not those taken from kept
    thumbnails) while this thread decodes (no reader thread: handing the GIL back and forth
    per file cost more than the reads)."""
    read = [reads(r) for r in rows]
    sizes = [max(0, r["file_size"] or 0) if ok else 0 for r, ok in zip(rows, read)]
    out = []
    for i, (row, ahead) in enumerate(zip(rows, read_ahead(sizes, READ_AHEAD_FILES, READ_AHEAD_BYTES))):
        for j in ahead:
            if read[j]:
                advise(_source(rows[j]))
        made, meta = thumbnail(row)
        if made is not None:
            buf[first + i], crop_buf[first + i] = made
        out.append(meta)
        progress.add()
    return out


def _decode_shard(
    index: list[dict],
    thumbnail: Callable[[dict], tuple[tuple[np.ndarray, np.ndarray] | None, dict]],
    buf: np.ndarray,
    crop_buf: np.ndarray,
    threads: int,
    reads: Callable[[dict], bool] = _to_read,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The stack of the files' thumbnails, in index order, and every file's meta row.

    ``buf`` (and ``crop_buf``, for the crop thumbnails) has a row per file of the index; a
    thumbnail ``thumbnail`` makes is written into its file's row (one it returns none for,
    but succeeds on, is there already). Decoding releases the GIL: threads take contiguous
    runs of files (``_runs``; one task per file would spend more on the executor than on a
    small JPEG). The rows of the files with a thumbnail are then moved together."""
    n_threads = max(1, threads)
    progress = Progress(len(index), "files", logger)

    def decode(run: slice) -> list[dict]:
        return _decode_run(index[run], run.start, buf, crop_buf, thumbnail, progress, reads)

    with ThreadPoolExecutor(n_threads) as pool:
        rows = [meta for made in pool.map(decode, _runs(len(index), n_threads)) for meta in made]
    decoded = [r["success"] == FileStatus.SUCCESS for r in rows]
    for target, source in enumerate(i for i, ok in enumerate(decoded) if ok):
        if target != source:
            buf[target] = buf[source]
            crop_buf[target] = crop_buf[source]
    n = sum(decoded)
    return buf[:n], crop_buf[:n], rows


# the fewest files of a run that is not a shard's last (below, the executor's share grows)
_MIN_RUN = 8


def _runs(n: int, threads: int) -> list[slice]:
    """The runs of consecutive files that ``threads`` threads take in turn from ``n`` files:
    one where there is one thread; else each run a share of the files still to come, so that
    the first runs are long (a thread reads ahead within its run) and the last ones short
    (no thread is left with a long run while the others have nothing left to do)."""
    if threads <= 1:
        return [slice(0, n)]
    runs, start = [], 0
    while start < n:
        stop = min(n, start + max(_MIN_RUN, -(-(n - start) // (2 * threads))))
        runs.append(slice(start, stop))
        start = stop
    return runs


def _meta_table(rows: list[dict], stack: np.ndarray, hashes: Sequence[tuple[str | None, ...]] | None) -> pa.Table:
    """The shard's meta table (META_SCHEMA): each file's row, its row in ``stack`` and the
    channel sums and hashes of its thumbnail (-1, 0 and null for files without one)."""
    decoded = np.array([r["success"] == FileStatus.SUCCESS for r in rows], bool)
    thumb_row = np.full(len(rows), -1, np.int32)
    thumb_row[decoded] = np.arange(len(stack), dtype=np.int32)
    sums = np.zeros((len(rows), 3), np.int64)
    sums[decoded] = channel_sums(stack)
    columns: dict[str, object] = {name: [r[name] for r in rows] for name in _ROW_COLUMNS}
    columns["thumb_row"] = arrow_array(thumb_row, pa.int32())
    columns.update({f"sum_{c}": arrow_array(sums[:, c], pa.int64()) for c in range(3)})
    where = np.flatnonzero(decoded).tolist()
    for c, name in enumerate(HASH_COLUMNS):
        values: list[str | None] = [None] * len(rows)
        if hashes is not None:
            for row, h in zip(where, hashes):
                values[row] = h[c]
        columns[name] = values
    return pa.table(columns, schema=META_SCHEMA)


def _crop_sums_table(rows: list[dict], crops: np.ndarray) -> pa.Table:
    """The shard's crop sums (CROP_SUMS_SCHEMA): a row per decoded file, in stack order."""
    where = [r["row"] for r in rows if r["success"] == FileStatus.SUCCESS]
    n, variants = crops.shape[:2]
    sums = channel_sums(crops.reshape(n * variants, *crops.shape[2:])).reshape(n, variants, 3)
    columns: dict[str, object] = {"row": where}
    for k, names in enumerate(crop_sum_columns(variants)):
        for c, name in enumerate(names):
            columns[name] = arrow_array(sums[:, k, c], pa.int64())
    return pa.table(columns, schema=CROP_SUMS_SCHEMA)


def make_digests(
    thumbs: str | os.PathLike[str],
    meta: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    rotate: bool = True,
    from_hashes: bool = False,
    mirror: bool = False,
) -> None:
    """The canonical digest (``canonical_digests``) of every decoded file of one shard of
    ``make_thumbnails``' output, written to ``out`` (schema DIGEST_SCHEMA).

    Only the plan for ``diff_threshold == 0`` needs them: the thumbnail job makes them only
    then (``make_thumbnails``' ``out_digests``). ``from_hashes`` takes them from the
    shard's hash columns, which hold them already when the hashes were made unshifted by
    ``default_hash`` (with the same ``rotate``); otherwise they are computed from the stack.
    """
    table = read_parquet(meta, columns=["thumb_row", *HASH_COLUMNS])
    rows = table.column("thumb_row").to_numpy()
    decoded = np.flatnonzero(rows >= 0)
    if from_hashes:
        if table.column(HASH_COLUMNS[0]).null_count > (rows < 0).sum():
            raise ValueError(
                f"{os.fspath(meta)!r}: decoded files without hashes; from_hashes needs a shard made with compute_hash"
            )
        hashes = zip(*(table.column(h).to_pylist() for h in HASH_COLUMNS))
        digests = [canonical(h) for h, row in zip(hashes, rows.tolist()) if row >= 0]
    else:
        # hashed row by row straight from the mapped file, no copy of the stack
        every = canonical_digests(np.load(thumbs, mmap_mode="r"), rotate, mirror)
        digests = [every[r] for r in rows[decoded].tolist()]
    _write_digests(out, decoded.tolist(), digests)


def _write_digests(out: str | os.PathLike[str], decoded_rows: Sequence[int], digests: Sequence[str]) -> None:
    """The digests file (DIGEST_SCHEMA) of a shard: the meta row of each decoded file (in
    stack order) and its canonical digest."""
    with atomic_path(out) as tmp:
        rows = arrow_array(decoded_rows, pa.int32())
        table = pa.table({"row": rows, "canonical": list(digests)}, schema=DIGEST_SCHEMA)
        pq.write_table(table, tmp)
