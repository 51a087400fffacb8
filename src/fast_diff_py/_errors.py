"""Exceptions raised by fast_diff_py.

::

    FastDiffError
    ├── ConfigError        a configuration value is missing, of the wrong type or out of range
    │   └── FolderError    a folder named in part_a / part_b does not exist or is not a folder
    ├── DatabaseError      the SQLite product is missing or does not hold the expected tables
    └── IntermediateError  a file between two stages is damaged (it is removed, to be remade)

Errors of single files (undecodable, truncated, unreadable) are never raised: they are
recorded on the file's row in the ``directory`` table.
"""

from __future__ import annotations


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
