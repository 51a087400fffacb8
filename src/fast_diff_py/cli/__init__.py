"""Command lines: ``fastdiffpy`` (fast-diff-py's) and ``difpy`` (difPy's)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not loaded before the console scripts' Ctrl-C handling (_start)
if TYPE_CHECKING:
    import argparse


def add_engine_option(parser: argparse.ArgumentParser, note: str = "") -> None:
    """Both command lines' ``-e/--engine``: how the stages run (``FastDifPy``'s engine)."""
    from .._api import ENGINES
    from .._inline import SMALL_RUN_FILES

    parser.add_argument(
        "-e",
        "--engine",
        choices=ENGINES,
        default="auto",
        help="run the stages through Snakemake, job by job, or inline in this process, the same "
        f"stages with the same results (default auto: inline for up to {SMALL_RUN_FILES} files, "
        f"unless -v{note})",
    )


def not_a_folder(flag: str, path: str | None, parent: bool = False) -> str | None:
    """The error of option ``flag`` where a folder cannot be (made) at ``path`` (with
    ``parent``, at its parent: the folder of a file to write) because it, or the nearest of
    its parents that exists, is not a folder; None where it is one, or can be made."""
    import os

    if path is None:
        return None
    at = os.path.abspath(path)
    if parent:
        at = os.path.dirname(at)
    while not os.path.lexists(at) and os.path.dirname(at) != at:
        at = os.path.dirname(at)
    if os.path.isdir(at):
        return None
    if at == os.path.abspath(path):
        return f"{flag}: {path!r} is a file, not a folder"
    return f"{flag}: {path!r} cannot be made: {at!r} is a file, not a folder"
