"""Writing files whole or not at all, so that a killed job never leaves half a file; reading
Parquet files cheaply."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = [
    "arrow_array",
    "arrow_table",
    "as_schema",
    "atomic_path",
    "damaged_parquet",
    "files_rows",
    "filter_rows",
    "fsync_dir",
    "in_index_order",
    "link_or_copy",
    "match_rows",
    "open_stack",
    "process_running",
    "read_in_index_order",
    "read_parquet",
    "remove_damaged",
    "take_rows",
]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling path; on success rename it onto ``target``.

    Works for files and folders. On an exception the temporary is removed and ``target`` is
    left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except OSError as exc:
        _remove(tmp)
        if exc.errno == errno.ENOSPC:
            raise OSError(
                errno.ENOSPC,
                f"no space left on the device holding {os.fspath(target)!r}: "
                "free some space and run the same command again",
            ) from exc
        raise
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def read_parquet(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    """One Parquet file, whole or the named ``columns``.

    ``pyarrow.parquet.read_table`` goes through pyarrow's dataset module, whose import
    alone costs a job a noticeable part of its start (bench/README.md); a single file needs
    none of it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as pf:
            return pf.read(columns=list(columns) if columns is not None else None)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise damaged_parquet(path, exc) from exc


def files_rows(index_path: str | os.PathLike[str]) -> np.ndarray | None:
    """Where the rows of the index shard at ``index_path`` are in the shard's files and in
    every output of its thumbnail job (INDEX_SCHEMA's ``files_row``), or None for a shard
    indexed before the column was (each at its own row). The rows of a kept shard may be
    ``0 .. n-1`` of longer files (those after them gone or changed since): the rows say
    which, never the lengths alone."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(index_path) as pf:
            if "files_row" not in pf.schema_arrow.names:
                return None
            rows = pf.read(columns=["files_row"]).column(0).to_numpy()
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise damaged_parquet(index_path, exc) from exc
    return rows.astype(np.intp)


def in_index_order(table: pa.Table, rows: np.ndarray | None, what: str | os.PathLike[str]) -> pa.Table:
    """A thumbnail job's output ``table`` (``what``: its path, for the error), one row per row
    of its shard's files, as rows of the index shard: those ``rows`` (``files_rows``) of it
    (the table itself where they are all its rows in order), or the table itself where
    ``rows`` is None."""
    if rows is None:
        return table
    if len(rows) and (rows.min() < 0 or rows.max() >= len(table)):
        raise ValueError(f"{os.fspath(what)!r} does not describe the files of its index shard")
    return take_rows(table, rows)


def read_in_index_order(
    path: str | os.PathLike[str], index_path: str | os.PathLike[str], columns: Sequence[str]
) -> pa.Table:
    """The ``columns`` of a thumbnail job's output at ``path`` as rows of its index shard at
    ``index_path`` (``in_index_order`` of ``files_rows``)."""
    return in_index_order(read_parquet(path, columns=columns), files_rows(index_path), path)


def filter_rows(table: pa.Table, mask: np.ndarray) -> pa.Table:
    """The rows of ``table`` where ``mask`` (numpy, one bool a row) holds: ``take_rows`` of
    them, so that where they are a few runs (every row, none, all but a few broken files)
    pyarrow's compute module (whose import costs a small run a noticeable part of its time)
    is not needed."""
    import numpy as np

    if len(mask) != len(table):
        raise ValueError(f"a mask of {len(mask)} rows for a table of {len(table)}")
    return take_rows(table, np.flatnonzero(mask))


def as_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` cast to ``schema``; the table itself where it has that schema already (a cast
    needs pyarrow's compute module, as ``filter_rows`` says)."""
    return table if table.schema.equals(schema) else table.cast(schema)


def take_rows(table: pa.Table, order: np.ndarray) -> pa.Table:
    """The rows of ``table`` in ``order`` (numpy row numbers): joined from slices where
    ``order`` is a few runs of consecutive rows (the table itself, shards put in key order,
    the rows ``filter_rows`` keeps), else gathered column by column (``_gathered``: a plan's
    blocks), both without pyarrow's compute module; pyarrow's take for other columns."""
    import numpy as np
    import pyarrow as pa

    if not len(order):
        return table.slice(0, 0)
    starts = np.flatnonzero(np.diff(order, prepend=order[0] - 2) != 1)  # where a run begins
    if order.min() < 0 or order.max() >= len(table):
        return table.take(order)  # pyarrow's error
    if len(starts) > _FEW_RUNS:
        columns = []
        for column in table.columns:
            gathered = _gathered(column, order)
            if gathered is None:
                return table.take(order)
            columns.append(gathered)
        return pa.table(columns, schema=table.schema)
    if len(starts) == 1 and len(order) == len(table):
        return table
    ends = np.r_[starts[1:], len(order)]
    runs = [table.slice(int(order[a]), int(b - a)) for a, b in zip(starts, ends, strict=True)]
    return pa.concat_tables(runs).combine_chunks()


def link_or_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """``target`` a hard link of ``source`` where the file system allows, else a copy (with
    its times)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def match_rows(rows: pa.Table, among: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """For each of ``rows``, the first row of ``among`` equal to it in every one of
    ``columns`` (nulls equal to nulls), or -1: the rows are mixed into one 64-bit number
    each (``_Column``: each column's values as numbers, or their hashes), sorted and
    searched, and each candidate then checked column by column."""
    import numpy as np

    n, m = len(rows), len(among)
    found = np.full(n, -1, np.int64)
    if not n or not m:
        return found
    pairs = [_Column.pair(rows.column(c), among.column(c)) for c in columns]

    def mix(cols: list[_Column]) -> np.ndarray:
        h = np.zeros(len(cols[0]), np.uint64)
        for column in cols:
            h = (h ^ column.hashes()) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(29)
        return h

    mine, other = mix([a for a, _ in pairs]), mix([b for _, b in pairs])
    order = np.argsort(other, kind="stable")  # equal mixes in the order of ``among``
    ranked = other[order]
    at = np.searchsorted(ranked, mine)
    pending = np.arange(n)
    while len(pending):  # each row's candidates of its mix in turn, until one is equal
        pos = at[pending]
        live = pos < m
        pending, pos = pending[live], pos[live]
        live = ranked[pos] == mine[pending]
        pending, pos = pending[live], pos[live]
        cand = order[pos]
        equal = np.ones(len(pending), bool)
        for a, b in pairs:
            equal &= a.equal(b, pending, cand)
        found[pending[equal]] = cand[equal]
        pending = pending[~equal]
        at[pending] += 1
    return found


class _Column:
    """One column of ``match_rows``' tables, as it is mixed and compared: integers (of both
    tables without nulls) and floats without nulls as numbers, any other column as Python
    values (hashed by Python, compared by ``==``)."""

    def __init__(self, kind: str, values: np.ndarray):
        self.kind, self.values = kind, values

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def pair(cls, ours: pa.ChunkedArray, theirs: pa.ChunkedArray) -> tuple[_Column, _Column]:
        import numpy as np
        import pyarrow as pa

        t = ours.type
        if ours.null_count == 0 and theirs.null_count == 0:
            numbers = (("number", pa.types.is_integer, np.int64), ("float", pa.types.is_floating, np.float64))
            for kind, test, dtype in numbers:
                if test(t):
                    return cls(kind, ours.to_numpy().astype(dtype)), cls(kind, theirs.to_numpy().astype(dtype))
        return cls("python", _objects(ours.to_pylist())), cls("python", _objects(theirs.to_pylist()))

    def hashes(self) -> np.ndarray:
        """One 64-bit number per value; equal values get equal numbers."""
        import numpy as np

        if self.kind == "number":
            return self.values.astype(np.uint64)
        if self.kind == "float":
            return (self.values + 0.0).view(np.uint64)  # -0.0 as 0.0, as == has it
        return np.fromiter(map(hash, self.values), np.int64, len(self.values)).astype(np.uint64)

    def equal(self, other: _Column, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Whether value ``i[k]`` of this column equals value ``j[k]`` of ``other``, for each k."""
        import numpy as np

        return np.asarray(self.values[i] == other.values[j], bool)


def _objects(values: list) -> np.ndarray:
    """``values`` as a numpy array of Python objects (a value itself a sequence, bytes
    included, stays one object)."""
    import numpy as np

    array = np.empty(len(values), object)
    array[:] = values
    return array


# the most runs of rows filter_rows and take_rows join from slices (past it, gathered)
_FEW_RUNS = 32


def _gathered(column: pa.ChunkedArray, order: np.ndarray) -> pa.Array | None:
    """``column``'s values in ``order`` where it holds only nulls, numbers or bools without
    nulls, or strings and bytes; None for other columns (pyarrow's take makes them)."""
    import pyarrow as pa

    t = column.type
    if column.null_count == len(column):
        return pa.nulls(len(order), t)
    if column.null_count == 0 and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        return arrow_array(column.to_numpy(zero_copy_only=False)[order], t)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _gathered_bytes(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column, order)
    return None


def _gathered_bytes(array: pa.Array, order: np.ndarray) -> pa.Array:
    """A string or binary ``array``'s values in ``order``, made from its buffers: the
    offsets of the values taken, their bytes gathered at once, and their validity bits."""
    import numpy as np
    import pyarrow as pa

    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    kind = np.int64 if large else np.int32
    validity, offsets_buffer, data_buffer = array.buffers()
    n, first = len(array), array.offset
    offsets: np.ndarray = np.frombuffer(offsets_buffer, kind, n + 1, first * np.dtype(kind).itemsize).astype(np.int64)
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    valid = None
    if array.null_count:
        bits = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")[first : first + n]
        valid = bits[order].astype(bool)
    starts = offsets[:-1][order]
    lengths = (offsets[1:] - offsets[:-1])[order]
    if valid is not None:
        lengths[~valid] = 0  # a null's slot may span bytes
    new_offsets = np.zeros(len(order) + 1, kind)
    np.cumsum(lengths, out=new_offsets[1:])
    at = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(int(new_offsets[-1]), dtype=kind)
    buffers = [
        None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little")),
        pa.py_buffer(new_offsets),
        pa.py_buffer(data[at]),
    ]
    nulls = 0 if valid is None else int(len(order) - valid.sum())
    return pa.Array.from_buffers(array.type, len(order), buffers, null_count=nulls)


def arrow_array(values: object, type: pa.DataType) -> pa.Array:
    """``values`` as an Arrow array of the primitive ``type`` (an integer, floating or bool
    type): pyarrow's ``pa.array(values, type)``, without its look for a numpy masked array,
    which imports ``numpy.ma`` (a noticeable part of a small run's start). ``values`` is
    anything numpy makes an array of, with no missing values, each one the type holds (a
    value outside it wraps, where pyarrow would refuse it)."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_boolean(type):
        bits = np.packbits(np.asarray(values, bool).ravel(), bitorder="little")
        n = np.asarray(values).size
        return pa.Array.from_buffers(type, n, [None, pa.py_buffer(bits)])
    data = np.ascontiguousarray(values, dtype=type.to_pandas_dtype()).ravel()
    return pa.Array.from_buffers(type, len(data), [None, pa.py_buffer(data)])


def arrow_table(columns: Mapping[str, object], schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` from ``columns`` (name -> values; primitive types only), each
    made by ``arrow_array``."""
    import pyarrow as pa

    return pa.table([arrow_array(columns[f.name], f.type) for f in schema], schema=schema)


# what to remove so that Snakemake makes a damaged intermediate again, by its stage's folder
# (under a results_dir, which holds folders.state): the file itself, a shard's stack too, or
# the whole folder of a checkpoint
def _remake() -> dict[str, str]:
    from ._formats import DIGEST_DIR, GPU_PAIR_DIR, INDEX_DIR, PAIR_DIR, PLAN_DIR, THUMBNAIL_DIR

    return {
        THUMBNAIL_DIR: "shard",
        DIGEST_DIR: "file",
        PAIR_DIR: "file",
        GPU_PAIR_DIR: "file",
        PLAN_DIR: "folder",
        INDEX_DIR: "folder",
    }


def damaged_parquet(path: str | os.PathLike[str], exc: Exception) -> Exception:
    """The IntermediateError for a Parquet file that cannot be read, after removing what
    makes its stage run again when it is one of the workflow's intermediates."""
    from ._errors import IntermediateError

    path = Path(path)
    results = path.parent.parent
    from ._formats import FOLDER_STATE

    how = _remake().get(path.parent.name)
    plan = _plan_of(path)
    if plan is not None:
        shutil.rmtree(plan, ignore_errors=True)
    elif how is None or not (results / FOLDER_STATE).exists():
        return IntermediateError(f"{os.fspath(path)!r} cannot be read as Parquet ({exc})")
    elif how == "shard":
        remove_damaged([path.with_suffix(".npy")])
    elif how == "file":
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path.parent, ignore_errors=True)
    return IntermediateError(
        f"{os.fspath(path)!r} cannot be read as Parquet ({exc}); removed what "
        "makes it: run the same command again to make it anew"
    )


def open_stack(path: str | os.PathLike[str]):
    """A thumbnail stack (``.npy``) mapped read-only; IntermediateError, after removing the
    file so that the next run makes it again, when it is not a whole ``.npy`` file."""
    import numpy as np

    from ._errors import IntermediateError

    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise IntermediateError(f"thumbnail stack {os.fspath(path)!r} is missing") from exc
        remove_damaged([path])
        raise IntermediateError(
            f"thumbnail stack {os.fspath(path)!r} is damaged ({exc}); removed it: run the same "
            "command again to make it anew"
        ) from exc


def _plan_of(path: Path) -> Path | None:
    """The plan folder of a workflow's results that ``path`` (a block's file) is in, if so."""
    from ._formats import BLOCK_DIR, FOLDER_STATE, PLAN_DIR

    folder = path.parent.parent if path.parent.name == BLOCK_DIR else path.parent
    if folder.name == PLAN_DIR and (folder.parent / FOLDER_STATE).exists():
        return folder
    return None


def remove_damaged(paths: Sequence[str | os.PathLike[str]]) -> None:
    """Remove damaged intermediates so that Snakemake remakes them: a shard's stack and its
    metadata; for a file of a workflow's plan folder, the whole plan (its files are a compare
    job's inputs, and only the plan job makes them) and the block thumbnails kept beside it
    (KEPT_BLOCKS_DIR: hard links of the plan's). The plan gone, the workflow's next start
    makes it and the database again (``_db.forget_unfinished_database``)."""
    for path in paths:
        path = Path(path)
        plan = _plan_of(path)
        if plan is not None:
            from ._formats import KEPT_BLOCKS_DIR

            shutil.rmtree(plan, ignore_errors=True)
            # and the block thumbnails kept beside it, which its files may share
            shutil.rmtree(plan.parent / KEPT_BLOCKS_DIR, ignore_errors=True)
            continue
        for p in (path, path.with_suffix(".parquet")):
            if p.exists():
                p.unlink()


def process_running(pid: int) -> bool:
    """Whether process ``pid`` runs: a zombie (killed, not yet reaped by its parent, as
    happens in containers) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Sync a folder's entries (a rename or link into it) to disk, where the platform can."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
