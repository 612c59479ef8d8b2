"""ROC metrics: values, intervals checked against scipy computed independently, warnings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from privaudit.attacks.metrics import clopper_pearson, evaluate_scores
from privaudit.core.errors import ConfigError, DataError, EvidenceIncomplete


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (17, 250), (1, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_clopper_pearson_matches_scipys_exact_binomial_interval(k, n, confidence) -> None:
    ref = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    assert clopper_pearson(k, n, confidence) == pytest.approx((ref.low, ref.high), abs=1e-12)


def _separated(n_neg: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    # non-members 0.000 .. 0.999; 30 members above all of them, 5 between the top two
    # non-members (0.998 < 0.9985 < 0.999), 65 members low.
    neg = np.arange(n_neg) / n_neg
    pos = np.r_[np.full(30, 2.0), np.full(5, 0.9985), np.linspace(0.0, 0.5, 65)]
    return np.r_[pos, neg], np.r_[np.ones(pos.size), np.zeros(neg.size)]


def test_tpr_at_fpr_takes_the_best_threshold_whose_fpr_does_not_exceed_the_target() -> None:
    scores, y = _separated()
    m = evaluate_scores(scores, y, n_bootstrap=20)
    # FPR <= 0.01 allows ten false positives (down to 0.990): threshold 0.9985 catches 35
    assert m.tpr_at_fpr["0.01"].value == pytest.approx(0.35)
    # FPR <= 0.001 would allow one false positive: 1000 non-members cannot resolve it, so
    # there is no point (it would read 0.35, set by the top non-member alone), only bounds.
    # The interval brackets the true threshold by order statistics of the non-members: the
    # count above the 0.1%-threshold is Binomial(1000, 0.001) ≈ Poisson(1), P(≥ 5) = 0.004 ≤
    # α/4 but P(≥ 4) = 0.019, so the low bracket is the 5th-highest non-member (0.995, 35
    # members at or above it; upper Clopper–Pearson at α/4 one-sided); P(none above) = 0.37
    # > α/4, so no high bracket exists and the lower bound is 0.
    ref = binomtest(35, 100).proportion_ci(confidence_level=0.975, method="exact")
    ci = m.tpr_at_fpr["0.001"]
    assert ci.value is None and not ci.estimable and "resolve FPRs down to 0.01 only" in (
        ci.reason or "")
    assert (ci.ci_low, ci.ci_high) == pytest.approx((0.0, ref.high))
    assert m.n_members == 100 and m.n_nonmembers == 1000 and m.min_resolvable_fpr == 0.01
    assert len(m.warnings) == 1 and "FPR=0.001" in m.warnings[0]  # 1000 < 10 / 0.001


def test_auc_equals_scikit_learns_with_ties_and_its_interval_contains_it() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.4
    scores = np.round(rng.normal(size=300) + 0.8 * y, 1)  # many ties
    m = evaluate_scores(scores, y, n_bootstrap=200)
    assert m.auc == pytest.approx(roc_auc_score(y, scores))
    assert m.auc_ci_low < m.auc < m.auc_ci_high
    assert 0.05 < m.auc_ci_high - m.auc_ci_low < 0.25


def test_random_scores_have_an_auc_interval_that_contains_chance() -> None:
    rng = np.random.default_rng(1)
    m = evaluate_scores(rng.normal(size=600), rng.random(600) < 0.5)
    assert m.auc_ci_low < 0.5 < m.auc_ci_high


def test_the_small_sample_warning_fires_below_ten_over_fpr_non_members() -> None:
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(100), np.zeros(999)]
    m = evaluate_scores(rng.normal(size=1099), y, n_bootstrap=20)
    assert m.warnings == [
        "fewer than 10/FPR non-members (have 999, need 1000): TPR at FPR=0.01 is not estimable",
        "fewer than 10/FPR non-members (have 999, need 10000): TPR at FPR=0.001 is not "
        "estimable",
    ]
    y2 = np.r_[np.ones(100), np.zeros(1000)]
    m2 = evaluate_scores(rng.normal(size=1100), y2, fprs=(0.01,), n_bootstrap=20)
    assert m2.warnings == []


def test_perfect_separation_gives_auc_one_and_balanced_accuracy_one() -> None:
    m = evaluate_scores([5.0, 4.0, 1.0, 0.0], [1, 1, 0, 0], n_bootstrap=20)
    assert m.auc == 1.0 and m.balanced_accuracy == 1.0
    # two non-members resolve no FPR below 1: no point at 1%, and its bound rules out nothing
    assert m.tpr_at_fpr["0.01"].value is None and m.tpr_at_fpr["0.01"].ci_high == 1.0


def test_swapping_the_sign_convention_would_be_caught() -> None:
    m = evaluate_scores([0.0, 1.0, 4.0, 5.0], [1, 1, 0, 0], n_bootstrap=20)
    assert m.auc == 0.0  # members scoring LOWER is an AUC of 0, not 1


def test_roc_for_plotting_has_at_most_200_monotone_points_with_a_band() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(5000) < 0.5
    m = evaluate_scores(rng.normal(size=5000) + y, y, n_bootstrap=10)
    roc = m.roc
    assert 2 <= len(roc.fpr) <= 200 and len(roc.tpr) == len(roc.fpr)
    assert np.all(np.diff(roc.fpr) > 0) and np.all(np.diff(roc.tpr) >= 0)
    assert all(lo <= t <= hi for lo, t, hi in zip(roc.tpr_ci_low, roc.tpr, roc.tpr_ci_high,
                                                   strict=True))
    assert roc.fpr[0] > 0  # plottable on log axes


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=6, max_size=40), st.integers(0, 2**16))
def test_metrics_depend_only_on_the_ranking_of_scores(raw, seed) -> None:
    scores = np.array(raw, dtype=float)
    y = np.random.default_rng(seed).permutation(np.arange(scores.size) % 2)
    a = evaluate_scores(scores, y, n_bootstrap=10, seed=seed)
    b = evaluate_scores(np.exp(scores) * 3 + 1, y, n_bootstrap=10, seed=seed)
    assert a.auc == pytest.approx(b.auc)
    assert a.tpr_at_fpr == b.tpr_at_fpr
    assert a.auc_ci_low <= a.auc <= a.auc_ci_high


def test_bad_arguments_are_refused_with_the_parameter_named() -> None:
    with pytest.raises(ConfigError, match="confidence"):
        evaluate_scores([1.0, 0.0], [1, 0], confidence=95)
    with pytest.raises(ConfigError, match="fprs"):
        evaluate_scores([1.0, 0.0], [1, 0], fprs=(1.0,))
    with pytest.raises(DataError, match="non-finite"):
        evaluate_scores([np.nan, 0.0], [1, 0])
    with pytest.raises(EvidenceIncomplete, match="members and non-members"):
        evaluate_scores([1.0, 0.0], [1, 1])
