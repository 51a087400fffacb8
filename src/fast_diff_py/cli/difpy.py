"""``difpy``: difPy 4.2.1's command line, running the fast-diff workflow underneath.

Writes difPy's three files (``difPy_<timestamp>_results.json``, ``_lower_quality.txt``,
``_stats.json``) into ``-Z``. Thresholds and reported values are in difPy's unit (mse per
channel). Its working files are kept in the user's cache (``cache_dir()/difpy/``, a folder
named after the searched folders and the settings): run again with the same arguments, after
an interruption or after files were added, removed or changed, it takes every thumbnail
and pair still valid from there. Moves and deletes are written to ``difPy_<timestamp>_journal.jsonl``
before they happen (a delete moves the file to the trash of its file system);
``difpy --undo JOURNAL`` moves the files back.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import logging
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

from .._actions import act
from .._api import Config, FastDifPy, FirstLoopConfig, SecondLoopConfig, cache_dir
from .._config import load_schema
from .._crops import MAX_CROP_TOLERANCE
from .._decisions import block_size_for
from .._difpy import DIF_PER_MSE, difpy_parameters, difpy_report, write_difpy_files
from .._errors import FastDiffError
from .._formats import report_path, summary_path
from .._journal import ALREADY_THERE, Journal, JournalError, undo_moves
from .._report import replace_report
from .._summary import format_summary, read_summary, write_summary
from .._workflow import keep_run_log
from . import add_engine_option, not_a_folder

logger = logging.getLogger("difpy")

SIMILARITY = {"duplicates": 0, "similar": 5}
DEFAULTS = {key: spec.get("default") for key, spec in load_schema()["properties"].items()}
DEFAULT_EXTENSIONS = DEFAULTS["allowed_file_extensions"]


def boolean(text: str) -> bool:
    """difPy's spellings of a boolean."""
    value = text.strip().lower()
    if value in ("yes", "true", "t", "y", "1"):
        return True
    if value in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"boolean value expected (True/False, yes/no, 1/0), got {text!r}")


def crop_tolerance(text: str) -> float:
    """A share of each side between 0 and MAX_CROP_TOLERANCE."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number between 0 and {MAX_CROP_TOLERANCE}, got {text!r}"
        ) from None
    if not 0 <= value <= MAX_CROP_TOLERANCE:
        raise argparse.ArgumentTypeError(f"crop tolerance must be between 0 and {MAX_CROP_TOLERANCE}, got {text!r}")
    return value


def similarity(text: str) -> int | float:
    """'duplicates' (0), 'similar' (5) or an mse >= 0 (an int stays an int, as in difPy)."""
    if text.lower() in SIMILARITY:
        return SIMILARITY[text.lower()]
    try:
        value = int(text) if text.strip().lstrip("+").isdigit() else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'duplicates', 'similar' or a number >= 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"similarity must be >= 0, got {text!r}")
    return value


def bounded_int(low: int, high: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must lie in [{low}, {high if high is not None else 'inf'}], got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="difpy",
        description="Find duplicate and similar images (difPy's command line, run by fast-diff: "
        "exact, resumable, all four rotations).",
    )
    p.add_argument(
        "-D", "--directory", nargs="+", default=[os.getcwd()], help="folders to search (default: the working folder)"
    )
    p.add_argument(
        "-Z", "--output_directory", default=None, help="folder for the result files (default: the working folder)"
    )
    p.add_argument("-r", "--recursive", type=boolean, default=True, help="search sub-folders (default True)")
    p.add_argument(
        "-i",
        "--in_folder",
        type=boolean,
        default=False,
        help="search each folder of -D on its own and group results by folder (default False)",
    )
    p.add_argument(
        "-le",
        "--limit_extensions",
        type=boolean,
        default=True,
        help="only read files with image extensions (default True)",
    )
    p.add_argument(
        "-px",
        "--px_size",
        type=bounded_int(10, 5000),
        default=50,
        help="thumbnail side in pixels, 10..5000 (default 50)",
    )
    p.add_argument(
        "-s",
        "--similarity",
        type=similarity,
        default=0,
        help="'duplicates' (mse 0), 'similar' (mse 5) or an mse >= 0 (default duplicates)",
    )
    p.add_argument(
        "-ro", "--rotate", type=boolean, default=True, help="compare all four 90-degree rotations (default True)"
    )
    p.add_argument(
        "-mi",
        "--mirror",
        type=boolean,
        default=False,
        help="also match mirror images (left and right swapped) and their rotations (default False; "
        "not a difPy option)",
    )
    p.add_argument(
        "-ct",
        "--crop_tolerance",
        type=crop_tolerance,
        default=0.0,
        help="also match images trimmed by up to this share of each side, e.g. 0.03 (default 0: off; "
        "not a difPy option)",
    )
    p.add_argument(
        "-dim",
        "--same_dim",
        type=boolean,
        default=False,
        help="only compare images of the same size, in either orientation (default False; "
        "difPy's default True never finds resized copies)",
    )
    p.add_argument("-mv", "--move_to", default=None, help="move the lower-quality copies to this folder")
    p.add_argument(
        "-d",
        "--delete",
        type=boolean,
        default=False,
        help="delete the lower-quality copies (to the trash of their file system: --undo brings them back)",
    )
    p.add_argument("-sd", "--silent_del", type=boolean, default=False, help="delete without asking for confirmation")
    p.add_argument(
        "-p", "--show_progress", type=boolean, default=True, help="show a progress line per stage (default True)"
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show Snakemake's own output instead of the progress lines (not a difPy option)",
    )
    add_engine_option(p, "; not a difPy option")
    p.add_argument(
        "-proc", "--processes", type=bounded_int(1), default=os.cpu_count() or 1, help="CPU cores to use (default: all)"
    )
    p.add_argument(
        "-ch", "--chunksize", type=bounded_int(1), default=None, help="images per comparison block (default: from -px)"
    )
    p.add_argument(
        "-la",
        "--lazy",
        type=boolean,
        default=False,
        help="fast-diff-py's lazy mode: equal hashes are duplicates without comparing, "
        "and only images of the same size are compared",
    )
    p.add_argument(
        "--undo", metavar="JOURNAL", help="move the files a journal moved or deleted (to the trash) back, then exit"
    )
    return p


def block_size(px: int, chunksize: int | None) -> int:
    """``-ch``, or the run decision for ``-px`` (``block_size_for``)."""
    return chunksize or block_size_for(px)


def run_config(args: argparse.Namespace, progress: Path) -> Config:
    """difPy's options as the run's :class:`Config` (whose ``to_workflow`` is the one
    translation to the workflow's keys); everything of the run lives in ``progress``."""
    lazy = bool(args.lazy)
    return Config(
        part_a=[os.path.abspath(d) for d in args.directory],
        recurse=args.recursive,
        rotate=args.rotate,
        mirror=args.mirror,
        crop_tolerance=args.crop_tolerance,
        allowed_file_extensions=list(DEFAULT_EXTENSIONS) if args.limit_extensions else ["*"],
        compression_target=args.px_size,
        # thumbnail_method stays the default (quality): Pillow's bicubic shrink, which difPy
        # uses, is anti-aliased, and area averaging is its match
        thumbnail_method=DEFAULTS["thumbnail_method"],
        first_loop=FirstLoopConfig(compute_hash=lazy, shift_amount=0),
        second_loop=SecondLoopConfig(
            diff_threshold=args.similarity * DIF_PER_MSE,
            skip_matching_hash=lazy,
            match_aspect_by=0 if (args.same_dim or lazy) else None,
            batch_size=block_size(args.px_size, args.chunksize),
        ),
        db_path=str(progress / "fast_diff.db"),
        thumb_dir=str(progress),
        config_path=str(progress / ".task.json"),
        batch_size_dir=DEFAULTS["shard_size"],
    )


def workflow_config(args: argparse.Namespace, progress: Path) -> dict:
    """The workflow configuration of a ``difpy`` run."""
    return run_config(args, progress).to_workflow()


def progress_dir(args: argparse.Namespace) -> Path:
    """A folder in the user's cache named after everything that decides the result, so that
    a rerun resumes it, and a run on the same folders grown or changed takes from it what is
    still valid."""
    key = {
        k: getattr(args, k)
        for k in ("recursive", "limit_extensions", "px_size", "similarity", "rotate", "same_dim", "lazy")
    }
    if args.mirror:  # named only when set: the folders of earlier runs keep their names
        key["mirror"] = True
    if args.crop_tolerance:
        key["crop_tolerance"] = args.crop_tolerance
    key["directory"] = [os.path.abspath(d) for d in args.directory]
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir()) / "difpy" / digest


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t).isoformat()


_OUTPUT = re.compile(
    r"difPy_\d{14}(-\d+)?_(results\.json|lower_quality\.txt|stats\.json|summary\.json|log\.txt"
    r"|journal\.jsonl|report)"
)


def own_outputs(out_dir: Path, searched: list[str]) -> list[str]:
    """What earlier ``difpy`` runs wrote in ``out_dir`` (``-Z``), where it lies inside one of
    the ``searched`` folders: left out of the index (elsewhere nothing, so that the run's
    settings stay the same from run to run)."""
    real, roots = os.path.realpath(out_dir), [os.path.realpath(f) for f in searched]
    if not any(os.path.commonpath([real, root]) == root for root in roots):
        return []
    try:
        names = os.listdir(out_dir)
    except OSError:
        return []
    return [os.path.join(out_dir, n) for n in sorted(names) if _OUTPUT.fullmatch(n)]


def _free_stamp(out_dir: Path) -> str:
    """The time that names this run's files in ``out_dir`` (difPy's ``%Y%m%d%H%M%S``), with
    ``-2``, ``-3``... where a run of the same second already wrote files there."""
    stamp = datetime.now().strftime("%Y%m%d%H%M%S")
    chosen, n = stamp, 1
    while any(out_dir.glob(f"difPy_{glob.escape(chosen)}_*")):
        n += 1
        chosen = f"{stamp}-{n}"
    return chosen


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.output_directory or os.getcwd()).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = progress_dir(args)
    settings = run_config(args, progress)
    settings.exclude_paths = own_outputs(out_dir, args.directory)  # earlier runs' files are no photos
    settings.retain_progress = False  # no task file: the folder's name is the task
    config = settings.to_workflow()
    t0 = time.time()
    # one run (Snakemake's start-up is paid once); difPy's build ends with the last thumbnail
    fdo = FastDifPy(
        config=settings,
        cores=args.processes,
        verbose=args.verbose,
        progress=args.show_progress and not args.verbose,
        # Snakemake's own output (-v) comes from Snakemake only
        engine="snakemake" if args.verbose and args.engine == "auto" else args.engine,
    )
    fdo.commit()
    t2 = time.time()
    thumbnails = [p.stat().st_mtime for p in (Path(fdo.results_dir or ".") / "thumbnails").glob("*.parquet")]
    t1 = max(t0, min(max(thumbnails, default=t0), t2))  # thumbnails made earlier: none now
    build, search = difpy_parameters(
        recursive=args.recursive,
        in_folder=args.in_folder,
        limit_extensions=args.limit_extensions,
        px_size=args.px_size,
        similarity=args.similarity,
        rotate=args.rotate,
        same_dim=args.same_dim,
        processes=args.processes,
        chunksize=args.chunksize,
    )
    durations = {
        "build": {"start": _iso(t0), "end": _iso(t1), "seconds_elapsed": round(t1 - t0, 4)},
        "search": {"start": _iso(t1), "end": _iso(t2), "seconds_elapsed": round(t2 - t1, 4)},
    }
    plan: list[tuple[int, int]] = []
    results, lower, stats = difpy_report(
        config["db_path"],
        similarity=args.similarity,
        in_folder=args.in_folder,
        given_roots=args.directory,
        limit_extensions=args.limit_extensions,
        build_parameters=build,
        search_parameters=search,
        durations=durations,
        plan=plan,
    )
    stamp = _free_stamp(out_dir)
    names = [out_dir / f"difPy_{stamp}_{part}" for part in ("results.json", "lower_quality.txt", "stats.json")]
    write_difpy_files(results, lower, stats, *names)
    keep_run_log(fdo.run_log, out_dir / f"difPy_{stamp}_log.txt")
    summary = read_summary(summary_path(config["db_path"]))
    if summary is not None and os.path.isdir(report_path(config["db_path"])):
        # the gallery and summary beside the results (the gallery's files linked)
        gallery = replace_report(report_path(config["db_path"]), out_dir / f"difPy_{stamp}_report", keep=True)
        summary["gallery"] = str(gallery)
        write_summary(summary, out_dir / f"difPy_{stamp}_summary.json")
        print(format_summary(summary, out_dir / f"difPy_{stamp}_summary.json", database=False))
    found = stats["process"]["search"]["matches_found"]
    print(f"difpy: {found['duplicates']} duplicates, {found['similar']} similar; results saved in '{out_dir}'")
    status = 0
    if (args.move_to or args.delete) and plan:
        if args.delete and not args.silent_del:
            answer = input(
                f"Are you sure you want to delete all lower quality matched images ({len(plan)} files)? [y/n] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing deleted.")
                plan = []
        if plan:
            # the thumbnails compared are in the results folder of the run that compared them
            assert fdo.results_dir is not None
            status = _act(args, plan, config["db_path"], fdo.results_dir, out_dir / f"difPy_{stamp}_journal.jsonl")
    return status


def _act(
    args: argparse.Namespace, plan: list[tuple[int, int]], db_path: str, results_dir: str, journal_path: Path
) -> int:
    """Move or delete the lower-quality files that are still what was compared (by the run
    whose results are in ``results_dir``); 1 if any action failed."""
    with Journal(journal_path) as journal:
        outcomes = act(
            plan,
            db_path,
            results_dir,
            journal,
            size=args.px_size,
            method="quality",
            move_to=args.move_to,
        )
    done = [o for o in outcomes if o.state == "done"]
    there = [o for o in outcomes if o.state == "skipped" and o.reason == ALREADY_THERE]
    skipped = [o for o in outcomes if o.state == "skipped" and o.reason != ALREADY_THERE]
    failed = [o for o in outcomes if o.state == "failed"]
    verb = "Moved" if args.move_to else "Deleted"
    where = f" to '{args.move_to}'" if args.move_to else " to the trash"
    where += f" (listed in {journal_path}; undo: difpy --undo {journal_path})"
    print(f"{verb} {len(done)} file(s){where}")
    if there:
        print(f"{len(there)} file(s) already in '{args.move_to}' left as they are")
    for o in skipped[:10]:
        print(f"difpy: warning: left {o.source!r} in place: {o.reason}", file=sys.stderr)
    for o in failed[:10]:
        print(f"difpy: error: could not {verb.lower()[:-1]} {o.source!r}: {o.reason}", file=sys.stderr)
    if len(skipped) > 10 or len(failed) > 10:
        print(f"difpy: every file left in place or failed, with its reason, is in {journal_path}", file=sys.stderr)
    if skipped:
        print(
            f"difpy: {len(skipped)} file(s) left in place because they are not what was compared or are links",
            file=sys.stderr,
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # difpy prints the run's summary itself, with the paths it keeps
    logging.getLogger("fast_diff_py.summary").propagate = False
    if args.undo:
        try:
            restored, failures = undo_moves(args.undo)
        except (JournalError, OSError) as exc:
            print(f"difpy: error: {exc}", file=sys.stderr)
            return 1
        print(f"Moved {len(restored)} file(s) back")
        for o in failures:
            print(f"difpy: error: could not move {o.source!r} back to {o.target!r}: {o.reason}", file=sys.stderr)
        return 1 if failures else 0
    for flag, folder in (("-Z/--output_directory", args.output_directory), ("-mv/--move_to", args.move_to)):
        problem = not_a_folder(flag, folder)
        if problem:
            parser.error(problem)
    if args.move_to is not None and args.delete:
        parser.error('"move_to" and "delete" are mutually exclusive: choose one of -mv and -d')
    if args.delete and not args.silent_del and not sys.stdin.isatty():
        parser.error(
            "-d/--delete asks for confirmation, but there is no terminal to answer it: "
            "add -sd True to delete without asking"
        )
    if args.silent_del and not args.delete:
        logger.warning("-sd/--silent_del has no effect without -d/--delete")
    for folder in args.directory:
        if not os.path.isdir(folder):
            what = "is not a folder" if os.path.exists(folder) else "does not exist"
            parser.error(f"-D/--directory: {folder!r} {what}")
    try:
        return run(args)
    except FastDiffError as exc:
        print(f"difpy: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("difpy: interrupted; run the same command again to resume (finished work is kept)", file=sys.stderr)
        return 130
    except OSError as exc:  # a folder it cannot write to, a full disk: the file and the reason
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"difpy: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    from ._start import end_process

    end_process(main())
