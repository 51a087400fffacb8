"""fast-diff-py 1.0.4's Python API on top of the workflow.

``FastDifPy(config=cfg)`` runs the workflow stage by stage (``full_index``, ``first_loop``,
``second_loop``, ``commit``): through Snakemake, or for a small collection its stages in this
process (``engine``); every call resumes what earlier calls finished.
The configuration classes keep fast-diff-py's field names.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._config import load_schema
from ._errors import ConfigError, DatabaseError
from ._formats import inline_results_dir, log_path, report_path, summary_path
from ._queries import FastDiffDB
from ._summary import format_summary, read_summary
from ._workflow import latest_snakemake_log, run_workflow, stage_targets

if TYPE_CHECKING:
    from ._decode import Method

__all__ = ["Config", "FirstLoopConfig", "SecondLoopConfig", "FastDifPy", "cache_dir", "work_dir"]

logger = logging.getLogger(__name__)
# the few lines a run ends with (commit): a logger of their own, so a program can show them plainly
summary_logger = logging.getLogger("fast_diff_py.summary")

_SCHEMA = load_schema()["properties"]
# how FastDifPy runs the stages (its engine parameter)
ENGINES = ("snakemake", "inline", "auto")


def _default(key: str, sub: str | None = None) -> Any:
    """The schema's default of a workflow key: the one place defaults are written."""
    spec = _SCHEMA[key] if sub is None else _SCHEMA[key]["properties"][sub]
    return spec["default"]


_DEFAULT_EXTENSIONS = _default("allowed_file_extensions")

# fast-diff-py options the workflow has no use for, and why; setting one warns once
_NO_EFFECT = {
    "compress": "the workflow always makes the thumbnails it compares",
    "parallel": "jobs always run side by side; the cores come from cpu_proc (or --cores)",
    "gpu_proc": "each compare job uses a GPU when it sees one (config compare.backend)",
    "preload_count": "compare jobs read the blocks they need one at a time",
    "log_level": "each job logs to its own file under the results folder's logs/; "
    "configure Python logging for the API's own messages",
}
_warned: set[tuple[str, str]] = set()


def cache_dir() -> str:
    """The user's cache of fast-diff's working folders: ``$FAST_DIFF_CACHE``, else
    ``$XDG_CACHE_HOME/fast-diff``, else ``~/.cache/fast-diff``."""
    return os.environ.get("FAST_DIFF_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "fast-diff"
    )


def work_dir(part_a: Iterable[str], part_b: Iterable[str] = ()) -> str:
    """Where a run over these folders keeps its files when told nothing else: a folder of its
    own under the user's cache (``cache_dir``), named after the folders, so that the same
    folders find their progress again and the searched folders are left alone."""
    import hashlib
    import json

    cache = cache_dir()
    folders = [[os.path.abspath(p) for p in part_a], [os.path.abspath(p) for p in part_b]]
    name = hashlib.sha1(json.dumps(folders).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(cache, name)


def _warn_no_effect(obj: object) -> None:
    """Warn once per option when a fast-diff-py option without effect is set."""
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        if f.name not in _NO_EFFECT or (type(obj).__name__, f.name) in _warned:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if getattr(obj, f.name) != default:
            _warned.add((type(obj).__name__, f.name))
            warnings.warn(
                f"{type(obj).__name__}.{f.name} = {getattr(obj, f.name)!r} has no effect in "
                f"fast-diff: {_NO_EFFECT[f.name]}",
                stacklevel=4,
            )


@dataclass
class FirstLoopConfig:
    """Thumbnail and hash stage (fast-diff-py's names)."""

    compress: bool = True
    compute_hash: bool = _default("first_loop", "compute_hash")
    shift_amount: int = _default("first_loop", "shift_amount")
    parallel: bool = True
    cpu_proc: int = field(default_factory=lambda: os.cpu_count() or 1)

    def __post_init__(self) -> None:
        _warn_no_effect(self)


@dataclass
class SecondLoopConfig:
    """Comparison stage (fast-diff-py's names)."""

    skip_matching_hash: bool = _default("second_loop", "skip_matching_hash")
    match_aspect_by: float | None = _default("second_loop", "match_aspect_by")
    make_diff_plots: bool = False
    plot_output_dir: str | None = None
    plot_threshold: float | None = None
    parallel: bool = True
    batch_size: int | None = None
    diff_threshold: float = float(_default("second_loop", "diff_threshold"))
    gpu_proc: int = 0
    cpu_proc: int = field(default_factory=lambda: os.cpu_count() or 1)
    keep_non_matching_aspects: bool = _default("second_loop", "keep_non_matching_aspects")
    preload_count: int = 4

    def __post_init__(self) -> None:
        _warn_no_effect(self)


@dataclass
class Config:
    """Everything one run needs (fast-diff-py's names).

    ``db_path``, ``thumb_dir`` and ``config_path``, when not given (empty or None), are
    ``fast_diff.db``, ``temp_thumb`` and ``task.json`` in the run's own folder under the
    user's cache (``work_dir``), never in the searched folders (fast-diff-py put them in the
    first folder of ``part_a``); ``thumb_dir`` holds all intermediate files of the workflow,
    and none of the three is ever indexed; nor is anything in ``exclude_paths`` (fast-diff's
    own addition: paths left out entirely, as the workflow's key of that name).
    """

    part_a: list[str] | str
    part_b: list[str] | str = field(default_factory=list)
    recurse: bool = _default("recursive")
    rotate: bool = _default("rotate")
    mirror: bool = _default("mirror")
    crop_tolerance: float = _default("crop_tolerance")
    ignore_names: list[str] = field(default_factory=list)
    ignore_paths: list[str] = field(default_factory=list)
    allowed_file_extensions: list[str] = field(default_factory=lambda: list(_DEFAULT_EXTENSIONS))
    compression_target: int = _default("compression_target")
    thumbnail_method: Method = _default("thumbnail_method")
    db_path: str = ""
    thumb_dir: str = ""
    config_path: str = ""
    first_loop: FirstLoopConfig = field(default_factory=FirstLoopConfig)
    second_loop: SecondLoopConfig = field(default_factory=SecondLoopConfig)
    do_second_loop: bool = _default("do_second_loop")
    retain_progress: bool = True
    delete_db: bool = True
    delete_thumb: bool = True
    file_list: str | None = None
    batch_size_dir: int = 2000
    batch_size_max_sl: int = 1024
    log_level: int = logging.INFO
    exclude_paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _warn_no_effect(self)
        self.part_a = [self.part_a] if isinstance(self.part_a, (str, os.PathLike)) else list(self.part_a)
        self.part_b = [self.part_b] if isinstance(self.part_b, (str, os.PathLike)) else list(self.part_b)
        self.part_a = [os.fspath(p) for p in self.part_a]
        self.part_b = [os.fspath(p) for p in self.part_b]
        if not self.part_a:
            raise ConfigError("Config.part_a must name at least one folder")
        if not (self.db_path and self.thumb_dir and self.config_path):
            root = work_dir(self.part_a, self.part_b)
            self.db_path = self.db_path or os.path.join(root, "fast_diff.db")
            self.thumb_dir = self.thumb_dir or os.path.join(root, "temp_thumb")
            self.config_path = self.config_path or os.path.join(root, "task.json")
        for name in ("first_loop", "second_loop"):
            value = getattr(self, name)
            if isinstance(value, dict):
                cls = FirstLoopConfig if name == "first_loop" else SecondLoopConfig
                setattr(self, name, cls(**value))

    def to_workflow(
        self, hash_fn: str | None = None, cpu_diff: str | None = None, gpu_diff: str | None = None
    ) -> dict[str, Any]:
        """The workflow configuration (config/config.yaml keys) with absolute paths."""
        fl, sl = self.first_loop, self.second_loop
        work = os.path.abspath(self.thumb_dir)
        own = [work, os.path.abspath(self.db_path), log_path(self.db_path), os.path.abspath(self.config_path)]
        own += [os.path.abspath(p) for p in self.exclude_paths]
        return {
            "part_a": [os.path.abspath(p) for p in self.part_a],
            "part_b": [os.path.abspath(p) for p in self.part_b],
            "recursive": self.recurse,
            "rotate": self.rotate,
            "mirror": self.mirror,
            "crop_tolerance": self.crop_tolerance,
            "ignore_names": list(self.ignore_names),
            "ignore_paths": [os.path.abspath(p) for p in self.ignore_paths],
            "exclude_paths": own,
            "allowed_file_extensions": list(self.allowed_file_extensions),
            "compression_target": self.compression_target,
            "thumbnail_method": self.thumbnail_method,
            "first_loop": {"compute_hash": fl.compute_hash, "shift_amount": fl.shift_amount},
            "second_loop": {
                "diff_threshold": float(sl.diff_threshold),
                "skip_matching_hash": sl.skip_matching_hash,
                "match_aspect_by": sl.match_aspect_by,
                "keep_non_matching_aspects": sl.keep_non_matching_aspects,
            },
            "do_second_loop": self.do_second_loop,
            "db_path": os.path.abspath(self.db_path),
            "results_dir": os.path.join(work, "work"),
            "shard_size": self.batch_size_dir,
            "block_size": self.second_loop.batch_size or self.batch_size_max_sl,
            "hash_fn": hash_fn,
            "cpu_diff": cpu_diff,
            "gpu_diff": gpu_diff,
            "file_list": os.path.abspath(self.file_list) if self.file_list else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """Rebuild a configuration saved with :meth:`to_dict` (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"unknown Config field(s) {sorted(unknown)}")
        return cls(**data)


def _spec(fn: Callable | str | None, what: str) -> str | None:
    """A user function as the "module:function" name jobs import."""
    if fn is None or isinstance(fn, str):
        return fn
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in name or "." in name:
        raise ConfigError(
            f"{what} {fn!r} must be a module-level function importable by the workflow's jobs "
            "(not a lambda, a nested function or one defined in __main__); or give it as "
            "'module:function'"
        )
    return f"{module}:{name}"


class FastDifPy:
    """fast-diff-py's main object, running the Snakemake workflow underneath.

    Parameters
    ----------
    config
        The run's :class:`Config`. Without it, ``part_a`` (and ``part_b``) build one.
    purge
        Discard earlier progress (intermediate files and the database) and start afresh.
        Without it, an earlier interrupted run with the same folders is resumed.
    engine
        How the stages run (``full_index``, ``first_loop``, ``second_loop``, ``commit``):
        ``"snakemake"`` (the workflow, job by job), ``"inline"`` (in this process:
        ``_inline.run_inline``, the same stage functions and files) or ``"auto"``, the
        default (inline for a small collection, ``_inline.small_collection``, unless a stage
        of this object already ran through Snakemake).
    """

    hash_fn: Callable[[np.ndarray], str] | str | None = None
    cpu_diff: Callable[[np.ndarray, np.ndarray, bool], float] | str | None = None
    gpu_diff: Callable[[np.ndarray, np.ndarray, bool], float] | str | None = None

    def __init__(
        self,
        part_a: str | list[str] | None = None,
        part_b: str | list[str] | None = None,
        config: Config | None = None,
        purge: bool = False,
        cores: int | None = None,
        verbose: bool = False,
        progress: bool = False,
        engine: str = "auto",
        **kwargs: Any,
    ):
        if config is None:
            if part_a is None:
                raise ConfigError("FastDifPy needs config= or part_a=")
            config = Config(part_a=part_a, part_b=part_b or [], **kwargs)
        self.config = config
        self.cores = cores
        self.verbose = verbose
        self.progress = progress  # one line per stage on standard error
        if engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.engine = engine
        # the results folder and the log of the last run (Snakemake's, or of a run in one process)
        self.results_dir: str | None = None
        self.run_log: Path | None = None
        self._stages_run = False
        self._db: FastDiffDB | None = None
        if purge:
            self._purge()

    # --- stages ------------------------------------------------------------------------------

    def _run(self, stage: str) -> None:
        cfg = self.config.to_workflow(
            _spec(self.hash_fn, "hash_fn"), _spec(self.cpu_diff, "cpu_diff"), _spec(self.gpu_diff, "gpu_diff")
        )
        cores = self.cores or self.config.second_loop.cpu_proc
        if self._inline(cfg):  # each stage in this process, as commit runs them all
            from ._inline import run_inline
            from ._progress import stage_line

            def said(name: str, jobs: int, seconds: float) -> None:
                print(stage_line(name, jobs, seconds), file=sys.stderr, flush=True)

            until = None if stage == "merge" else stage
            self.run_log = run_inline(cfg, cores=cores, progress=said if self.progress else None, until=until)
            self.results_dir = inline_results_dir(cfg["results_dir"])
            return
        self._stages_run = True
        run_workflow(
            cfg,
            self.config.thumb_dir,
            stage_targets(cfg, stage),
            cores=cores,
            verbose=self.verbose,
            progress=self.progress,
        )
        self.results_dir = cfg["results_dir"]
        self.run_log = latest_snakemake_log(self.config.thumb_dir)

    def _inline(self, cfg: dict[str, Any]) -> bool:
        """Whether the stages run in this process (``engine``); "auto" goes on through
        Snakemake once a stage ran there."""
        if self.engine == "auto":
            from ._inline import small_collection

            return not self._stages_run and small_collection(cfg)
        return self.engine == "inline"

    def full_index(self) -> None:
        """Index the partitions."""
        self._run("index")

    def index_preamble(self) -> None:
        """Start a caller-supplied file list (then ``populate_partition``, ``index_epilogue``)."""
        self._pending: dict[bool, list[tuple[str, bool]]] = {True: [], False: []}

    def populate_partition(self, paths: Iterable[str], part_a: bool = True, check_ext: bool = False) -> int:
        """Add files to partition A (or B); with ``check_ext`` only allowed extensions are
        decoded. Returns the number of files added."""
        if not hasattr(self, "_pending"):
            raise RuntimeError("call index_preamble() before populate_partition()")
        extensions = {e.lower() for e in self.config.allowed_file_extensions}
        added = [
            (os.path.abspath(p), not check_ext or os.path.splitext(p)[1].lower() in extensions)
            for p in map(os.fspath, paths)
        ]
        self._pending[part_a].extend(added)
        return len(added)

    def index_epilogue(self) -> None:
        """Index the files given to ``populate_partition`` instead of walking the folders."""
        from ._index import write_file_list

        if not hasattr(self, "_pending"):
            raise RuntimeError("call index_preamble() and populate_partition() first")
        path = os.path.join(self.config.thumb_dir, "file_list.parquet")
        os.makedirs(self.config.thumb_dir, exist_ok=True)
        write_file_list(path, self._pending[True], self._pending[False])
        self.config.file_list = path
        del self._pending
        self._run("index")

    def first_loop(self, config: FirstLoopConfig | None = None) -> None:
        """Thumbnails (and hashes) of every file."""
        if config is not None:
            self.config.first_loop = config
        self._run("thumbnails")

    def second_loop(self, config: SecondLoopConfig | None = None) -> None:
        """Compare every pair that can match."""
        if config is not None:
            self.config.second_loop = config
        if not self.config.do_second_loop:
            logger.info("do_second_loop is off: skipping the comparison")
            return
        if self.config.second_loop.make_diff_plots and not self.config.second_loop.plot_output_dir:
            raise ConfigError("second_loop.make_diff_plots needs second_loop.plot_output_dir")
        self._run("compare")
        if self.config.second_loop.make_diff_plots:
            self.commit()
            self.make_diff_plots()

    def commit(self) -> None:
        """Write the database (and, with ``retain_progress``, the configuration), then log
        what the run found (``summary``) on the ``fast_diff_py.summary`` logger."""
        self._close_db()
        self._run("merge")
        summary = self.summary()
        if summary is not None:
            summary_logger.info("%s", format_summary(summary, summary_path(self.config.db_path)))
        if self.config.retain_progress:
            import json

            task = Path(self.config.config_path)
            task.parent.mkdir(parents=True, exist_ok=True)
            task.write_text(json.dumps(self.config.to_dict(), indent=1))

    def make_report(self, out_dir: str | None = None, threshold: float | None = None) -> str:
        """Write the gallery of the database (``commit`` writes one beside it,
        ``report/index.html``) into ``out_dir`` (default: that folder), grouping pairs with
        ``dif <= threshold`` (default: the threshold); returns the path of its page."""
        import glob

        from ._formats import PREVIEW_SUFFIX, THUMBNAIL_DIR
        from ._report import make_report

        out = out_dir or report_path(self.config.db_path)
        threshold = self.config.second_loop.diff_threshold if threshold is None else threshold
        # the thumbnail jobs' gallery thumbnails, while the working files are there
        results = self.results_dir or self.config.to_workflow()["results_dir"]
        thumbs = os.path.join(glob.escape(results), THUMBNAIL_DIR)
        previews = sorted(glob.glob(os.path.join(thumbs, "*" + PREVIEW_SUFFIX)))
        return os.fspath(make_report(self.config.db_path, out, threshold, threads=self.cores or 1, previews=previews))

    def summary(self) -> dict[str, Any] | None:
        """What the last ``commit`` found (``summary.json`` beside the database): files found,
        decoded, broken and skipped, pairs, groups of duplicates, time per stage; None
        before the first commit."""
        return read_summary(summary_path(self.config.db_path))

    def cleanup(self) -> None:
        """Remove what the switches ask for: ``delete_db``, ``delete_thumb`` and, without
        ``retain_progress``, the saved configuration."""
        self._close_db()
        if self.config.delete_db and os.path.exists(self.config.db_path):
            os.remove(self.config.db_path)
        if self.config.delete_thumb and os.path.isdir(self.config.thumb_dir):
            shutil.rmtree(self.config.thumb_dir)
        if not self.config.retain_progress and os.path.exists(self.config.config_path):
            os.remove(self.config.config_path)

    def _purge(self) -> None:
        for path in (self.config.db_path, self.config.config_path):
            if os.path.exists(path):
                os.remove(path)
        if os.path.isdir(self.config.thumb_dir):
            shutil.rmtree(self.config.thumb_dir)

    # --- results -------------------------------------------------------------------------------

    @property
    def db(self) -> FastDiffDB:
        """The database of this run (opened on first use, after ``commit``)."""
        if self._db is None:
            if not os.path.exists(self.config.db_path):
                raise DatabaseError(
                    f"no database at {self.config.db_path!r} yet: it is written by commit(), "
                    "after full_index(), first_loop() and second_loop()"
                )
            self._db = FastDiffDB(self.config.db_path)
        return self._db

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _delta(self, delta: float | None) -> float:
        threshold = self.config.second_loop.diff_threshold
        if delta is not None and delta > threshold:
            logger.warning(
                "delta %s is above diff_threshold %s: pairs between them were never stored", delta, threshold
            )
        return threshold if delta is None else delta

    def get_diff_pairs(
        self, delta: float | None = None, matching_hash: bool = False
    ) -> Iterator[tuple[str, str, float]]:
        """``(path_a, path_b, dif)`` of the pairs with ``dif <= delta`` (default: the threshold)."""
        return self.db.get_duplicate_pairs(self._delta(delta), include_hash_match=matching_hash)

    def get_diff_clusters(
        self, delta: float | None = None, dir_a: bool = True, matching_hash: bool = False
    ) -> Iterator[tuple[str, list[tuple[str, float]]]]:
        """Clusters ``(path, [(path, dif), ...])`` around files of A (``dir_a``) or of B."""
        return self.db.get_all_cluster(self._delta(delta), dir_a, matching_hash)

    def make_diff_plots(self, plot_output_dir: str | None = None, plot_threshold: float | None = None) -> int:
        """Side-by-side pictures of the stored pairs with ``dif <= plot_threshold`` (default
        ``second_loop.plot_threshold``, else the threshold) in ``plot_output_dir``."""
        from ._plots import make_diff_plots

        sl = self.config.second_loop
        out = plot_output_dir or sl.plot_output_dir
        if not out:
            raise ConfigError("make_diff_plots needs plot_output_dir (argument or second_loop.plot_output_dir)")
        threshold = plot_threshold if plot_threshold is not None else sl.plot_threshold
        return make_diff_plots(self.config.db_path, out, sl.diff_threshold if threshold is None else threshold)

    def reduce_diff(self, threshold: float) -> int:
        """Drop stored pairs with ``dif > threshold``."""
        return self.db.drop_diff(threshold)
