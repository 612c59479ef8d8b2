"""The verdict's controls: one registry, in the order the verdict lists them, and the helpers
every control uses (``reports/controls.py`` holds the controls themselves)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from privaudit.core.registry import Registry
from privaudit.reports.crosswalk import MISSING, resolve_pointer
from privaudit.reports.schema import Control, ControlStatus

WEAK_EPSILON = 10.0
#: The report's own fields that the verdict and crosswalk are not computed from.
DERIVED_FIELDS = frozenset({"verdict", "crosswalk", "report_sha256"})

Document = Mapping[str, Any]
ControlFn = Callable[[Document], Control]
#: The verdict's controls, by id, in the order the verdict lists them.
CONTROLS: Registry[ControlFn] = Registry(
    "control", where="verdict controls",
    unknown="{where}: unknown control {name}; registered: {names}")


def register_control(control_id: str, fn: ControlFn) -> ControlFn:
    """Add a control to the verdict; a duplicate id is an error."""
    return CONTROLS.register(control_id, fn)


def get_control(control_id: str) -> ControlFn:
    return CONTROLS.get(control_id)


def registered_controls() -> list[str]:
    return list(CONTROLS)


def control(control_id: str) -> Callable[[ControlFn], ControlFn]:
    """Decorator form of :func:`register_control`."""
    return lambda fn: register_control(control_id, fn)


def get(doc: Document, pointer: str) -> Any:
    value = resolve_pointer(doc, pointer)
    return None if value is MISSING else value


def make(cid: str, title: str, status: ControlStatus, reason: str, evidence: list[str],
         *, applicable: bool = True) -> Control:
    return Control(id=cid, title=title, status=status, reason=reason, evidence=evidence,
                   applicable=applicable)


