"""Exceptions raised by fast_diff_py.

::

    FastDiffError
    ├── ConfigError        a configuration value is missing, of the wrong type or out of range
    │   └── FolderError    a folder named in part_a / part_b does not exist or is not a folder
    ├── DatabaseError      the SQLite product is missing or does not hold the expected tables
    ├── IntermediateError  a file between two stages is damaged (it is removed, to be remade)
    └── RunError           Snakemake stopped with an error (also named WorkflowError)
    ImageReadError         one file cannot become a thumbnail (not a FastDiffError)

Errors of single files (undecodable, truncated, unreadable, changed, too large) never reach
the caller of a stage: the thumbnail job catches its ImageReadError and records the message
on the file's row in the ``directory`` table.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatabaseError",
    "FastDiffError",
    "FolderError",
    "ImageReadError",
    "IntermediateError",
    "OutputError",
    "RunError",
    "WorkflowError",
]


class FastDiffError(Exception):
    """Base class of every error fast_diff_py raises on purpose."""


class ConfigError(FastDiffError, ValueError):
    """A configuration value is invalid; the message names the key and the value."""


class FolderError(ConfigError):
    """A folder of a partition does not exist or is not a directory."""


class DatabaseError(FastDiffError):
    """The database is missing or malformed."""


class IntermediateError(FastDiffError):
    """A file written by one stage for the next fails its check; the message names it."""


class RunError(FastDiffError):
    """Snakemake stopped with an error; the message names each failed job's error and log,
    then the end of Snakemake's output."""


WorkflowError = RunError  # the name fast_diff_py's API has used since its start


class ImageReadError(Exception):
    """A file could not be turned into a thumbnail; the message is what gets recorded."""


class OutputError(FastDiffError):
    """A file or folder fast-diff would write is the user's own: it is left as it is."""
