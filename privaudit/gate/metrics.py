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
        retain.mia_auc_increase, utility_drop; an observation carries the sibling
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
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from privaudit.attacks.resolution import min_resolvable_fpr, nonmembers_needed, tpr_estimable
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


#: The gate's metric families, by pattern, in registration order (first match wins).
METRICS: Registry[MetricSpec] = Registry("metric", where="gate rules")


def register_metric(pattern: str, regex: str, resolve: Resolver, *, has_ci: bool = False,
                    description: str = "", names: tuple[str, ...] = ()) -> MetricSpec:
    """Register a metric family; ``regex`` must match the whole name. ``names``: the family's
    whole names when it has a fixed few (suggested for a misspelt one)."""
    spec = MetricSpec(pattern, re.compile(regex), resolve, has_ci, description, names)
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
        return [_number(doc, name, "")]
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


def _get(doc: Document, pointer: str) -> Any:
    value = resolve_pointer(doc, pointer)
    return None if value is MISSING else value


def _as_float(value: Any, where: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    raise MetricUnavailable(f"{where} is {'missing' if value is None else 'not a number'} "
                            "in the report")


def _number(doc: Document, pointer: str, target: str, note: str = "") -> Observation:
    value = resolve_pointer(doc, pointer)
    if value is MISSING:
        raise MetricUnavailable(f"{pointer} is not in the report")
    return Observation(target, _as_float(value, pointer), pointer, note=note)


def _section(doc: Document, pointer: str, name: str) -> Mapping[str, Any]:
    section = _get(doc, pointer)
    if not isinstance(section, Mapping) or not section:
        raise MetricUnavailable(f"{name}: the report has no {pointer} section (the stage that "
                                "writes it did not run, or this privaudit does not record it)")
    return section


# ---------------------------------------------------------------- resolvers


def _dp(doc: Document, m: re.Match[str]) -> list[Observation]:
    field = m.group(1)
    dp = _section(doc, "/privacy/dp", f"dp.{field}")
    pointer = f"/privacy/dp/{field}"
    if not dp.get("enabled"):
        return [Observation("", math.inf, pointer, note="DP is off (privacy.dp.enabled: false)")]
    if field.startswith("subject_level") and dp.get("subject_level_none"):
        return [Observation("", math.inf, "/privacy/dp/subject_level_none",
                            note=f"no subject-level guarantee: {dp['subject_level_none']}")]
    return [_number(doc, pointer, "")]


_GATED_MODEL = "federated"


def _attack_items(doc: Document, attack: str,
                  model: str | None = None) -> list[tuple[int, Mapping[str, Any]]]:
    """``attack``'s entries of ``/attacks``: on ``model``; by default the federated model's
    (every model's when the report has no federated model)."""
    attacks = _get(doc, "/attacks") or []
    items = [(i, a) for i, a in enumerate(attacks) if a.get("attack") == attack]
    if not items:
        raise MetricUnavailable(f"attack {attack!r} is not in the report's attacks (it did not "
                                "run, or was skipped)")
    wanted = model if model is not None else _GATED_MODEL
    chosen = [(i, a) for i, a in items if a.get("model") == wanted]
    if model is not None and not chosen:
        models = ", ".join(str(a.get("model")) for _, a in items)
        raise MetricUnavailable(f"attack {attack!r} did not run on model {model!r} (it ran on: "
                                f"{models})")
    return chosen or items


def _auc(doc: Document, m: re.Match[str]) -> list[Observation]:
    out = []
    model = m.group(2) if m.re.groups > 1 else None
    for i, a in _attack_items(doc, m.group(1), model):
        pointer = f"/attacks/{i}/auc"
        out.append(Observation(str(a.get("model", "")), _as_float(a.get("auc"), pointer),
                               pointer, a.get("auc_ci_low"), a.get("auc_ci_high")))
    return out


def _attack_field(doc: Document, m: re.Match[str]) -> list[Observation]:
    attack, field = m.group(1), m.group(2)
    return [Observation(str(a.get("model", "")), _as_float(a.get(field), f"/attacks/{i}/{field}"),
                        f"/attacks/{i}/{field}") for i, a in _attack_items(doc, attack)]


def _tpr(doc: Document, m: re.Match[str]) -> list[Observation]:
    attack, fpr = m.group(1), float(m.group(2))
    out = []
    for i, a in _attack_items(doc, attack):
        keys = [k for k in (a.get("tpr_at_fpr") or {}) if math.isclose(float(k), fpr)]
        if not keys:
            recorded = ", ".join(a.get("tpr_at_fpr") or {})
            raise MetricUnavailable(f"attack {attack!r} on {a.get('model')} has no TPR at FPR "
                                    f"{m.group(2)} (recorded: {recorded})")
        t, n_non = a["tpr_at_fpr"][keys[0]], int(a.get("n_nonmembers") or 0)
        if not tpr_estimable(t, n_non, float(keys[0])):
            high = t.get("ci_high")
            bound = f"; the TPR there is at most {high:.3g}" if high is not None else ""
            raise MetricUnavailable(
                f"attacks.{attack}.tpr_at_fpr.{m.group(2)}: the TPR of {attack!r} on "
                f"{a.get('model')} at FPR {keys[0]} is NOT ESTIMABLE: {n_non} held-out "
                f"non-members resolve FPRs down to {min_resolvable_fpr(n_non):.3g} only (it "
                f"needs at least {nonmembers_needed(fpr)}), so it is no evidence either "
                f"way{bound}")
        out.append(Observation(str(a.get("model", "")), _as_float(t.get("value"), "TPR"),
                               f"/attacks/{i}/tpr_at_fpr/{keys[0]}", t.get("ci_low"),
                               t.get("ci_high")))
    return out


def _exposure(doc: Document, m: re.Match[str]) -> list[Observation]:
    field = m.group(1)
    section = _section(doc, "/exposure", f"attacks.exposure.{field}")
    return [_number(doc, f"/exposure/{field}", str(section.get("model", "")))]


def _unlearning(doc: Document, m: re.Match[str]) -> list[Observation]:
    selector, path = m.group(1), m.group(2)
    items = _get(doc, "/unlearning")
    if not items:
        raise MetricUnavailable(f"unlearning.{selector}.{path}: the report has no unlearning "
                                "results (no erasure request was served)")
    out = []
    for i, u in enumerate(items):
        rid, method = str(u.get("request_id", i)), str(u.get("method", ""))
        if not (fnmatchcase(rid, selector) or fnmatchcase(method, selector)):
            continue
        pointer = f"/unlearning/{i}/" + path.replace(".", "/")
        _require_informative(u, path, f"unlearning.{selector}.{path}")
        value = resolve_pointer(doc, pointer)
        low, high = (resolve_pointer(doc, f"{pointer}_ci_{b}") for b in ("low", "high"))
        out.append(Observation(f"{rid}/{method}", _as_float(None if value is MISSING else value,
                                                            pointer), pointer,
                               None if low is MISSING else low,
                               None if high is MISSING else high))
    if not out:
        raise MetricUnavailable(f"unlearning.{selector}.{path}: no request or method matches "
                                f"{selector!r}")
    return out


#: unlearning fields whose test is the forget-vs-held-out comparison (``forget.informative``)
_POWERED = ("forget.privleak", "forget.mia_auc", "ulira_auc")


def _require_informative(u: Mapping[str, Any], path: str, metric: str) -> None:
    """A gate on an erasure test that could not have failed is evidence incomplete (exit 4)."""
    f = u.get("forget") or {}
    who = f"request {u.get('request_id')} ({u.get('method')})"
    if path.startswith(_POWERED) and f.get("informative") is False:
        raise MetricUnavailable(
            f"{metric}: NOT INFORMATIVE for {who}: {f.get('n_records')} forget and "
            f"{f.get('n_nonmembers')} held-out records can show PrivLeak beyond "
            f"±{f.get('privleak_floor', 0):.0f}% only, so not even total memorisation could be "
            f"told from retraining (at least {f.get('records_needed')} records needed)")
    floor = f.get("ks_pvalue_floor")
    if path.startswith("forget.ks_pvalue") and floor is not None and floor > 0.05:
        raise MetricUnavailable(
            f"{metric}: NOT INFORMATIVE for {who}: with {f.get('n_records')} forget records "
            f"the KS test cannot give p below {floor:.2g}")


_OFF_VALUES = {"security_bits": 0.0, "max_abs_error": 0.0}


def _secagg(doc: Document, m: re.Match[str]) -> list[Observation]:
    field = m.group(1)
    section = _section(doc, "/secure_aggregation", f"secure_aggregation.{field}")
    pointer = f"/secure_aggregation/{field}"
    if not section.get("enabled") and field in _OFF_VALUES:
        return [Observation("", _OFF_VALUES[field], pointer,
                            note="secure aggregation is off (enabled: false)")]
    return [_number(doc, pointer, "")]


def _dp_audit(doc: Document, m: re.Match[str]) -> list[Observation]:
    field = m.group(1)
    audit = _section(doc, "/dp_audit", f"dp_audit.{field}")
    if field in ("epsilon_lower_bound", "violation") and audit.get("informative") is False:
        raise MetricUnavailable(
            f"dp_audit.{field}: the DP audit is NOT INFORMATIVE (it can show at most ε ≥ "
            f"{audit.get('max_provable_epsilon', float('nan')):.3g}, the claim is "
            f"{audit.get('claimed_epsilon', float('nan')):.3g}): it could not have failed, so "
            "it is no evidence either way")
    return [_number(doc, f"/dp_audit/{field}", "")]


def _utility(doc: Document, m: re.Match[str]) -> list[Observation]:
    _section(doc, "/utility", "utility")
    if m.group(1) is None:
        return [_number(doc, "/utility/value", "")]
    model = m.group(1)
    return [_number(doc, f"/utility/per_model/{model.replace('~', '~0').replace('/', '~1')}",
                    model)]


_FIELD = r"([A-Za-z_][A-Za-z0-9_]*)"
_NAME = r"([^.\s]+)"
register_metric("dp.<field>", r"dp\.(epsilon|subject_level_epsilon|delta|subject_level_delta)",
                _dp, description="the DP card's guarantee (∞ when DP is off)",
                names=("dp.epsilon", "dp.subject_level_epsilon", "dp.delta",
                       "dp.subject_level_delta"))
register_metric("attacks.exposure.<field>", r"attacks\.exposure\.(mean_bits|max_bits)", _exposure,
                description="secret-canary exposure in bits",
                names=("attacks.exposure.mean_bits", "attacks.exposure.max_bits"))
register_metric("attacks.<attack>.auc", rf"attacks\.{_NAME}\.auc", _auc, has_ci=True,
                description="AUC of a membership-inference attack (the federated model)")
register_metric("attacks.<attack>.<model>.auc", rf"attacks\.{_NAME}\.(\S+)\.auc", _auc,
                has_ci=True, description="AUC of a membership-inference attack on one model")
register_metric("attacks.<attack>.tpr_at_fpr.<fpr>",
                rf"attacks\.{_NAME}\.tpr_at_fpr\.(\d*\.?\d+(?:[eE]-?\d+)?)", _tpr, has_ci=True,
                description="TPR at a fixed FPR (the federated model)")
register_metric("attacks.<attack>.balanced_accuracy",
                rf"attacks\.{_NAME}\.(balanced_accuracy)", _attack_field)
register_metric("unlearning.<selector>.<path>", r"unlearning\.([^.\s]+)\.([A-Za-z0-9_.]+)",
                _unlearning, description="a field of each unlearning result; selector globs "
                "request ids or method names")
register_metric("secure_aggregation.<field>", rf"secure_aggregation\.{_FIELD}", _secagg,
                names=("secure_aggregation.security_bits", "secure_aggregation.max_abs_error"))
register_metric("dp_audit.<field>", rf"dp_audit\.{_FIELD}", _dp_audit,
                names=("dp_audit.epsilon_lower_bound", "dp_audit.violation",
                       "dp_audit.max_provable_epsilon"))
register_metric("utility.value", r"utility\.(?:value|per_model\.(.+))", _utility,
                description="utility of the final model (or utility.per_model.<model>)",
                names=("utility.value",))
