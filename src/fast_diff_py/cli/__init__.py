"""Command lines: ``fastdiffpy`` (fast-diff-py's) and ``difpy`` (difPy's)."""
