"""TPR at an FPR the non-members cannot resolve (fewer than 10/FPR of them): no point, only a
valid upper bound, checked by simulation (two Gaussians, tests/attacks/coverage_sim.py)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from privaudit.attacks import metrics, resolution
from privaudit.attacks.metrics import evaluate_scores, rate_at_fpr
from privaudit.attacks.resolution import min_resolvable_fpr
from tests.attacks.coverage_sim import true_tpr

RUNS = 200


def test_100_nonmembers_make_the_tpr_at_0_1_percent_fpr_not_estimable_with_no_point() -> None:
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(2, 1, 100), rng.normal(0, 1, 100)
    rate = rate_at_fpr(pos, neg, 0.001)
    assert rate.value is None and rate.estimable is False
    assert rate.reason == (f"100 non-members resolve FPRs down to 0.1 only (FPR 0.001 needs at "
                           f"least 10000): the TPR there is at most {rate.ci_high:.3g}")
    assert 0.0 <= rate.ci_low <= rate.ci_high < 1.0  # a bound that rules something out
    m = evaluate_scores(np.r_[pos, neg], np.r_[np.ones(100), np.zeros(100)], n_bootstrap=10)
    assert m.min_resolvable_fpr == pytest.approx(0.1) == min_resolvable_fpr(100)
    assert m.tpr_at_fpr["0.001"] == rate


@pytest.mark.parametrize("d", [1.0, 2.0])
def test_the_upper_bound_of_a_not_estimable_tpr_covers_the_true_tpr_in_95_percent_of_runs(
    d: float,
) -> None:
    rng = np.random.default_rng(int(10 * d))
    truth = true_tpr(d, 0.001)  # 0.018 (d = 1), 0.138 (d = 2)
    highs = []
    for _ in range(RUNS):
        rate = rate_at_fpr(rng.normal(d, 1, 100), rng.normal(0, 1, 100), 0.001)
        assert rate.value is None
        highs.append(rate.ci_high)
    assert np.mean(np.array(highs) >= truth) >= 0.95, (truth, sorted(highs)[:20])
    # and it is a bound, not the vacuous 1 that would cover trivially
    assert np.mean(highs) < 0.7, np.mean(highs)


def test_the_bound_is_never_above_the_bound_at_the_smallest_fpr_the_nonmembers_resolve() -> None:
    # TPR is monotone in the FPR: the bound at 0.1% must not exceed the one at 10% (= 10/100)
    rng = np.random.default_rng(4)
    for _ in range(50):
        pos, neg = rng.normal(1.5, 1, 100), rng.normal(0, 1, 100)
        low_fpr = rate_at_fpr(pos, neg, 0.001)
        resolved = rate_at_fpr(pos, neg, min_resolvable_fpr(100))
        assert resolved.estimable and resolved.value is not None
        assert low_fpr.ci_high <= resolved.ci_high


def test_ten_thousand_nonmembers_resolve_0_1_percent_fpr_and_give_a_point() -> None:
    rng = np.random.default_rng(5)
    rate = rate_at_fpr(rng.normal(2, 1, 500), rng.normal(0, 1, 10_000), 0.001)
    assert rate.estimable and rate.reason is None and rate.value is not None
    assert rate.ci_low <= rate.value <= rate.ci_high


@pytest.mark.parametrize("module", [metrics, resolution])
def test_the_worked_numbers_in_the_docstrings_hold(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0
