"""The verdict: each control's status and the overall status, on hand-made reports."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from privaudit.audit.errors import ConfigError
from privaudit.reports.schema import Control
from privaudit.reports.verdict import evaluate_verdict, register_control
from tests.reports.samples import full_document, sample_report


def _control(doc: dict[str, Any], control_id: str) -> Control:
    return next(c for c in evaluate_verdict(doc).controls if c.id == control_id)


def _doc(**changes: Any) -> dict[str, Any]:
    return copy.deepcopy(full_document(**changes))


def test_a_fully_evidenced_report_with_good_numbers_passes() -> None:
    verdict = evaluate_verdict(full_document())
    assert verdict.status == "pass"
    assert {c.status for c in verdict.controls} == {"PASS"}


def test_missing_sections_make_the_verdict_incomplete_never_pass() -> None:
    verdict = evaluate_verdict(sample_report(nonmembers=20000).model_dump(mode="json"))
    assert verdict.status == "incomplete"
    missing = {c.id for c in verdict.controls if c.status == "NOT EVALUATED"}
    assert {"dp-guarantee", "dp-audit", "secure-aggregation"} <= missing
    assert "dp-guarantee" in verdict.summary


def test_an_attack_that_finds_members_at_low_fpr_fails_the_membership_control() -> None:
    doc = sample_report(auc=0.58, tpr=0.2, ci=(0.15, 0.25), nonmembers=20000)
    control = _control(doc.model_dump(mode="json"), "membership-inference")
    assert control.status == "FAIL"
    assert "1.0% false alarms" in control.reason and "members" in control.reason


def test_too_few_nonmembers_to_measure_low_fpr_warns_and_says_how_many_are_needed() -> None:
    control = _control(sample_report(nonmembers=400).model_dump(mode="json"),
                       "membership-inference")
    assert control.status == "WARN"
    assert "cannot be measured" in control.reason and "10000" in control.reason


def test_dp_off_warns_and_makes_the_dp_audit_not_applicable() -> None:
    doc = _doc(privacy={"dp": {"enabled": False}})
    doc.pop("dp_audit")
    assert _control(doc, "dp-guarantee").status == "WARN"
    audit = _control(doc, "dp-audit")
    assert audit.status == "NOT EVALUATED" and not audit.applicable
    assert evaluate_verdict(doc).status == "warn"  # not incomplete


def test_delta_not_below_one_over_n_fails() -> None:
    doc = _doc()
    doc["privacy"]["dp"]["delta_vs_1_over_n"]["delta_below_1_over_n"] = False
    assert _control(doc, "dp-guarantee").status == "FAIL"


def test_a_dp_audit_that_beats_the_claimed_epsilon_fails() -> None:
    doc = _doc()
    doc["dp_audit"].update(epsilon_lower_bound=5.0, violation=True)
    control = _control(doc, "dp-audit")
    assert control.status == "FAIL" and "broken" in control.reason
    assert evaluate_verdict(doc).status == "fail"


def test_encryption_below_128_bits_fails_and_no_encryption_warns() -> None:
    doc = _doc()
    doc["secure_aggregation"]["security_bits"] = 0
    assert _control(doc, "secure-aggregation").status == "FAIL"
    doc["secure_aggregation"] = {"enabled": False}
    assert _control(doc, "secure-aggregation").status == "WARN"


@pytest.mark.parametrize(("privleak", "status"), [(2.0, "PASS"), (-15.0, "WARN"),
                                                  (-40.0, "FAIL")])
def test_privleak_outside_its_band_warns_then_fails(privleak: float, status: str) -> None:
    doc = _doc()
    doc["unlearning"][0]["forget"]["privleak"] = privleak
    assert _control(doc, "erasure").status == status


def test_no_erasure_request_is_not_applicable_rather_than_missing() -> None:
    control = _control(_doc(unlearning=[]), "erasure")
    assert control.status == "NOT EVALUATED" and not control.applicable


def test_a_model_no_better_than_chance_warns_on_utility() -> None:
    doc = _doc()
    doc["utility"]["value"] = 0.25  # four labels
    assert _control(doc, "utility").status == "WARN"


def test_a_duplicate_control_id_is_refused() -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_control("utility", lambda doc: _control(dict(doc), "utility"))
