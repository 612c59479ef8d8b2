"""The metric registry of the CI gate: a metric name → the values it denotes in a report.

A metric resolves, against one report document (the parsed report.json), to one
:class:`Observation` per *target* — the model an attack ran on, the erasure request × method
an unlearning result belongs to, or ``""`` for a run-wide number. Statistical metrics carry
their confidence interval (``ci_low``/``ci_high``) so that a rule can gate on the bound.

Registered names (``<...>`` is a placeholder)::

    dp.epsilon  dp.subject_level_epsilon  dp.delta            DP off → ∞ (never passes a max)
    attacks.<attack>.auc                                      CI: auc_ci_low / auc_ci_high
    attacks.<attack>.tpr_at_fpr.<fpr>                         CI: distribution-free (the
                                                              threshold's error too); not
                                                              estimable (fewer than 10/FPR
                                                              non-members): missing, exit 4
    attacks.<attack>.balanced_accuracy
        (these three are the federated model's when the report attacked it — every attack
        also runs on each unlearned model and oracle; a report without a "federated" model
        gives one observation per model attacked)
    attacks.<attack>.<model>.auc                              one model's, e.g.
        attacks.loss.sisa/req-0001.auc (model = "<method>/<request-id>", as in attacks[])
    attacks.exposure.mean_bits  attacks.exposure.max_bits     from /exposure
    unlearning.<request-or-method glob>.<field.path>          e.g. unlearning.*.forget.privleak
        (issue 10: forget.privleak, forget.ks_pvalue, forget.mia_auc, ulira_auc,
        retain.mia_auc_increase, utility_drop; issue 24: robustness.<variant>.privleak
        (merged | int8 | int4 | nf4), relearning.recovery; an observation carries the sibling
        <field>_ci_low / _ci_high when recorded, but rules gate on the point)
    secure_aggregation.<field>                                security_bits, max_abs_error, …
                                                              (off → security_bits 0, error 0)
    dp_audit.<field>                                          epsilon_lower_bound, violation (1/0),
                                                              max_provable_epsilon (a NOT
                                                              INFORMATIVE audit: missing, exit 4)
    utility.value  utility.per_model.<model>

Anything starting with ``/`` is an RFC 6901 JSON pointer to a number (or boolean) in
report.json. Register more with :func:`register_metric`.

A metric whose section is absent from the report raises :class:`MetricUnavailable` (the gate
turns it into exit 4, naming the metric). A name that matches no registered family is a
policy error: :func:`check_metric_name` refuses it when the policy is loaded (exit 2, with
the closest registered names), so a typo never reads as missing evidence;
:func:`resolve_metric` raises :class:`UnknownMetric` for it when called directly.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from privaudit.core.errors import ConfigError
from privaudit.core.registry import Registry
from privaudit.reports.crosswalk import MISSING, parse_pointer, resolve_pointer

Document = Mapping[str, Any]


@dataclass(frozen=True)
class Observation:
    """One value of a metric for one target, with its confidence interval when it has one."""

    target: str
    point: float
    pointer: str
    ci_low: float | None = None
    ci_high: float | None = None
    note: str = ""
    #: why this target has no usable value (the rule then reports evidence missing for it,
    #: and only if ``applies_to`` selects it)
    unavailable: str | None = None

    def statistic(self, name: str) -> float | None:
        return {"point": self.point, "ci_low": self.ci_low, "ci_high": self.ci_high}[name]


class MetricUnavailable(Exception):
    """The report does not contain the metric (a stage or attack did not run)."""


class UnknownMetric(Exception):
    """The name is neither a registered metric nor a JSON pointer."""


Resolver = Callable[[Document, "re.Match[str]"], list[Observation]]


@dataclass(frozen=True)
class MetricSpec:
    pattern: str
    regex: re.Pattern[str]
    resolve: Resolver
    has_ci: bool
    description: str
    #: whole names of the family, offered when a policy misspells one (e.g. dp.epsilon)
    names: tuple[str, ...] = ()


def _load_builtin() -> None:
    importlib.import_module("privaudit.gate.resolvers")  # registers the built-in families


#: The gate's metric families, by pattern, in registration order (first match wins); the
#: built-in ones (:mod:`privaudit.gate.resolvers`) are registered before any other.
METRICS: Registry[MetricSpec] = Registry("metric", where="gate rules", load=_load_builtin)


def register_metric(pattern: str, regex: str, resolve: Resolver, *, has_ci: bool = False,
                    description: str = "", names: tuple[str, ...] = ()) -> MetricSpec:
    """Register a metric family; ``regex`` must match the whole name. ``names``: the family's
    whole names when it has a fixed few (suggested for a misspelt one)."""
    spec = MetricSpec(pattern, re.compile(regex), resolve, has_ci, description, names)
    METRICS.names()  # the built-in families first, so that they keep precedence
    return METRICS.register(pattern, spec)


def registered_metrics() -> list[MetricSpec]:
    return METRICS.values()


def find_metric(name: str) -> tuple[MetricSpec, re.Match[str]] | None:
    """The registered family ``name`` belongs to (first registered wins), or None."""
    for spec in METRICS.values():
        if match := spec.regex.fullmatch(name):
            return spec, match
    return None


def metric_has_ci(name: str) -> bool:
    found = find_metric(name)
    return bool(found and found[0].has_ci)


_CHOSEN = frozenset({"<attack>", "<model>", "<selector>"})


def suggest_metrics(name: str) -> list[str]:
    """Registered names closest to ``name``: each family's fixed names, and each pattern of
    as many segments with the names a policy chooses (``<attack>``, ``<model>``,
    ``<selector>``) taken from ``name`` (``attacks.loss.aucc`` → ``attacks.loss.auc``)."""
    parts = name.split(".")
    candidates: set[str] = set()
    for spec in METRICS.values():
        candidates.update(spec.names)
        segments = spec.pattern.split(".")
        if len(segments) == len(parts):
            candidates.add(".".join(part if seg in _CHOSEN else seg
                                    for seg, part in zip(segments, parts, strict=True)))
    valid = sorted(c for c in candidates if "<" not in c and find_metric(c) is not None)
    return difflib.get_close_matches(name, valid, n=2, cutoff=0.6)


#: families whose last segments name a report field: checked against the report schema
_FIELD_FAMILIES = {"dp_audit": "dp_audit", "secure_aggregation": "secure_aggregation"}


def _model_of(annotation: Any) -> Any:
    """The pydantic model in a field's annotation (``X | None`` → X), else the annotation."""
    return next((a for a in getattr(annotation, "__args__", (annotation,))
                 if hasattr(a, "model_fields")), annotation)


def _schema_model(field: str) -> Any:
    from privaudit.reports.schema import Report

    return _model_of(Report.model_fields[field].annotation)


def _check_field_path(name: str, model: Any, path: list[str], prefix: str) -> None:
    """Raise ConfigError (with the close field names) unless ``path`` names a field of the
    report-schema ``model``, nested models followed; the report may still lack it (exit 4)."""
    for i, part in enumerate(path):
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return  # a mapping or a list below: its keys are data, not schema
        if part not in fields:
            close = difflib.get_close_matches(part, list(fields), n=2, cutoff=0.6)
            head = ".".join([prefix, *path[:i]])
            hint = f"did you mean {' or '.join(repr(f'{head}.{c}') for c in close)}? " \
                if close else ""
            raise ConfigError(f"unknown metric: {hint}{head} has no field {part!r} (fields: "
                              f"{', '.join(sorted(fields))}; got {name!r})")
        model = _model_of(fields[part].annotation)


def check_metric_name(name: str) -> None:
    """Raise ConfigError for a malformed JSON pointer, a name no family registers, or a
    field-generic name (``dp_audit.<field>``, ``secure_aggregation.<field>``,
    ``unlearning.<selector>.<path>``) whose field the report schema does not have."""
    if name.startswith("/"):
        parse_pointer(name)
        return
    family, _, rest = name.partition(".")
    if family in _FIELD_FAMILIES and rest:
        _check_field_path(name, _schema_model(_FIELD_FAMILIES[family]), rest.split("."), family)
    elif family == "unlearning" and rest.count(".") >= 1:
        selector, _, path = rest.partition(".")
        from privaudit.reports.schema import UnlearningResult

        _check_field_path(name, UnlearningResult, path.split("."), f"unlearning.{selector}")
    if find_metric(name) is None:
        close = suggest_metrics(name)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ConfigError(
            f"unknown metric: {hint}(allowed: a registered name — "
            + ", ".join(s.pattern for s in METRICS.values())
            + f" — or a JSON pointer starting with '/'; got {name!r})")


def resolve_metric(doc: Document, name: str) -> list[Observation]:
    """Every observation of ``name`` in ``doc``; raises MetricUnavailable / UnknownMetric."""
    if name.startswith("/"):
        return [number_at(doc, name, "")]
    found = find_metric(name)
    if found is None:
        raise UnknownMetric(f"unknown metric {name!r}: not a registered name nor a JSON "
                            "pointer (registered: "
                            + ", ".join(s.pattern for s in METRICS.values()) + ")")
    spec, match = found
    observations = spec.resolve(doc, match)
    if not observations:
        raise MetricUnavailable(f"{name}: the report has no value for it")
    return observations


# ---------------------------------------------------------------- helpers


def value_at(doc: Document, pointer: str) -> Any:
    value = resolve_pointer(doc, pointer)
    return None if value is MISSING else value


def as_float(value: Any, where: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    raise MetricUnavailable(f"{where} is {'missing' if value is None else 'not a number'} "
                            "in the report")


def number_at(doc: Document, pointer: str, target: str, note: str = "") -> Observation:
    value = resolve_pointer(doc, pointer)
    if value is MISSING:
        raise MetricUnavailable(f"{pointer} is not in the report")
    return Observation(target, as_float(value, pointer), pointer, note=note)


def section_at(doc: Document, pointer: str, name: str) -> Mapping[str, Any]:
    section = value_at(doc, pointer)
    if not isinstance(section, Mapping) or not section:
        raise MetricUnavailable(f"{name}: the report has no {pointer} section (the stage that "
                                "writes it did not run, or this privaudit does not record it)")
    return section
