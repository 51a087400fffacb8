"""The package's surface: what it exports is where it says, and the workflow uses only that."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
from conftest import REPO

import fast_diff_py

MODULES = sorted(info.name for info in pkgutil.iter_modules(fast_diff_py.__path__) if info.name != "cli")


@pytest.mark.parametrize("name", MODULES)
def test_every_module_lists_what_it_offers_and_has_it(name):
    module = importlib.import_module(f"fast_diff_py.{name}")
    assert isinstance(module.__all__, list), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"


def test_package_exports_are_their_modules_public_names():
    for module, names in fast_diff_py._EXPORTS.items():
        offered = importlib.import_module(f"fast_diff_py.{module}").__all__
        assert set(names) <= set(offered), f"{module}: exported but not in its __all__: {set(names) - set(offered)}"
        for n in names:
            assert getattr(fast_diff_py, n) is getattr(importlib.import_module(f"fast_diff_py.{module}"), n)
    assert fast_diff_py.__all__ == sorted(n for names in fast_diff_py._EXPORTS.values() for n in names)


def test_workflow_scripts_use_public_names_only():
    for script in (REPO / "workflow" / "scripts").glob("*.py"):
        private = re.findall(r"fast_diff_py\._\w+", script.read_text())
        assert not private, f"{script.name} imports private modules: {private}"
