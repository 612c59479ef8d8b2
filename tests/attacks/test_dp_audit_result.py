"""From canary scores to the report: pre-registered guesses, both bounds with the run's δ,
the violation, the FAIL control in plain words and the privacy-region figure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from privaudit.audit.config import config_from_dict
from privaudit.audit.stages.dp_audit import dp_audit_result
from privaudit.mechanisms.data.audit_canaries import AuditCanaryPlan, plan_audit_canaries
from privaudit.reports.figures.plots import privacy_region_figure
from privaudit.reports.schema import DpAuditResult
from privaudit.reports.verdict import evaluate_verdict
from tests.conftest import TINY, merge


def _setup(m: int, fraction: float = 0.2) -> tuple[Any, AuditCanaryPlan, np.ndarray]:
    cfg = config_from_dict(merge(TINY, {"attacks": {"dp_audit": {
        "canaries": m, "guesses": {"positive": fraction, "negative": fraction}}}}))
    plan = plan_audit_canaries(m, kind="mislabeled", labels=["a", "b"], vocabulary=[],
                               clients=["c0", "c1"], seed=11)
    # a test peeks at the bits to build scores; the audit itself never does
    return cfg, plan, plan.sealed._bits.copy()


def _one_run(out: DpAuditResult) -> float:
    assert out.one_run_epsilon_lower_bound is not None
    return out.one_run_epsilon_lower_bound


def test_perfect_scores_reproduce_the_golden_one_run_bound() -> None:
    cfg, plan, bits = _setup(250)  # 20% + 20% of 250 = r = 100 guesses
    out = dp_audit_result(cfg, plan, bits.astype(float), claimed_epsilon=None, delta=None)
    assert (out.guesses, out.correct) == (100, 100)
    assert _one_run(out) == pytest.approx(3.49, abs=0.01)
    assert out.epsilon_lower_bound >= _one_run(out)
    assert not out.violation and "empirical leakage lower bound" in out.interpretation


def test_more_correct_guesses_give_a_larger_bound() -> None:
    cfg, plan, bits = _setup(250)
    rng = np.random.default_rng(0)
    bounds = []
    for noise in (3.0, 1.0, 0.3, 0.0):
        scores = bits + noise * rng.standard_normal(bits.size)
        bounds.append(_one_run(dp_audit_result(cfg, plan, scores, claimed_epsilon=None,
                                               delta=None)))
    assert bounds == sorted(bounds) and bounds[-1] > bounds[0]


def test_a_bound_above_the_claim_is_a_violation_and_a_fail_in_plain_words() -> None:
    cfg, plan, bits = _setup(250)
    out = dp_audit_result(cfg, plan, bits.astype(float), claimed_epsilon=1.0, delta=1e-5)
    assert out.violation and out.epsilon_lower_bound > 1.0 and out.delta == 1e-5
    doc = {"privacy": {"dp": {"enabled": True, "epsilon": 1.0}},
           "dp_audit": out.model_dump(mode="json")}
    control = next(c for c in evaluate_verdict(doc).controls if c.id == "dp-audit")
    assert control.status == "FAIL"
    assert "impossible under the claimed guarantee" in control.reason


def test_random_scores_stay_within_a_claim_of_1() -> None:
    cfg, plan, _ = _setup(100)
    scores = np.random.default_rng(3).standard_normal(100)
    out = dp_audit_result(cfg, plan, scores, claimed_epsilon=1.0, delta=1e-5)
    assert not out.violation and out.epsilon_lower_bound <= 1.0


def test_the_privacy_region_figure_is_drawn_with_the_measured_points() -> None:
    cfg, plan, bits = _setup(100)
    out = dp_audit_result(cfg, plan, bits.astype(float), claimed_epsilon=1.0, delta=1e-5)
    assert out.points and all(0 <= p.fpr <= 1 and 0 <= p.tpr <= 1 for p in out.points)
    uri = privacy_region_figure(out)
    assert uri is not None and uri.startswith("data:image/svg+xml;base64,")
    assert privacy_region_figure(None) is None


def test_a_noise_free_training_cannot_pass_an_audit_whose_ceiling_is_below_the_claim() -> None:
    """The default design (200 canaries, 5% + 5% guesses) can never show more than ε ≥ 1.82:
    perfect canary scores, as from a training with no noise at all, against a claim of 7.97
    are NOT INFORMATIVE, never PASS, and the report says what the test would need."""
    cfg, plan, bits = _setup(200, fraction=0.05)
    out = dp_audit_result(cfg, plan, bits.astype(float), claimed_epsilon=7.97, delta=1e-5)
    assert not out.violation and out.informative is False
    assert out.max_provable_epsilon == pytest.approx(2.57, abs=0.2)
    assert out.canaries_needed is None and out.canaries_needed_all_guessed is not None
    assert out.canaries_needed_all_guessed > 10_000
    doc = {"privacy": {"dp": {"enabled": True, "epsilon": 7.97}},
           "dp_audit": out.model_dump(mode="json")}
    verdict = evaluate_verdict(doc)
    control = next(c for c in verdict.controls if c.id == "dp-audit")
    assert control.status == "NOT INFORMATIVE" and "could not have failed" in control.reason
    assert verdict.status in ("incomplete", "fail")


def test_an_audit_whose_ceiling_exceeds_the_claim_stays_informative() -> None:
    cfg, plan, _ = _setup(250)
    scores = np.random.default_rng(3).standard_normal(250)
    out = dp_audit_result(cfg, plan, scores, claimed_epsilon=1.0, delta=1e-5)
    assert out.informative is True and out.max_provable_epsilon > 1.0
    assert out.canaries_needed is None
