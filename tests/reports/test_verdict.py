"""The verdict: each control's status and the overall status, on hand-made reports."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from privaudit.core.errors import ConfigError
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


def test_too_few_nonmembers_to_measure_low_fpr_is_not_informative_and_says_how_many_are_needed(
) -> None:
    doc = sample_report(nonmembers=400).model_dump(mode="json")
    control = _control(doc, "membership-inference")
    assert control.status == "NOT INFORMATIVE"
    assert evaluate_verdict(doc).status == "incomplete"  # never a PASS
    assert "not estimable" in control.reason and "10000" in control.reason


def test_a_tpr_the_nonmembers_cannot_resolve_is_called_not_estimable_with_its_upper_bound(
) -> None:
    # 2000 non-members resolve 1% (20 false positives) but not 0.1% (2)
    doc = sample_report(nonmembers=2000, ci=(0.0, 0.03)).model_dump(mode="json")
    assert doc["attacks"][0]["tpr_at_fpr"]["0.001"]["value"] is None
    control = _control(doc, "membership-inference")
    assert control.status == "NOT INFORMATIVE"
    assert ("could not have shown an attack that finds members at 0.1% false alarms: the TPR "
            "there is not estimable, as 2000 held-out records resolve FPRs down to 0.5% only "
            "(0.1% needs at least 10000); the TPR there is at most 1.5%.") in control.reason


def test_a_schema_0_4_report_with_a_point_on_too_few_nonmembers_is_not_estimable_too() -> None:
    doc = sample_report(nonmembers=2000).model_dump(mode="json")
    doc["attacks"][0]["tpr_at_fpr"]["0.001"] = {"value": 0.4, "ci_low": 0.3, "ci_high": 0.5}
    control = _control(doc, "membership-inference")
    assert control.status == "NOT INFORMATIVE" and "not estimable" in control.reason  # no FAIL


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


def _flag(name: str) -> dict[str, Any]:
    return {"name": name, "value": -40.0, "threshold": -10.0,
            "parameter": "unlearning.verify.privleak_band", "message": f"{name}: fired"}


def test_a_privleak_point_beyond_the_band_within_the_noise_passes_stating_what_it_can_show(
) -> None:
    doc = _doc()
    doc["unlearning"][0]["forget"]["privleak"] = -40.0  # no flag: within the noise margin
    control = _control(doc, "erasure")
    assert control.status == "PASS" and "±74%" in control.reason and "±10" in control.reason


@pytest.mark.parametrize(("flag", "status"), [("under_unlearned", "FAIL"),
                                              ("over_unlearned", "FAIL"),
                                              ("utility_collapse", "WARN")])
def test_a_verification_flag_fails_or_warns_the_erasure_control(flag: str, status: str) -> None:
    doc = _doc()
    doc["unlearning"][0]["verification_flags"] = [_flag(flag)]
    doc["unlearning"][0]["flags"] = [f"{flag}: fired"]
    control = _control(doc, "erasure")
    assert control.status == status and control.reason.count(f"{flag}: fired") == 1


def test_a_request_too_small_to_show_anything_is_not_informative_and_the_verdict_incomplete(
) -> None:
    doc = _doc()
    doc["unlearning"][0]["forget"].update(n_records=1, informative=False, privleak_floor=161.0)
    control = _control(doc, "erasure")
    assert control.status == "NOT INFORMATIVE" and "at least 3" in control.reason
    assert evaluate_verdict(doc).status == "incomplete"


def test_an_oracle_whose_forget_auc_is_one_leaves_privleak_undefined_and_not_informative(
) -> None:
    """Found by the family conformance run: one forget record that the oracle ranks above
    every held-out record gives PrivLeak no room; its floor is None (was inf, which no JSON
    can hold) and the reason says why, not a number."""
    doc = _doc()
    doc["unlearning"][0]["forget"].update(n_records=1, informative=False, privleak=None,
                                          privleak_floor=None, mia_auc_oracle=1.0)
    control = _control(doc, "erasure")
    assert control.status == "NOT INFORMATIVE" and "undefined" in control.reason
    from privaudit.gate.resolvers import _floor_words

    assert _floor_words(None).startswith("no bound")


def test_the_oracle_is_the_yardstick_and_is_never_judged() -> None:
    doc = _doc()
    oracle = copy.deepcopy(doc["unlearning"][0]) | {
        "method": "oracle", "verification_flags": [_flag("utility_collapse")],
        "flags": ["utility_collapse: fired"]}
    doc["unlearning"].append(oracle)
    assert _control(doc, "erasure").status == "PASS"
    doc["unlearning"] = [oracle]
    control = _control(doc, "erasure")
    assert control.status == "NOT EVALUATED" and not control.applicable


def test_no_erasure_request_is_not_applicable_rather_than_missing() -> None:
    control = _control(_doc(unlearning=[]), "erasure")
    assert control.status == "NOT EVALUATED" and not control.applicable


def test_a_model_no_better_than_chance_warns_on_utility_in_a_report_without_baselines() -> None:
    doc = _doc()
    doc["utility"]["value"] = 0.25  # four labels
    doc["utility"]["baselines"] = {}  # as a report of schema < 0.11 has
    assert _control(doc, "utility").status == "WARN"


def test_a_duplicate_control_id_is_refused() -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_control("utility", lambda doc: _control(dict(doc), "utility"))


def _dp_doc(**dp: Any) -> dict[str, Any]:
    doc = _doc()
    doc["privacy"]["dp"] |= dp
    return doc


def test_the_subject_level_guarantee_is_stated_with_its_delta_and_subject_size() -> None:
    doc = _dp_doc(subject_level_epsilon=18.7, subject_level_delta=1e-5, max_records_per_subject=2)
    reason = _control(doc, "dp-guarantee").reason
    assert "one data subject with all 2 of their records is protected at ε = 18.7, δ = 1e-05" \
        in reason


def test_a_subject_level_bound_with_delta_of_one_is_said_to_be_no_guarantee() -> None:
    none = "group privacy over 4 units gives δ = 1 ≥ 1, which rules out nothing"
    for doc in (_dp_doc(subject_level_epsilon=None, subject_level_none=none),
                _dp_doc(subject_level_epsilon=31.6, subject_level_delta=1.0)):
        reason = _control(doc, "dp-guarantee").reason
        assert "protected at ε = 31.6" not in reason and ("rules out nothing" in reason
                                                          or "no guarantee (δ ≥ 1)" in reason)


def test_a_subject_level_epsilon_without_its_delta_is_never_printed() -> None:
    reason = _control(_dp_doc(subject_level_epsilon=9.6, subject_level_delta=None),
                      "dp-guarantee").reason
    assert "9.6" not in reason


def test_a_dp_audit_that_cannot_reach_the_claim_is_not_informative_and_the_verdict_incomplete(
) -> None:
    doc = _doc()
    doc["dp_audit"] |= {"claimed_epsilon": 7.9, "epsilon_lower_bound": 1.82,
                        "max_provable_epsilon": 1.82, "informative": False,
                        "canaries_needed": None, "canaries_needed_all_guessed": 11040}
    verdict = evaluate_verdict(doc)
    audit = next(c for c in verdict.controls if c.id == "dp-audit")
    assert audit.status == "NOT INFORMATIVE"
    assert "at most ε ≥ 1.82" in audit.reason and "11040 canaries" in audit.reason
    assert verdict.status == "incomplete" and "dp-audit" in verdict.summary


def _external_doc(check: dict[str, Any]) -> dict[str, Any]:
    doc = _doc()
    doc.pop("privacy", None)
    doc.pop("dp_audit", None)
    doc["run"]["kind"] = "external"
    doc["declared_dp"] = {"claim": {"epsilon": 1.0, "delta": 1e-5,
                                    "unit_of_privacy": "record"}, **check}
    return doc


def test_a_declared_claim_an_attack_exceeds_fails_the_dp_audit_of_an_external_model() -> None:
    row = {"attack": "loss", "model": "external", "fpr": "0.01", "fpr_upper": 0.015,
           "tpr_ci_low": 0.30, "max_tpr_allowed": 0.04, "contradicts": True}
    control = _control(_external_doc({"rows": [row], "contradicted": True,
                                      "informative": True}), "dp-audit")
    assert control.status == "FAIL" and "contradicted" in control.reason


def test_a_declared_claim_no_attack_exceeds_passes_only_when_the_test_could_reach_it() -> None:
    row = {"attack": "loss", "model": "external", "fpr": "0.01", "fpr_upper": 0.015,
           "tpr_ci_low": 0.01, "max_tpr_allowed": 0.04, "contradicts": False}
    reachable = _external_doc({"rows": [row], "contradicted": False, "informative": True})
    assert _control(reachable, "dp-audit").status == "PASS"
    blind = _external_doc({"rows": [], "contradicted": False, "informative": False,
                           "nonmembers_needed": 1000})
    control = _control(blind, "dp-audit")
    assert control.status == "NOT INFORMATIVE" and "1,000" in control.reason
    assert _control(blind, "dp-guarantee").status == "NOT EVALUATED"
