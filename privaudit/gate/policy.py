"""The CI gate's policy file: rules and waivers, loaded and checked before any report is read.

A policy (YAML, ``version: 1`` optional) lists rules and waivers::

    rules:
      - id: dp-budget
        metric: dp.epsilon         # a registered name (gate/metrics.py) or a JSON pointer
        max: 3.0                   # and/or min
        statistic: ci_high         # point | ci_low | ci_high (default: the bound — below)
        max_increase: 0.5          # against --baseline, in the metric's units
        max_relative_increase: 0.1 # against --baseline, as a fraction of the baseline value
        severity: error            # or warning
        applies_to: "*"            # glob over targets: models, or "<request>/<method>"
    waivers:
      - {rule: dp-budget, reason: "...", owner: "...", expires: 2027-01-31, applies_to: "*"}

Judging a report against a policy is :mod:`privaudit.gate.evaluation` (:func:`~privaudit.
gate.evaluation.evaluate`, :func:`~privaudit.gate.evaluation.run_gate`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from privaudit.core.errors import ConfigError
from privaudit.core.params import format_validation_error
from privaudit.core.safe_yaml import load_yaml_file
from privaudit.gate.metrics import (
    check_metric_name,
    find_metric,
    metric_has_ci,
)
from privaudit.reports.schema import parse_report

Statistic = Literal["point", "ci_low", "ci_high"]
CheckStatus = Literal["pass", "fail", "warn", "waived", "missing", "skipped"]
BaselineState = Literal["new", "unchanged", "updated", "absent"]
FINGERPRINT_KEY = "privauditCheck/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rule(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    metric: str = Field(min_length=1)
    max: float | None = None
    min: float | None = None
    statistic: Statistic | None = None
    max_increase: float | None = Field(default=None, ge=0)
    max_relative_increase: float | None = Field(default=None, ge=0)
    severity: Literal["error", "warning"] = "error"
    applies_to: str = "*"
    description: str = ""

    @field_validator("max", "min", "max_increase", "max_relative_increase")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        # NaN compares false with every value: a NaN limit would pass anything, silently
        if value is not None and math.isnan(value):
            raise ValueError("must be a number or ±infinity, not NaN")
        return value

    @model_validator(mode="after")
    def _has_a_limit(self) -> Rule:
        if None is self.max is self.min is self.max_increase is self.max_relative_increase:
            raise ValueError("a rule needs max, min, max_increase or max_relative_increase")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class Waiver(_Strict):
    rule: str
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: date
    applies_to: str = "*"


class Policy(_Strict):
    version: Literal[1] = 1
    rules: list[Rule] = Field(min_length=1)
    waivers: list[Waiver] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        ids = [r.id for r in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(dupes)}")
        unknown = [w.rule for w in self.waivers if w.rule not in ids]
        if unknown:
            raise ValueError(f"waivers name rules that do not exist: {', '.join(unknown)}")
        return self


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    path: Path
    lines: dict[str, int]  # rule id → line of the rule in the file (1-based)


def _rule_lines(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if key.value == "rules" and isinstance(value, yaml.SequenceNode):
            for item in value.value:
                if isinstance(item, yaml.MappingNode):
                    for k, v in item.value:
                        if k.value == "id" and isinstance(v, yaml.ScalarNode):
                            lines[v.value] = item.start_mark.line + 1
    return lines


def load_policy(path: Path | str) -> LoadedPolicy:
    """Read and validate a policy file; ConfigError (exit 2) naming every bad field."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--policy: no such file: {path}")
    raw = load_yaml_file(path, what=str(path))  # SafeLoader, bounded (no alias bomb)
    text = path.read_text(encoding="utf-8-sig")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a policy must be a mapping with a 'rules' list")
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{path}: {p}" for p in format_validation_error(exc)]
        raise ConfigError(f"{len(problems)} problem(s) in the policy: {problems[0]}",
                          problems) from None
    problems = []
    for i, rule in enumerate(policy.rules):
        try:
            check_metric_name(rule.metric)
        except ConfigError as exc:
            problems.append(f"{path}: rules.{i}.metric: {exc}")
        if rule.statistic in ("ci_low", "ci_high") and find_metric(rule.metric) \
                and not metric_has_ci(rule.metric):
            problems.append(f"{path}: rules.{i}.statistic: {rule.metric} has no confidence "
                            f"interval; use point (got {rule.statistic})")
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in the policy: {problems[0]}", problems)
    return LoadedPolicy(policy, path, _rule_lines(text))


def load_report_document(path: Path | str, *, what: str = "report") -> dict[str, Any]:
    """A report.json as a document, validated against the Report schema (ConfigError: exit 2)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what}: no such file: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: JSON, huge ints
        raise ConfigError(f"{what}: {path} is not valid JSON ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{what}: {path} is not valid JSON (nested too deeply)") from None
    parse_report(doc, source=str(path), allow_unknown_sections=True)
    result: dict[str, Any] = doc
    return result


def starter_policy() -> str:
    """The commented starter policy written by ``privaudit gate --init``."""
    return resources.files("privaudit.gate").joinpath("privacy-gate.yaml").read_text(
        encoding="utf-8")
