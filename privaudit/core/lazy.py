"""Lazy public names for a package ``__init__`` (PEP 562).

A package's ``__init__`` that imported all its modules would make importing one light module
of it (a result type the report reads) import the heavy ones too (torch, Opacus, TenSEAL).
:func:`lazy_exports` gives the package a ``__getattr__`` that imports a public name's module
on first use, and a ``__dir__`` listing the public names.

>>> getattr_, dir_ = lazy_exports("json", {"dumps": "json.encoder"})
>>> "dumps" in dir_()
True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to the
    module that defines it."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
