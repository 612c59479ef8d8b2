"""The verdict: one plain-language line per control, and the report's overall status.

A control (registered with :func:`register_control`, run in that order) maps the report
document (report.json without verdict, crosswalk and own hash) to a
:class:`~privaudit.reports.schema.Control`: a status, a reason a reader who is not an ML
engineer can follow, and the JSON pointers of its evidence. An absent section is evidence not
collected: NOT EVALUATED, never PASS. An empty one (``unlearning: []``) or nothing to check
(no DP claim) is NOT EVALUATED with ``applicable: false``: the report stays complete.

Overall status (``verdict.status``): ``fail`` if any control fails; else ``incomplete`` if an
applicable control was not evaluated or is NOT INFORMATIVE (its test could not reach the
claim, so it could not have failed: never a PASS); else ``warn`` if any warns; else ``pass``.

Thresholds (module constants, stated in every reason that uses them):

* membership inference — FAIL when an attack's AUC is above :data:`AUC_FAIL` with 95%
  confidence (its CI's lower end), or its TPR at a measurable FPR is above
  :data:`TPR_FAIL_FACTOR` × that FPR with confidence; WARN when either is merely above chance
  with confidence; NOT INFORMATIVE (never PASS) when, with nothing failing, the TPR at a
  configured FPR is not estimable (fewer than 10/FPR held-out non-members);
* DP — WARN when ε > :data:`WEAK_EPSILON`; FAIL when δ is not below 1/N; the DP audit FAILs
  when a rigorous lower bound exceeds the claim, WARNs when only the Gaussian estimate does;
* unlearning — FAIL when a method is flagged under- or over-unlearned (PrivLeak beyond
  ``unlearning.verify.privleak_band``, AUC gap beyond its noise margin); WARN on a utility
  collapse or a method's own flag; NOT INFORMATIVE when a request is too small to show even
  total memorisation. The oracle is never judged.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privaudit.core.provenance import report_content_hash
from privaudit.reports import controls as _controls  # noqa: F401  (registers the controls)
from privaudit.reports.attack_words import AUC_FAIL as AUC_FAIL
from privaudit.reports.attack_words import TPR_FAIL_FACTOR as TPR_FAIL_FACTOR
from privaudit.reports.control_registry import CONTROLS as CONTROLS
from privaudit.reports.control_registry import DERIVED_FIELDS as DERIVED_FIELDS
from privaudit.reports.control_registry import WEAK_EPSILON as WEAK_EPSILON
from privaudit.reports.control_registry import control as control
from privaudit.reports.control_registry import get_control as get_control
from privaudit.reports.control_registry import register_control as register_control
from privaudit.reports.control_registry import registered_controls as registered_controls
from privaudit.reports.crosswalk import evaluate_crosswalk
from privaudit.reports.schema import Report, Verdict


def headline(reason: str, limit: int = 240) -> str:
    """A control's reason in one line for the report's decision table (drawn at render time):
    whole when short, else its first sentence or first '; '-finding and '…' (the full reason
    is in the report's annex).

    >>> headline("A is low; B is high.", limit=12)
    'A is low …'
    """
    if len(reason) <= limit:
        return reason
    cut = reason.find(". ")
    if 0 < cut < limit:
        return reason[:cut + 1] + " …"
    item = reason.split("; ", 1)[0]
    return _clip(item, limit) + ("" if len(item) > limit else " …")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


# ---------------------------------------------------------------- verdict


def evaluation_document(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report without the fields derived from it (verdict, crosswalk, own hash)."""
    return {k: v for k, v in report.items() if k not in DERIVED_FIELDS}


def evaluate_verdict(doc: Mapping[str, Any]) -> Verdict:
    """Run every registered control over ``doc`` (a parsed report.json)."""
    doc = evaluation_document(doc)
    controls = [fn(doc) for fn in CONTROLS.values()]
    statuses = [c.status for c in controls]
    unevaluated = [c for c in controls
                   if c.status in ("NOT EVALUATED", "NOT INFORMATIVE") and c.applicable]
    if "FAIL" in statuses:
        status = "fail"
    elif unevaluated:
        status = "incomplete"
    elif "WARN" in statuses:
        status = "warn"
    else:
        status = "pass"
    counts = {s: statuses.count(s)
              for s in ("FAIL", "WARN", "PASS", "NOT INFORMATIVE", "NOT EVALUATED")}
    parts = [f"{n} {s.lower()}" for s, n in counts.items() if n]
    summary = f"{len(controls)} controls: " + ", ".join(parts)
    if unevaluated:
        summary += " (not evaluated or not informative: " + ", ".join(
            c.id for c in unevaluated) + ")"
    return Verdict(status=status, summary=summary, controls=controls)  # type: ignore[arg-type]


def finalize_report(report: Report) -> Report:
    """The report with its verdict, crosswalk and own hash (``report_sha256``) filled in."""
    doc = evaluation_document(report.model_dump(mode="json"))
    verdict = evaluate_verdict(doc)
    crosswalk = evaluate_crosswalk(doc, verdict=verdict.model_dump(mode="json"))
    final = report.model_copy(update={"verdict": verdict, "crosswalk": crosswalk,
                                      "report_sha256": None})
    digest = report_content_hash(final.model_dump(mode="json"))
    return final.model_copy(update={"report_sha256": digest})
