"""Regulatory crosswalk: clauses map to report.json pointers; no evidence → NOT EVALUATED."""

from __future__ import annotations

from typing import Any

import pytest

from privaudit.core.errors import ConfigError
from privaudit.reports.crosswalk import (
    CLAUSES,
    MISSING,
    evaluate_crosswalk,
    resolve_pointer,
)

MINIMAL = {"schema_version": "1.0.0", "report_id": "r-1", "created_at": "2025-01-01T00:00:00Z"}
DP = {"enabled": True, "epsilon": 8.0, "delta": 1e-5, "unit_of_privacy": "record",
      "accountant": "prv", "noise_multiplier": 1.1, "max_grad_norm": 1.0,
      "sample_rate": 0.01, "steps": 500}
FULL: dict[str, Any] = {
    **MINIMAL,
    "run": {"config_sha256": "ab", "clients": 4},
    "utility": {"metric": "accuracy", "value": 0.9},
    "privacy": {"dp": DP},
    "secure_aggregation": {"enabled": True, "scheme": "ckks", "threat_model": ["x"]},
    "attacks": [{"attack": "lira", "auc": 0.51}],
    "dp_audit": {"method": "one-run", "epsilon_lower_bound": 0.4},
    "unlearning": [{"request_id": "h1", "method": "sisa"}],
    "data": {"source": "synthetic", "roles": [{"role": "train", "n_records": 400}]},
    "provenance": {"python": "3.11", "data_sha256": {"train": "cd"}},
    "artifacts": [{"path": "report.html", "sha256": "ef"}],
}
DESIGN_SECTIONS = {"schema_version", "report_id", "created_at", "run", "verdict", "utility", "data",
                   "privacy", "secure_aggregation", "attacks", "dp_audit", "unlearning",
                   "crosswalk", "provenance", "artifacts"}


def _row(rows: list[Any], framework: str, clause: str) -> Any:
    return next(r for r in rows if r.framework == framework and r.clause == clause)


def test_every_required_clause_has_a_row() -> None:
    clauses = {(c.framework, c.clause) for c in CLAUSES}
    for required in [("GDPR", "Art. 17"), ("GDPR", "Art. 25"), ("GDPR", "Art. 35(7)(a)"),
                     ("GDPR", "Art. 35(7)(b)"), ("GDPR", "Art. 35(7)(c)"),
                     ("GDPR", "Art. 35(7)(d)"), ("EU AI Act", "Art. 10"),
                     ("EU AI Act", "Annex IV 2(g)")]:
        assert required in clauses
    frameworks = {c.framework for c in CLAUSES}
    assert {"EDPB", "NIST SP 800-226", "UK ICO"} <= frameworks
    assert any(c.clause.startswith("Art. 15") for c in CLAUSES if c.framework == "EU AI Act")


def test_every_evidence_pointer_points_into_a_design_md_section() -> None:
    for clause in CLAUSES:
        for pointer in clause.evidence:
            assert pointer.split("/")[1] in DESIGN_SECTIONS, (clause.clause, pointer)


CONTROL_IDS = ("membership-inference", "dp-guarantee", "dp-audit", "secure-aggregation",
               "erasure", "utility", "traceability")


def _verdict(**statuses: str) -> dict[str, Any]:
    """Every control PASS unless given (``dp_audit="FAIL"``; ``x=None``: not applicable)."""
    controls = []
    for cid in CONTROL_IDS:
        status = statuses.get(cid.replace("-", "_"), "PASS")
        controls.append({"id": cid, "status": status or "NOT EVALUATED",
                         "applicable": status is not None})
    return {"status": "pass", "controls": controls}


def test_every_clause_is_judged_by_registered_verdict_controls() -> None:
    from privaudit.reports.verdict import registered_controls

    assert set(CONTROL_IDS) == set(registered_controls())
    for clause in CLAUSES:
        assert clause.controls and set(clause.controls) <= set(CONTROL_IDS), clause.clause


def test_a_minimal_report_is_not_evaluated_and_never_supported() -> None:
    rows = evaluate_crosswalk(MINIMAL, verdict=_verdict())
    assert len(rows) == len(CLAUSES)
    assert {r.status for r in rows} <= {"NOT EVALUATED", "INCONCLUSIVE"}
    art17 = _row(rows, "GDPR", "Art. 17")
    assert art17.status == "NOT EVALUATED" and "/unlearning: missing" in art17.reason
    assert _row(rows, "EU AI Act", "Annex IV 2(g)").status == "INCONCLUSIVE"  # only created_at


def test_evidence_present_without_a_verdict_is_never_supported() -> None:
    rows = evaluate_crosswalk(FULL)
    assert {r.status for r in rows} == {"INCONCLUSIVE"}
    assert all("no applicable control" in r.reason for r in rows)


def test_a_full_report_whose_controls_passed_is_supported_everywhere() -> None:
    rows = evaluate_crosswalk(FULL, verdict=_verdict())
    assert [r.clause for r in rows if r.status != "SUPPORTED"] == []
    art17 = _row(rows, "GDPR", "Art. 17")
    assert "erasure" in art17.reason and art17.controls == ["erasure"]


def test_a_failed_control_contradicts_exactly_the_clauses_it_judges() -> None:
    rows = evaluate_crosswalk(FULL, verdict=_verdict(dp_audit="FAIL"))
    contradicted = {r.clause for r in rows if r.status == "CONTRADICTED"}
    assert contradicted == {c.clause for c in CLAUSES if "dp-audit" in c.controls}
    assert all("dp-audit" in r.reason for r in rows if r.status == "CONTRADICTED")
    assert {r.status for r in rows if r.clause not in contradicted} == {"SUPPORTED"}


@pytest.mark.parametrize("status", ["WARN", "NOT INFORMATIVE", "NOT EVALUATED"])
def test_a_control_that_did_not_pass_leaves_its_clauses_inconclusive(status: str) -> None:
    rows = evaluate_crosswalk(FULL, verdict=_verdict(erasure=status))
    art17 = _row(rows, "GDPR", "Art. 17")
    assert art17.status == "INCONCLUSIVE" and f"erasure {status}" in art17.reason


def test_a_not_applicable_control_neither_supports_nor_contradicts() -> None:
    rows = evaluate_crosswalk(FULL, verdict=_verdict(secure_aggregation=None))
    assert _row(rows, "GDPR", "Art. 25").status == "SUPPORTED"  # dp-guarantee passed
    assert _row(rows, "GDPR", "Art. 17").status == "SUPPORTED"


def test_a_disabled_section_is_no_evidence_even_when_its_values_are_filled_in() -> None:
    report = {**FULL, "privacy": {"dp": {**DP, "enabled": False}},
              "secure_aggregation": {"enabled": False, "threat_model": ["x"]}}
    rows = evaluate_crosswalk(report, verdict=_verdict())
    art25 = _row(rows, "GDPR", "Art. 25")
    assert art25.status == "NOT EVALUATED"
    assert "/privacy/dp: section disabled" in art25.reason
    nist = _row(rows, "NIST SP 800-226", "Evaluating DP guarantees")
    assert nist.status == "INCONCLUSIVE"  # the DP audit ran; the DP card is disabled
    assert "/privacy/dp/epsilon: section disabled" in nist.reason


@pytest.mark.parametrize(("value", "gap"), [(None, "null"), ([], "empty"), ({}, "empty")])
def test_null_or_empty_evidence_is_not_evaluated(value: Any, gap: str) -> None:
    rows = evaluate_crosswalk({**FULL, "unlearning": value}, verdict=_verdict())
    art17 = _row(rows, "GDPR", "Art. 17")
    assert art17.status == "NOT EVALUATED" and f"/unlearning: {gap}" in art17.reason


def test_one_missing_section_makes_a_row_inconclusive_and_names_it() -> None:
    report = {k: v for k, v in FULL.items() if k != "secure_aggregation"}
    art25 = _row(evaluate_crosswalk(report, verdict=_verdict()), "GDPR", "Art. 25")
    assert art25.status == "INCONCLUSIVE" and "/secure_aggregation: missing" in art25.reason


def test_rows_carry_the_design_md_crosswalk_keys() -> None:
    dumped = evaluate_crosswalk(FULL)[0].model_dump()
    assert {"framework", "clause", "requirement", "evidence", "status"} <= dumped.keys()
    assert all(p.startswith("/") for p in dumped["evidence"])


RFC6901_DOC = {"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4,
               "i\\j": 5, 'k"l': 6, " ": 7, "m~n": 8}


@pytest.mark.parametrize(("pointer", "expected"), [
    ("", RFC6901_DOC), ("/foo", ["bar", "baz"]), ("/foo/0", "bar"), ("/", 0), ("/a~1b", 1),
    ("/c%d", 2), ("/e^f", 3), ("/g|h", 4), ("/i\\j", 5), ('/k"l', 6), ("/ ", 7), ("/m~0n", 8),
])
def test_pointer_resolver_follows_the_rfc_6901_examples(pointer: str, expected: Any) -> None:
    assert resolve_pointer(RFC6901_DOC, pointer) == expected


@pytest.mark.parametrize("pointer", ["/foo/2", "/foo/-", "/foo/01", "/nope", "/foo/0/x"])
def test_pointer_resolver_returns_missing_for_absent_elements(pointer: str) -> None:
    assert resolve_pointer(RFC6901_DOC, pointer) is MISSING


@pytest.mark.parametrize("pointer", ["foo", "/~2", "/a~"])
def test_malformed_pointers_are_a_config_error(pointer: str) -> None:
    with pytest.raises(ConfigError, match="pointer"):
        resolve_pointer(RFC6901_DOC, pointer)
