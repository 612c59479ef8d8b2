"""Self-contained HTML (Jinja2): styles inline, figures as data URIs, no external requests.

The page is drawn from the report *document* (the parsed report.json), so any report this
privaudit can read renders — older minor versions included (a verdict or crosswalk missing
from an older report is computed for display and marked as such). The sections and their
order come from :mod:`privaudit.reports.sections`; this module only lays them out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError

from privaudit.reports.crosswalk import MISSING, evaluate_crosswalk, evidence_gap, resolve_pointer
from privaudit.reports.figures import plots
from privaudit.reports.figures.unlearning import timeline_figure, unlearning_figures
from privaudit.reports.glossary import TERMS, epsilon_words, link_terms, odds_text
from privaudit.reports.schema import AttackResult, DpAuditResult, Exposure, Report, RoundUtility
from privaudit.reports.sections import (
    Section,
    claimed_fields,
    registered_sections,
    section_of,
)
from privaudit.reports.verdict import (
    WEAK_EPSILON,
    evaluate_verdict,
    evaluation_document,
    headline,
)


@dataclass(frozen=True)
class SigningInfo:
    """Who signs (or signed) the run's manifest; ``signed_at`` is None before signing."""

    fingerprint: str
    algorithm: str = "Ed25519"
    signed_at: str | None = None


@dataclass(frozen=True)
class RenderContext:
    """What the page says about itself beyond report.json: signature and other renderings."""

    signing: SigningInfo | None = None
    renderings: dict[str, str] = field(default_factory=dict)


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if x != 0 and (abs(x) < 10 ** -digits or abs(x) >= 1e6):
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}"


def _sig(x: Any, digits: int = 4) -> str:
    if isinstance(x, float) and math.isfinite(x):
        return f"{x:.{digits}g}"
    return _num(x)


def _label(key: str) -> str:
    return str(key).replace("_", " ")


def _kind(value: Any) -> str:
    """How the generic renderer draws a value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "hash" if len(value) == 64 and all(c in "0123456789abcdef" for c in value) \
            else "text"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list):
        if value and all(isinstance(v, Mapping) for v in value):
            return "records"
        return "list"
    return "text"


def _columns(rows: list[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    return cols


def _fpr_keys(attacks: list[Mapping[str, Any]]) -> list[str]:
    """Every FPR key of the attacks' ``tpr_at_fpr``, largest FPR first."""
    keys = {k for a in attacks for k in a.get("tpr_at_fpr") or {}}
    return sorted(keys, key=float, reverse=True)


def _grouped_warnings(attacks: list[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """Each distinct attack warning once, with the 'attack on model' results it applies to."""
    groups: dict[str, list[str]] = {}
    for a in attacks:
        for w in a.get("warnings") or []:
            groups.setdefault(w, []).append(f"{a.get('attack')} on {a.get('model')}")
    return list(groups.items())


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("privaudit.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
    )
    env.filters["pct"] = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"
    env.filters["num"] = _num
    env.filters["sig"] = _sig
    env.filters["label"] = _label
    env.filters["kind"] = _kind
    env.filters["columns"] = _columns
    env.filters["fpr_keys"] = _fpr_keys
    env.filters["terms"] = link_terms
    env.filters["headline"] = headline
    env.filters["grouped_warnings"] = _grouped_warnings
    env.filters["with_prefix"] = lambda rows, key, prefix: [
        r for r in rows if str(r.get(key, "")).startswith(prefix)]
    env.globals["terms"] = TERMS
    env.globals["epsilon_words"] = epsilon_words
    env.globals["odds_text"] = odds_text
    env.globals["weak_epsilon"] = f"{WEAK_EPSILON:g}"
    env.globals["section_of"] = section_of
    env.globals["ptr"] = lambda doc, p: (None if (v := resolve_pointer(doc, p)) is MISSING
                                         else v)
    return env


def _attacks(doc: Mapping[str, Any]) -> list[AttackResult]:
    out = []
    for a in doc.get("attacks") or []:
        try:
            out.append(AttackResult.model_validate(a))
        except ValidationError:
            continue  # drawn in the table all the same; only the figure skips it
    return out


def _dp_audit(doc: Mapping[str, Any]) -> DpAuditResult | None:
    try:
        return DpAuditResult.model_validate(doc["dp_audit"]) if doc.get("dp_audit") else None
    except ValidationError:
        return None


def _exposure(doc: Mapping[str, Any]) -> Exposure | None:
    try:
        return Exposure.model_validate(doc["exposure"]) if doc.get("exposure") else None
    except ValidationError:
        return None


def _rounds(doc: Mapping[str, Any]) -> list[RoundUtility]:
    try:
        return [RoundUtility.model_validate(r)
                for r in (doc.get("utility") or {}).get("per_round") or []]
    except ValidationError:
        return []


@dataclass(frozen=True)
class _Block:
    section: Section
    number: int
    first_in_group: bool
    value: Any
    gap: str | None


def _blocks(doc: Mapping[str, Any]) -> list[_Block]:
    groups: list[str] = []
    blocks = []
    for s in registered_sections():
        first = s.group not in groups
        if first:
            groups.append(s.group)
        value = resolve_pointer(doc, s.pointers[0]) if s.pointers else None
        # a disabled section ("enabled": false) is data to show, not an absence
        absent = [(p, g) for p in s.pointers if (g := evidence_gap(doc, p)) is not None
                  and not g.startswith("section disabled")]
        gap = None if s.always or len(absent) < len(s.pointers) else \
            "; ".join(f"{p}: {g}" for p, g in absent)
        blocks.append(_Block(s, len(groups), first, None if value is MISSING else value, gap))
    return blocks


def prepare_document(document: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The document to draw and notes on what was derived at render time (older reports)."""
    doc = dict(document)
    notes = []
    if not doc.get("verdict"):
        doc["verdict"] = evaluate_verdict(doc).model_dump(mode="json")
        notes.append("verdict")
    if not doc.get("crosswalk"):
        doc["crosswalk"] = [r.model_dump(mode="json")
                            for r in evaluate_crosswalk(evaluation_document(doc),
                                                        verdict=doc["verdict"])]
        notes.append("crosswalk")
    return doc, notes


def render_html(report: Report | Mapping[str, Any], context: RenderContext | None = None) -> str:
    """The report as one self-contained HTML page (deterministic for the same input)."""
    raw = report.model_dump(mode="json") if isinstance(report, Report) else report
    doc, derived = prepare_document(raw)
    context = context or RenderContext()
    attacks = _attacks(doc)
    figures = {
        "roc": plots.roc_figure(attacks),
        "utility": plots.utility_figure(_rounds(doc),
                                        str((doc.get("utility") or {}).get("metric", ""))),
        "dp_region": plots.privacy_region_figure(_dp_audit(doc)),
        "exposure": plots.exposure_figure(_exposure(doc)),
        "unlearning": unlearning_figures(doc.get("unlearning")),
        "timeline": timeline_figure(doc.get("unlearning")),
    }
    extra = {k: v for k, v in doc.items() if k not in claimed_fields()}
    template = _env().get_template("report.html.j2")
    return template.render(doc=doc, blocks=_blocks(doc), figures=figures, extra=extra,
                           derived=derived, ctx=context)
