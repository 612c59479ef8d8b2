"""``__all__`` of privaudit and of each family package is exactly its public names, and
every name in it resolves (lazy exports included)."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import privaudit

PACKAGES = sorted(
    ["privaudit"] + [m.name for m in pkgutil.walk_packages(privaudit.__path__, "privaudit.")
                     if m.ispkg and not m.name.endswith(".presets")])


def _public_names(package: types.ModuleType) -> set[str]:
    """What the package's ``__init__`` itself defines or re-exports, lazy names included:
    every non-underscore attribute that is not a submodule or the ``annotations`` future."""
    names = set(dir(package))  # a lazy package's __dir__ lists its exports
    return {n for n in names if not n.startswith("_") and n != "annotations"
            and not isinstance(getattr(package, n, None), types.ModuleType)}


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_exactly_the_packages_public_names_and_each_resolves(name: str) -> None:
    package = importlib.import_module(name)
    assert hasattr(package, "__all__"), f"{name}: no __all__"
    declared = {n for n in package.__all__ if not n.startswith("__")}
    assert len(set(package.__all__)) == len(package.__all__), f"{name}: __all__ repeats a name"
    assert declared == _public_names(package), (
        f"{name}: __all__ differs from its public names: missing "
        f"{sorted(_public_names(package) - declared)}, "
        f"extra {sorted(declared - _public_names(package))}")
    for n in declared:
        assert getattr(package, n) is not None, f"{name}.{n} does not resolve"
