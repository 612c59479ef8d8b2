"""The strict pydantic base of every config section, its error format and the merge patch.

Unknown keys are errors (``extra="forbid"``) and every float must be finite
(``allow_inf_nan=False``): ``.inf`` or ``.nan`` in a noise multiplier, a clip norm or a
learning rate would otherwise validate and fail later, far from the field (an accountant that
never returns, a DP claim with unbounded sensitivity). A section where infinity means
something declares that field itself and says so in its description.

The families' own sections (``privacy.dp``, ``secure_aggregation``) derive from it too, so
this module imports nothing from privaudit.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigSection(BaseModel):
    """A config section: unknown keys refused, every float finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ReportModel(BaseModel):
    """A part of ``report.json``: unknown keys refused (a misspelt field is an error)."""

    model_config = ConfigDict(extra="forbid")


def describe_value(value: Any) -> str:
    """A value as an error message quotes it: JSON (strings repr'd), cut at 80 characters."""
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def format_validation_error(exc: ValidationError) -> list[str]:
    """Every pydantic error as ``path.to.field: reason (got VALUE)``."""
    problems = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key (not part of the config schema)"
        elif reason.startswith("Value error, "):
            reason = reason[len("Value error, ") :]
        got = err.get("input")
        suffix = "" if err["type"] == "missing" else f" (got {describe_value(got)})"
        problems.append(f"{path}: {reason}{suffix}")
    return problems


def merge_patch(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with ``patch`` merged in: nested mappings merge key by key,
    anything else in ``patch`` replaces (a config and its overrides, as parsed YAML)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
