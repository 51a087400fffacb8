"""User extension points named as ``"module:function"`` so that jobs on any machine import them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ._errors import ConfigError

__all__ = ["resolve"]


def resolve(spec: str | Callable[..., Any]) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (or return a callable unchanged)."""
    if callable(spec):
        return spec
    module_name, sep, attr = str(spec).partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"expected 'module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} of {spec!r}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"{spec!r}: module {module_name!r} has no function {attr!r}")
    return fn
