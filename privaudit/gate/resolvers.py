"""The gate's built-in metric families (listed in :mod:`privaudit.gate.metrics`): how each
name resolves against a report document, registered on import, in the order that decides
which family a name belongs to (first match wins)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from privaudit.attacks.resolution import min_resolvable_fpr, nonmembers_needed, tpr_estimable
from privaudit.gate.metrics import (
    Document,
    MetricUnavailable,
    Observation,
    as_float,
    number_at,
    register_metric,
    section_at,
    value_at,
)
from privaudit.reports.crosswalk import MISSING, resolve_pointer

__all__: list[str] = []


# ---------------------------------------------------------------- resolvers


def _dp(doc: Document, m: re.Match[str]) -> list[Observation]:
    field = m.group(1)
    dp = section_at(doc, "/privacy/dp", f"dp.{field}")
    pointer = f"/privacy/dp/{field}"
    if not dp.get("enabled"):
        return [Observation("", math.inf, pointer, note="DP is off (privacy.dp.enabled: false)")]
    if field.startswith("subject_level") and dp.get("subject_level_none"):
        return [Observation("", math.inf, "/privacy/dp/subject_level_none",
                            note=f"no subject-level guarantee: {dp['subject_level_none']}")]
    return [number_at(doc, pointer, "")]


_GATED_MODEL = "federated"


def _attack_items(doc: Document, attack: str,
                  model: str | None = None) -> list[tuple[int, Mapping[str, Any]]]:
    """``attack``'s entries of ``/attacks``: on ``model``; by default the federated model's
    (every model's when the report has no federated model)."""
    attacks = value_at(doc, "/attacks") or []
    items = [(i, a) for i, a in enumerate(attacks) if a.get("attack") == attack]
    if not items:
        raise MetricUnavailable(f"attack {attack!r} is not in the report's attacks (it did not "
                                "run, or was skipped)")
    wanted = model if model is not None else _GATED_MODEL
    chosen = [(i, a) for i, a in items if fnmatchcase(str(a.get("model")), wanted)]
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
        out.append(Observation(str(a.get("model", "")), as_float(a.get("auc"), pointer),
                               pointer, a.get("auc_ci_low"), a.get("auc_ci_high")))
    return out


def _attack_field(doc: Document, m: re.Match[str]) -> list[Observation]:
    attack, field = m.group(1), m.group(2)
    return [Observation(str(a.get("model", "")), as_float(a.get(field), f"/attacks/{i}/{field}"),
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
        out.append(Observation(str(a.get("model", "")), as_float(t.get("value"), "TPR"),
                               f"/attacks/{i}/tpr_at_fpr/{keys[0]}", t.get("ci_low"),
                               t.get("ci_high")))
    return out


def _exposure(doc: Document, m: re.Match[str]) -> list[Observation]:
    field = m.group(1)
    section = section_at(doc, "/exposure", f"attacks.exposure.{field}")
    return [number_at(doc, f"/exposure/{field}", str(section.get("model", "")))]


def _unlearning(doc: Document, m: re.Match[str]) -> list[Observation]:
    selector, path = m.group(1), m.group(2)
    items = value_at(doc, "/unlearning")
    if not items:
        raise MetricUnavailable(f"unlearning.{selector}.{path}: the report has no unlearning "
                                "results (no erasure request was served)")
    out = []
    for i, u in enumerate(items):
        rid, method = str(u.get("request_id", i)), str(u.get("method", ""))
        if not (fnmatchcase(rid, selector) or fnmatchcase(method, selector)):
            continue
        pointer = f"/unlearning/{i}/" + path.replace(".", "/")
        try:  # per target: one that lacks the value is missing only if applies_to picks it
            _require_informative(u, path, f"unlearning.{selector}.{path}")
            value = resolve_pointer(doc, pointer)
            point = as_float(None if value is MISSING else value, pointer)
        except MetricUnavailable as exc:
            out.append(Observation(f"{rid}/{method}", math.nan, pointer, unavailable=str(exc)))
            continue
        low, high = (resolve_pointer(doc, f"{pointer}_ci_{b}") for b in ("low", "high"))
        out.append(Observation(f"{rid}/{method}", point, pointer,
                               None if low is MISSING else low,
                               None if high is MISSING else high))
    if not out:
        raise MetricUnavailable(f"unlearning.{selector}.{path}: no request or method matches "
                                f"{selector!r}")
    return out


#: unlearning fields whose test is the forget-vs-held-out comparison (``forget.informative``)
_POWERED = ("forget.privleak", "forget.mia_auc", "ulira_auc", "robustness.")


def _floor_words(floor: Any) -> str:
    """``±N%``, or why there is no floor (PrivLeak undefined: the oracle's forget AUC is 1)."""
    return f"±{floor:.0f}%" if floor is not None else "no bound (PrivLeak is undefined)"


def _require_informative(u: Mapping[str, Any], path: str, metric: str) -> None:
    """A gate on an erasure test that could not have failed is evidence incomplete (exit 4)."""
    f = u.get("forget") or {}
    who = f"request {u.get('request_id')} ({u.get('method')})"
    if path.startswith(_POWERED) and f.get("informative") is False:
        raise MetricUnavailable(
            f"{metric}: NOT INFORMATIVE for {who}: {f.get('n_records')} forget and "
            f"{f.get('n_nonmembers')} held-out records can show PrivLeak beyond "
            f"{_floor_words(f.get('privleak_floor'))} only, so not even total memorisation "
            f"could be told from retraining (at least {f.get('records_needed')} records "
            "needed)")
    floor = f.get("ks_pvalue_floor")
    if path.startswith("forget.ks_pvalue") and floor is not None and floor > 0.05:
        raise MetricUnavailable(
            f"{metric}: NOT INFORMATIVE for {who}: with {f.get('n_records')} forget records "
            f"the KS test cannot give p below {floor:.2g}")


_OFF_VALUES = {"security_bits": 0.0, "max_abs_error": 0.0}


def _secagg(doc: Document, m: re.Match[str]) -> list[Observation]:
    field = m.group(1)
    section = section_at(doc, "/secure_aggregation", f"secure_aggregation.{field}")
    pointer = f"/secure_aggregation/{field}"
    if not section.get("enabled") and field in _OFF_VALUES:
        return [Observation("", _OFF_VALUES[field], pointer,
                            note="secure aggregation is off (enabled: false)")]
    return [number_at(doc, pointer, "")]


def _dp_audit(doc: Document, m: re.Match[str]) -> list[Observation]:
    field = m.group(1)
    audit = section_at(doc, "/dp_audit", f"dp_audit.{field}")
    if field in ("epsilon_lower_bound", "violation") and audit.get("informative") is False:
        raise MetricUnavailable(
            f"dp_audit.{field}: the DP audit is NOT INFORMATIVE (it can show at most ε ≥ "
            f"{audit.get('max_provable_epsilon', float('nan')):.3g}, the claim is "
            f"{audit.get('claimed_epsilon', float('nan')):.3g}): it could not have failed, so "
            "it is no evidence either way")
    return [number_at(doc, f"/dp_audit/{field}", "")]


def _utility(doc: Document, m: re.Match[str]) -> list[Observation]:
    section_at(doc, "/utility", "utility")
    if m.group(1) is None:
        return [number_at(doc, "/utility/value", "")]
    model = m.group(1)
    return [number_at(doc, f"/utility/per_model/{model.replace('~', '~0').replace('/', '~1')}",
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
                has_ci=True, description="AUC of a membership-inference attack on one model "
                "(a glob: attacks.rmia.oracle/*.auc, attacks.loss.*.auc for every model)")
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
