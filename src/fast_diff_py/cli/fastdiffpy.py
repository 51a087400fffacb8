"""``fastdiffpy``: fast-diff-py 1.0.4's command line, producing the SQLite database.

Runs the Snakemake workflow underneath. Progress lives in the temporary folder (``-t``,
default a folder of the run's own under the user's cache, named after the searched folders:
``work_dir``); run the same command again after an interruption and it resumes, unless
``-p`` purges the progress first. Progress in the cache is kept after the run, so that the
next run on the same folders takes every thumbnail and pair still valid from it; with
``-t`` it is removed at the end. The searched folders are never written to unless ``-t`` or
``-o`` says so.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .._api import Config, FastDifPy, FirstLoopConfig, SecondLoopConfig, cache_dir, work_dir
from .._config import validate_config
from .._errors import ConfigError, FastDiffError
from .._formats import log_path
from .._workflow import keep_run_log
from . import add_engine_option, not_a_folder
from .difpy import crop_tolerance

logger = logging.getLogger("fastdiffpy")

TASK_FILE = ".task.json"
DB_FILE = ".fast_diff.db"
THUMB_DIR = ".temp_thumb"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastdiffpy",
        description="Find duplicate and similar images and write them to a SQLite database "
        "(fast-diff-py's command line; runs the fast-diff Snakemake workflow).",
    )
    p.add_argument(
        "-R", "--recover", metavar="PATH", help="resume the run whose progress is in this folder (or its .task.json)"
    )
    p.add_argument("-a", "--part_a", nargs="+", metavar="DIR", help="folders of partition A")
    p.add_argument(
        "-b",
        "--part_b",
        nargs="*",
        default=[],
        metavar="DIR",
        help="folders of partition B; only A x B pairs are compared",
    )
    p.add_argument("-r", "--no_recursive", action="store_true", help="do not search sub-folders")
    p.add_argument("-c", "--compression_target", type=int, help="thumbnail side in pixels (default 64)")
    p.add_argument(
        "--thumbnail_method",
        choices=["quality", "area", "compat"],
        help="quality (default): anti-aliased with shrink-on-load, finds more copies; "
        "compat: fast-diff-py's pixels, its pairs and dif values exactly",
    )
    p.add_argument("-p", "--purge", action="store_true", help="discard earlier progress and start afresh")
    p.add_argument("-C", "--cpu_proc", type=int, help="CPU cores to use (default: all)")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show Snakemake's own output and debug logs (default: a line per stage)",
    )
    p.add_argument("-H", "--hash", action="store_true", help="hash the thumbnails")
    p.add_argument("-S", "--shift_amount", type=int, help="bits to shift pixels before hashing (-7..7, default 4)")
    p.add_argument(
        "-f",
        "--no_compress",
        action="store_true",
        help="keep no thumbnails after the run (they are made for hashing anyway); needs -d",
    )
    p.add_argument("-d", "--no_second_loop", action="store_true", help="do not compare images (hashes only)")
    p.add_argument(
        "-m",
        "--skip_matching_hash",
        action="store_true",
        help="pairs with a matching hash are duplicates without comparing; needs -H",
    )
    p.add_argument(
        "-M",
        "--match_aspect",
        type=float,
        help="0: compare only images of the same size; f >= 1: aspect ratios within f",
    )
    p.add_argument("-T", "--threshold", type=float, help="store pairs with dif <= this (default 200)")
    p.add_argument(
        "--mirror",
        action="store_true",
        help="also match mirror images (left and right swapped) and their rotations; "
        "dif is then the minimum over the eight turns and reflections",
    )
    p.add_argument(
        "--crop-tolerance",
        type=crop_tolerance,
        default=0.0,
        help="also match images trimmed by up to this share of each side, e.g. 0.03 (default 0: off)",
    )
    p.add_argument(
        "-l",
        "--cache_preload",
        type=int,
        help="accepted for compatibility and ignored: jobs load what they need themselves",
    )
    add_engine_option(p)
    p.add_argument(
        "-t",
        "--temp_dir",
        help="folder for progress and thumbnails (default: a folder of this run's own under "
        "~/.cache/fast-diff, or $FAST_DIFF_CACHE)",
    )
    p.add_argument(
        "-o",
        "--output_dir",
        help="where fast_diff_py.db is written; a path ending in .db is the file itself "
        "(default: the temporary folder)",
    )
    return p


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """fast-diff-py's validation, before any work."""
    if not args.recover and not args.part_a:
        parser.error("the following arguments are required: -a/--part_a (or -R/--recover)")
    if args.skip_matching_hash and not args.hash:
        parser.error("-m/--skip_matching_hash requires -H/--hash")
    if args.no_compress and not args.no_second_loop:
        parser.error("the comparison needs thumbnails: add -d/--no_second_loop or remove -f/--no_compress")
    if args.cpu_proc is not None and args.cpu_proc < 1:
        parser.error(f"-C/--cpu_proc must be >= 1, got {args.cpu_proc}")
    if args.cache_preload is not None and args.cache_preload < 1:
        parser.error(f"-l/--cache_preload must be >= 1, got {args.cache_preload}")
    for folder in [*(args.part_a or []), *args.part_b]:
        if not os.path.isdir(folder):
            what = "is not a folder" if os.path.exists(folder) else "does not exist"
            parser.error(f"{folder!r} {what}")
    db_file = args.output_dir is not None and args.output_dir.endswith(".db")  # output_path's rule
    for problem in (
        not_a_folder("-t/--temp_dir", args.temp_dir),
        not_a_folder("-o/--output_dir", args.output_dir, parent=db_file),
    ):
        if problem:
            parser.error(problem)


# the workflow keys the options set, to name the option in the schema's messages
FLAGS = {
    "second_loop.diff_threshold": "-T/--threshold",
    "second_loop.match_aspect_by": "-M/--match_aspect",
    "first_loop.shift_amount": "-S/--shift_amount",
    "compression_target": "-c/--compression_target",
    "thumbnail_method": "--thumbnail_method",
}


def _check_values(cfg: Config, parser: argparse.ArgumentParser) -> None:
    """The option values against the workflow's schema (the one place ranges are written),
    before any work; a bad value is named by its option."""
    try:
        validate_config(cfg.to_workflow(), check_paths=False, check_plugins=False)
    except ConfigError as exc:
        message = str(exc).removeprefix("invalid configuration:").strip()
        for key, flag in FLAGS.items():
            message = message.replace(f"config key '{key}'", flag)
        parser.error(message)


def output_path(output_dir: str | None, temp_dir: str) -> str:
    if output_dir is None:
        return os.path.join(temp_dir, "fast_diff_py.db")
    if output_dir.endswith(".db"):
        return output_dir
    return os.path.join(output_dir, "fast_diff_py.db")


def config_from_args(args: argparse.Namespace) -> Config:
    temp = args.temp_dir or work_dir(args.part_a, args.part_b or [])
    fl = FirstLoopConfig(compute_hash=args.hash, compress=not args.no_compress)
    sl = SecondLoopConfig(skip_matching_hash=args.skip_matching_hash, match_aspect_by=args.match_aspect)
    if args.shift_amount is not None:
        fl.shift_amount = args.shift_amount
    if args.threshold is not None:
        sl.diff_threshold = args.threshold
    if args.cpu_proc is not None:
        fl.cpu_proc = sl.cpu_proc = args.cpu_proc
    cfg = Config(
        part_a=args.part_a,
        part_b=args.part_b,
        recurse=not args.no_recursive,
        mirror=args.mirror,
        crop_tolerance=args.crop_tolerance,
        first_loop=fl,
        second_loop=sl,
        do_second_loop=not args.no_second_loop,
        db_path=output_path(args.output_dir, temp),
        thumb_dir=os.path.join(temp, THUMB_DIR),
        config_path=os.path.join(temp, TASK_FILE),
    )
    if args.compression_target is not None:
        cfg.compression_target = args.compression_target
    if args.thumbnail_method is not None:
        cfg.thumbnail_method = args.thumbnail_method
    return cfg


def load_task(path: str) -> Config:
    task = Path(path) / TASK_FILE if os.path.isdir(path) else Path(path)
    if not task.is_file():
        raise FastDiffError(f"no progress to recover at {path!r} (no {TASK_FILE})")
    try:
        data = json.loads(task.read_text())
        data["first_loop"] = FirstLoopConfig(**data["first_loop"])
        data["second_loop"] = SecondLoopConfig(**data["second_loop"])
        return Config.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:  # not JSON, or not a run's settings
        raise FastDiffError(f"{os.fspath(task)!r} is not the progress of a run: {type(exc).__name__}: {exc}") from None


def execute(cfg: Config, purge: bool, cores: int | None, verbose: bool = False, engine: str = "auto") -> str:
    """Run every stage (resuming), then remove the progress, unless it is in the user's
    cache (no ``-t``), where the next run on the same folders takes from it every thumbnail
    and pair still valid; returns the database path."""
    cfg.retain_progress, cfg.delete_db, cfg.delete_thumb = True, False, False
    # Snakemake's own output (-v) comes from Snakemake only
    engine = "snakemake" if verbose and engine == "auto" else engine
    fdo = FastDifPy(config=cfg, purge=purge, cores=cores, verbose=verbose, progress=not verbose, engine=engine)
    Path(cfg.config_path).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.config_path).write_text(json.dumps(cfg.to_dict(), indent=1))
    # one run for every stage (Snakemake's start-up is paid once): the database needs them all
    fdo.commit()
    # the run's whole output outlives the working folder
    keep_run_log(fdo.run_log, log_path(cfg.db_path))
    if not Path(cfg.thumb_dir).resolve().is_relative_to(Path(cache_dir()).resolve()):
        fdo.config.retain_progress = False
        fdo.config.delete_thumb = True
        fdo.cleanup()
    return cfg.db_path


class _PlainStdout(logging.Handler):
    """Each record's message alone, on whatever ``sys.stdout`` is when it is logged."""

    def emit(self, record: logging.LogRecord) -> None:
        print(record.getMessage(), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(args, parser)
    # the run's summary as plain lines on stdout, the rest as log records
    summary_log = logging.getLogger("fast_diff_py.summary")
    summary_log.handlers = [h for h in summary_log.handlers if not isinstance(h, _PlainStdout)]
    summary_log.addHandler(_PlainStdout())
    summary_log.setLevel(logging.INFO)
    summary_log.propagate = False
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.recover:
            cfg = load_task(args.recover)
            cores = args.cpu_proc
            purge = False
        else:
            cfg = config_from_args(args)
            _check_values(cfg, parser)
            cores, purge = args.cpu_proc, args.purge
            if not purge and os.path.exists(cfg.config_path):
                logger.info("resuming the progress in %s (use -p to start afresh)", os.path.dirname(cfg.config_path))
        db = execute(cfg, purge, cores, args.verbose, args.engine)
    except FastDiffError as exc:
        print(f"fastdiffpy: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastdiffpy: interrupted; run the same command again to resume (finished work is kept)", file=sys.stderr)
        return 130
    except OSError as exc:  # a folder it cannot write to, a full disk: the file and the reason
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"fastdiffpy: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"Database written to {db}")
    return 0


if __name__ == "__main__":
    from ._start import end_process

    end_process(main())
