"""summary.md: the verdict in a few lines of Markdown, for a CI job summary or a pull request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privaudit.reports.html import RenderContext, prepare_document

_ICON = {"PASS": "✅", "FAIL": "❌", "WARN": "⚠️", "NOT INFORMATIVE": "❔", "NOT EVALUATED": "⬜"}


#: characters that open inline Markdown (emphasis, code, links, tables, strikethrough); the
#: text is never at the start of a line, where #, -, + and digits would matter
_MARKDOWN_PUNCTUATION = "\\`*_[]|~"
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def _text(value: Any) -> str:
    r"""``value`` as literal text on one line: inline Markdown punctuation backslash-escaped,
    HTML characters as entities. Names and titles come from the user's config, and a GitHub
    job summary renders HTML: ``<img src=x onerror=...>`` in a run name must arrive as text.

    >>> _text("<b>x</b> | *y*")
    '&lt;b&gt;x&lt;/b&gt; \\| \\*y\\*'
    """
    text = " ".join(str(value).split())
    text = "".join("\\" + ch if ch in _MARKDOWN_PUNCTUATION else ch for ch in text)
    return "".join(_HTML.get(ch, ch) for ch in text)


def _tpr_text(key: str, t: Mapping[str, Any]) -> str:
    """``TPR@1% FPR 4.0% [2.1, 6.5]``, or ``TPR@0.1% FPR not estimable (≤ 6.5%)``."""
    head = f"TPR@{100 * float(key):g}% FPR"
    if t.get("value") is None:
        return f"{head} not estimable (≤ {100 * t['ci_high']:.1f}%)"
    return f"{head} {100 * t['value']:.1f}% [{100 * t['ci_low']:.1f}, {100 * t['ci_high']:.1f}]"


def _cell(text: Any) -> str:
    return _text(text)


def _strongest_attacks(attacks: list[Mapping[str, Any]]) -> list[str]:
    """One line per attacked model: its strongest attack (highest AUC); the rest is in the
    report's attack table."""
    strongest: dict[str, Mapping[str, Any]] = {}
    for a in attacks:
        if a["model"] not in strongest or a["auc"] > strongest[a["model"]]["auc"]:
            strongest[a["model"]] = a
    if not strongest:
        return []
    lines = ["- Membership inference, the strongest attack on each model (all "
             f"{len(attacks)} attack × model results are in the report):"]
    for model, a in strongest.items():
        tprs = ", ".join(_tpr_text(k, t) for k, t in sorted(a.get("tpr_at_fpr", {}).items(),
                                                             key=lambda kv: -float(kv[0])))
        lines.append(f"  - {_text(model)}: {_text(a['attack'])} AUC {a['auc']:.3f}; {tprs}")
    return lines


def render_summary(report: Mapping[str, Any], context: RenderContext | None = None) -> str:
    """A short Markdown verdict: status, one row per control, headline numbers, integrity."""
    doc, derived = prepare_document(report)
    context = context or RenderContext()
    verdict = doc["verdict"]
    run = doc["run"]
    lines = [
        f"## privaudit: {_text(doc['title'])} — **{verdict['status'].upper()}**",
        "",
        f"Run {_text(run['name'])} · report `{doc['report_id']}` · {doc['created_at']}",
        "",
        verdict["summary"] + (" (computed at render time)" if "verdict" in derived else ""),
        "",
        "| control | status | why |",
        "| --- | --- | --- |",
    ]
    for c in verdict["controls"]:
        lines.append(f"| {_cell(c['title'])} | {_ICON.get(c['status'], '')} {c['status']} "
                     f"| {_cell(c['reason'])} |")
    utility = doc.get("utility") or {}
    lines += ["", f"- Utility: {utility.get('metric')} {utility.get('value', float('nan')):.3f}"]
    lines += _strongest_attacks(doc.get("attacks") or [])
    rows = doc.get("crosswalk") or []
    if rows:
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        lines.append("- Regulatory crosswalk: " + ", ".join(f"{n} {s.lower()}"
                                                          for s, n in counts.items()))
    lines.append(f"- Report sha256: `{doc.get('report_sha256') or 'not recorded'}`")
    signing = context.signing
    lines.append(f"- Signed: {signing.algorithm} key `{signing.fingerprint}`" if signing
                 else "- Signed: no (manifest.json only)")
    for fmt, note in context.renderings.items():
        lines.append(f"- {fmt}: {note}")
    return "\n".join(lines) + "\n"
