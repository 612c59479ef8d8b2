"""Judging a report against a policy: rules × targets → checks → a :class:`GateResult`.

Every rule is checked for every target of its metric (one :class:`Check` each). Statistical
metrics are gated on their confidence bound unless ``statistic`` says otherwise: ``max`` on
``ci_high``, ``min`` on ``ci_low`` (a bound the report does not hold is missing evidence,
never a silent fall-back to the point). Baseline limits compare the same statistic of the
same target in the baseline report; a baseline value of 0 makes any increase fail
``max_relative_increase``.

A check is ``pass``, ``fail`` (severity error), ``warn`` (severity warning), ``waived`` (it
failed, or its evidence is missing, and a valid waiver covers it — never hidden), ``missing``
(the report does not contain the metric) or ``skipped`` (only baseline limits and no
baseline given). An expired waiver does not apply, and the result says so.

Exit code (:attr:`GateResult.exit_code`): 1 if any check fails; else 4 if evidence for an
error-severity rule is missing; else 0. A malformed policy or report raises ConfigError (2).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import date
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from privaudit.core.errors import EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK
from privaudit.gate.metrics import (
    MetricUnavailable,
    Observation,
    UnknownMetric,
    metric_has_ci,
    resolve_metric,
)
from privaudit.gate.policy import (
    BaselineState,
    CheckStatus,
    Policy,
    Rule,
    Statistic,
    Waiver,
    load_policy,
    load_report_document,
)

__all__ = ["Check", "GateResult", "evaluate", "run_gate"]


@dataclass
class Check:
    """One rule applied to one target."""

    rule: Rule
    target: str
    status: CheckStatus
    message: str
    statistic: Statistic | None = None
    value: float | None = None
    baseline: float | None = None
    pointer: str | None = None
    waiver: Waiver | None = None
    baseline_state: BaselineState | None = None

    @property
    def fingerprint(self) -> str:
        """Stable across runs: the rule, its metric and the target — never the value."""
        key = f"{self.rule.id}\0{self.rule.metric}\0{self.target}".encode()
        return hashlib.sha256(key).hexdigest()[:32]

    @property
    def name(self) -> str:
        return f"{self.rule.id}[{self.target}]" if self.target else self.rule.id

    @property
    def problem(self) -> bool:
        return self.status in ("fail", "warn", "waived", "missing")


@dataclass
class GateResult:
    checks: list[Check]
    notes: list[str] = field(default_factory=list)
    policy_path: Path | None = None
    report_path: Path | None = None
    rule_lines: dict[str, int] = field(default_factory=dict)
    baseline_given: bool = False

    def count(self, status: CheckStatus) -> int:
        return sum(c.status == status for c in self.checks)

    @property
    def missing_required(self) -> list[Check]:
        return [c for c in self.checks if c.status == "missing" and c.rule.severity == "error"]

    @property
    def exit_code(self) -> int:
        if self.count("fail"):
            return EXIT_FAILED
        if self.missing_required:
            return EXIT_INCOMPLETE
        return EXIT_OK

    @property
    def status(self) -> str:
        return {EXIT_FAILED: "FAILED", EXIT_INCOMPLETE: "INCOMPLETE"}.get(self.exit_code,
                                                                           "PASSED")

    @property
    def headline(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in ("fail", "missing", "warn", "waived", "pass",
                                                   "skipped") if self.count(s)]
        return f"privacy gate {self.status}: {len(self.checks)} checks — " + ", ".join(parts)


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    if math.isinf(x):
        return "∞"
    return f"{x:.4g}"


def _pick(rule: Rule, obs: Observation, bound: Literal["max", "min"]) -> Statistic:
    if rule.statistic is not None:
        return rule.statistic
    if metric_has_ci(rule.metric):
        return "ci_high" if bound == "max" else "ci_low"
    return "point"


def _judge(rule: Rule, obs: Observation, base: Observation | None,
           baseline_given: bool) -> tuple[str, str, Statistic, float | None, float | None]:
    """(outcome ∈ pass/fail/missing/skipped, message, statistic, value, baseline value)."""
    if obs.unavailable is not None:
        return ("missing", f"evidence missing: {obs.unavailable}", rule.statistic or "point",
                None, None)
    failures: list[str] = []
    passes: list[str] = []
    used: Statistic = rule.statistic or "point"
    value: float | None = None
    for bound, limit in (("max", rule.max), ("min", rule.min)):
        if limit is None:
            continue
        used = _pick(rule, obs, bound)  # type: ignore[arg-type]
        value = obs.statistic(used)
        if value is None:
            return ("missing", f"{rule.metric} has no {used} in the report (its confidence "
                    "interval was not recorded)", used, None, None)
        bad = value > limit if bound == "max" else value < limit
        text = f"{used} {_fmt(value)} {'>' if bound == 'max' else '<'} {bound} {_fmt(limit)}" \
            if bad else f"{used} {_fmt(value)} within {bound} {_fmt(limit)}"
        (failures if bad else passes).append(text)
    base_value = None
    if rule.max_increase is not None or rule.max_relative_increase is not None:
        used = rule.statistic or ("ci_high" if metric_has_ci(rule.metric) else "point")
        value = obs.statistic(used)
        if not baseline_given:
            if rule.max is None and rule.min is None:
                return ("skipped", "not compared: no --baseline given", used, value, None)
            passes.append("baseline limits not checked (no --baseline)")
        elif value is None:
            return ("missing", f"{rule.metric} has no {used} in the report", used, None, None)
        elif (base_value := base.statistic(used) if base is not None else None) is None:
            passes.append("no baseline value for this target (new)")
        else:
            delta = value - base_value
            if rule.max_increase is not None:
                bad = delta > rule.max_increase
                (failures if bad else passes).append(
                    f"increase {_fmt(delta)} over baseline {_fmt(base_value)} "
                    f"{'>' if bad else '<='} max_increase {_fmt(rule.max_increase)}")
            if rule.max_relative_increase is not None:
                rel = (delta / abs(base_value) if base_value != 0
                       else (math.inf if delta > 0 else 0.0))
                bad = rel > rule.max_relative_increase
                (failures if bad else passes).append(
                    f"relative increase {_fmt(100 * rel)}% over baseline {_fmt(base_value)} "
                    f"{'>' if bad else '<='} {_fmt(100 * rule.max_relative_increase)}%")
    note = f" ({obs.note})" if obs.note else ""
    if failures:
        return "fail", "; ".join(failures) + note, used, value, base_value
    return "pass", "; ".join(passes) + note, used, value, base_value


def _waiver_for(policy: Policy, rule: Rule, target: str, today: date,
                notes: list[str]) -> Waiver | None:
    for w in policy.waivers:
        if w.rule != rule.id or not fnmatchcase(target, w.applies_to):
            continue
        if w.expires < today:
            note = (f"waiver for rule {rule.id} (owner {w.owner}) expired on {w.expires}: it "
                    "no longer applies")
            if note not in notes:
                notes.append(note)
            continue
        return w
    return None


def _observe(doc: dict[str, Any], rule: Rule) -> tuple[list[Observation], str | None]:
    try:
        found = resolve_metric(doc, rule.metric)
    except (MetricUnavailable, UnknownMetric) as exc:
        return [], str(exc)
    matched = [o for o in found if fnmatchcase(o.target, rule.applies_to)]
    if not matched:
        return [], (f"{rule.metric}: no target matches applies_to {rule.applies_to!r} "
                    f"(targets: {', '.join(o.target or '(run)' for o in found)})")
    return matched, None


def evaluate(policy: Policy, report: dict[str, Any], *, baseline: dict[str, Any] | None = None,
             today: date | None = None) -> GateResult:
    """Every rule × target of ``policy`` against ``report`` (collects, never stops early)."""
    today = today or date.today()
    notes: list[str] = []
    checks: list[Check] = []
    for rule in policy.rules:
        observations, why_missing = _observe(report, rule)
        base_obs: dict[str, Observation] = {}
        if baseline is not None:
            base_obs = {o.target: o for o in _observe(baseline, rule)[0]}
        if why_missing is not None:
            waiver = _waiver_for(policy, rule, "", today, notes)
            status: CheckStatus = "waived" if waiver else "missing"
            checks.append(Check(rule, "", status, f"evidence missing: {why_missing}",
                                waiver=waiver))
            continue
        for obs in observations:
            outcome, message, stat, value, base_value = _judge(
                rule, obs, base_obs.get(obs.target), baseline is not None)
            waiver = None
            if outcome in ("fail", "missing"):
                waiver = _waiver_for(policy, rule, obs.target, today, notes)
            if waiver is not None:
                status = "waived"
            elif outcome == "fail":
                status = "fail" if rule.severity == "error" else "warn"
            else:
                status = outcome  # type: ignore[assignment]
            checks.append(Check(rule, obs.target, status, message, stat, value, base_value,
                                obs.pointer, waiver))
    result = GateResult(checks, notes, baseline_given=baseline is not None)
    if baseline is not None:
        _baseline_states(result, evaluate(policy, baseline, today=today))
    return result


def _baseline_states(current: GateResult, before: GateResult) -> None:
    """SARIF baselineState of each check, from the same policy applied to the baseline."""
    previous = {c.fingerprint: c for c in before.checks}
    for c in current.checks:
        old = previous.get(c.fingerprint)
        if old is None:
            c.baseline_state = "new"
        elif c.problem and old.problem:
            c.baseline_state = "unchanged" if (c.value, c.status) == (old.value, old.status) \
                else "updated"
        elif c.problem:
            c.baseline_state = "new"
        elif old.problem:
            c.baseline_state = "absent"
        else:
            c.baseline_state = "unchanged"


def run_gate(report_path: Path | str, policy_path: Path | str, *,
             baseline_path: Path | str | None = None, today: date | None = None) -> GateResult:
    """Load the policy, the report and the baseline, and evaluate."""
    loaded = load_policy(policy_path)
    report = load_report_document(report_path)
    baseline = (load_report_document(baseline_path, what="--baseline")
                if baseline_path is not None else None)
    result = evaluate(loaded.policy, report, baseline=baseline, today=today)
    result.policy_path, result.report_path = loaded.path, Path(report_path)
    result.rule_lines = loaded.lines
    return result
