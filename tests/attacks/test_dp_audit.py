"""Empirical ε lower bounds: golden values, monotonicity, soundness on a known mechanism."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import binom

from privaudit.attacks.dp_audit import (
    count_correct,
    guesses_from_scores,
    max_tpr_under_dp,
    one_run_epsilon_lower_bound,
    roc_epsilon_lower_bound,
)
from privaudit.core.errors import ConfigError


@pytest.mark.parametrize(("r", "expected"), [(100, 3.49), (1000, 5.81)])
def test_one_run_bound_matches_the_papers_check_values(r, expected) -> None:
    eps = one_run_epsilon_lower_bound(r=r, v=r, m=1000, delta=0.0, p_value=0.05)
    assert eps == pytest.approx(expected, abs=0.01)


def test_one_run_bound_is_where_the_binomial_tail_reaches_the_p_value() -> None:
    eps = one_run_epsilon_lower_bound(r=200, v=170, m=1000)
    q = math.exp(eps) / (1 + math.exp(eps))
    assert binom.sf(169, 200, q) == pytest.approx(0.05, abs=1e-6)


def test_one_run_bound_grows_with_the_number_of_guesses() -> None:
    bounds = [one_run_epsilon_lower_bound(r=r, v=r, m=5000) for r in (10, 50, 100, 500, 5000)]
    assert all(a < b for a, b in itertools.pairwise(bounds))


def test_one_run_bound_grows_with_the_fraction_correct() -> None:
    bounds = [one_run_epsilon_lower_bound(r=100, v=v, m=1000) for v in range(50, 101, 5)]
    assert bounds[0] == 0.0  # half right is what guessing achieves
    assert all(a <= b for a, b in itertools.pairwise(bounds))
    assert bounds[-1] > bounds[-2] > bounds[-3] > 0


def test_delta_and_a_stricter_p_value_only_lower_the_bound() -> None:
    base = one_run_epsilon_lower_bound(r=500, v=450, m=1000)
    assert one_run_epsilon_lower_bound(r=500, v=450, m=1000, delta=1e-5) < base
    assert one_run_epsilon_lower_bound(r=500, v=450, m=1000, p_value=0.01) < base


def test_one_run_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ConfigError, match=r"v \(correct guesses\)"):
        one_run_epsilon_lower_bound(r=10, v=11, m=100)
    with pytest.raises(ConfigError, match=r"m \(canaries\)"):
        one_run_epsilon_lower_bound(r=10, v=10, m=5)
    with pytest.raises(ConfigError, match="p_value"):
        one_run_epsilon_lower_bound(r=10, v=10, m=100, p_value=5)


def test_guesses_take_the_top_and_bottom_scores_and_abstain_in_between() -> None:
    scores = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2])
    g = guesses_from_scores(scores, k_pos=2, k_neg=2)
    assert g.tolist() == [0, -1, 1, 0, 1, -1]
    assert count_correct(g, [True, False, True, True, False, False]) == (4, 3)
    with pytest.raises(ConfigError, match="k_pos"):
        guesses_from_scores(scores, k_pos=4, k_neg=3)


def test_roc_bound_with_bonferroni_on_perfect_separation_matches_the_closed_form() -> None:
    scores = np.r_[np.linspace(10, 11, 500), np.linspace(0, 1, 500)]
    y = np.r_[np.ones(500), np.zeros(500)]
    res = roc_epsilon_lower_bound(scores, y, delta=0.0, threshold_selection="bonferroni")
    # 1000 thresholds, alpha = 0.05 split over 2 rates x 1000: zero errors of 500 gives a
    # one-sided Clopper-Pearson upper bound 1 - alpha'^(1/500) on both rates
    upper = 1 - (0.05 / 2000) ** (1 / 500)
    assert res.fpr == 0 and res.fnr == 0
    assert res.epsilon == pytest.approx(math.log((1 - upper) / upper))


def test_roc_bound_chooses_its_threshold_on_a_held_out_half_by_default() -> None:
    scores = np.r_[np.linspace(10, 11, 500), np.linspace(0, 1, 500)]
    y = np.r_[np.ones(500), np.zeros(500)]
    res = roc_epsilon_lower_bound(scores, y, delta=0.0)
    upper = 1 - 0.025 ** (1 / 250)  # the best a half of 250 + 250 can certify
    assert res.threshold_selection == "split" and res.n_members == 250
    assert 3.5 < res.epsilon <= math.log((1 - upper) / upper) + 1e-9


def test_roc_bound_stays_below_the_true_epsilon_of_randomized_response() -> None:
    # members answer 1 with probability e/(1+e), non-members with 1/(1+e): exactly 1-DP
    violations, bounds = 0, []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        y = np.r_[np.ones(1000, bool), np.zeros(1000, bool)]
        p = np.where(y, math.e / (1 + math.e), 1 / (1 + math.e))
        scores = (rng.random(2000) < p).astype(float)
        eps = roc_epsilon_lower_bound(scores, y, delta=0.0, seed=seed).epsilon
        violations += eps > 1.0
        bounds.append(eps)
    assert violations <= 1  # 95% confidence: a sound bound rarely exceeds the truth
    assert np.mean(bounds) > 0.6  # and it has power


def test_the_privacy_region_is_the_diagonal_at_epsilon_zero() -> None:
    f = np.linspace(0, 1, 11)
    np.testing.assert_allclose(max_tpr_under_dp(f, epsilon=0.0, delta=0.0), f)
    assert max_tpr_under_dp([0.0], epsilon=2.0, delta=0.01).tolist() == [0.01]
