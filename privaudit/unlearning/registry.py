"""The registry of unlearning methods, kept apart from the :class:`~privaudit.unlearning.
base.Unlearner` base: the ``unlearning`` config section names the known methods through it,
and the base takes that section's type, so neither imports the other.

The built-in methods are imported on first lookup; each registers its classes on import.
``privaudit.unlearning.base`` holds the typed view (``UNLEARNERS``, ``get_unlearner``).
"""

from __future__ import annotations

import importlib
from typing import Any

from privaudit.core.registry import Registry

__all__ = ["REGISTRY", "method_names"]

_BUILTIN = (
    "privaudit.unlearning.ascent",
    "privaudit.unlearning.sisa",
    "privaudit.unlearning.incremental",
    "privaudit.unlearning.oracle",
)


def _load_builtin() -> None:
    for module in _BUILTIN:
        importlib.import_module(module)  # each registers its classes on import


#: Method name → its :class:`~privaudit.unlearning.base.Unlearner` subclass.
REGISTRY: Registry[Any] = Registry(
    "unlearner", where="unlearning.methods", unknown="{where}: must be among {names} (got {name})",
    load=_load_builtin)


def method_names() -> list[str]:
    """Every registered method name except the oracle (which always runs first)."""
    return [n for n in REGISTRY.names() if not REGISTRY.get(n).is_oracle]
