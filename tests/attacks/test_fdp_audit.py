"""The f-DP one-run bound and the Gaussian estimate, tested as statistics: the bound refutes a
true μ-GDP claim at most at its level over many simulated audits, beats the ε-DP bound on the
same guesses, and the Gaussian estimate's interval covers the true μ at its confidence."""

from __future__ import annotations

import numpy as np
import pytest

from privaudit.attacks.dp_audit import guesses_from_scores, one_run_epsilon_lower_bound
from privaudit.attacks.fdp_audit import (
    fdp_ceiling,
    fdp_epsilon_lower_bound,
    fdp_mu_lower_bound,
    gaussian_estimate,
    gdp_delta,
    gdp_epsilon,
    gdp_mu,
)
from privaudit.core.errors import ConfigError, DataError


def _audit(rng: np.random.Generator, mu: float, m: int, frac: float) -> tuple[int, int]:
    """One simulated one-run audit of a μ-GDP mechanism: included canaries score N(μ, 1),
    excluded N(0, 1) (the worst case for μ-GDP); the top and bottom ``frac`` are guessed."""
    inc = rng.random(m) < 0.5
    scores = rng.normal(size=m) + mu * inc
    k = round(frac * m)
    g = guesses_from_scores(scores, k, k)
    made = g != 0
    return int(made.sum()), int(np.sum(made & ((g == 1) == inc)))


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0])
def test_fdp_bound_refutes_a_true_gdp_claim_at_most_at_its_level(mu: float) -> None:
    rng = np.random.default_rng(int(mu * 100))
    sims, refuted = 300, 0
    for _ in range(sims):
        r, v = _audit(rng, mu, 1000, 0.05)
        refuted += fdp_mu_lower_bound(m=1000, guesses=r, correct=v) > mu
    # level 0.05; binomial(300, 0.05) exceeds 25 with probability < 0.1%
    assert refuted <= 25, f"μ = {mu}: {refuted}/{sims} audits refuted a true claim"


def test_fdp_bound_is_tight_enough_to_approach_the_true_mu() -> None:
    rng = np.random.default_rng(7)
    lbs = [fdp_mu_lower_bound(m=4000, guesses=r, correct=v)
           for r, v in (_audit(rng, 2.0, 4000, 0.05) for _ in range(20))]
    assert 0.6 * 2.0 < float(np.median(lbs)) <= 2.0


def test_fdp_bound_is_tighter_than_the_eps_dp_bound_on_the_same_guesses() -> None:
    for r, v, m in [(100, 100, 1000), (100, 90, 1000), (600, 560, 6000)]:
        f = fdp_epsilon_lower_bound(m=m, guesses=r, correct=v, delta=1e-5)
        e = one_run_epsilon_lower_bound(r=r, v=v, m=m, delta=1e-5)
        assert f > e, (r, v, m, f, e)


def test_fdp_ceiling_grows_with_canaries_and_reaches_eight_with_6000() -> None:
    ceilings = [fdp_ceiling(m=m, guesses=m // 10, delta=1e-5) for m in (200, 1000, 6000)]
    assert ceilings == sorted(ceilings) and ceilings[-1] > 8.0


def test_gdp_conversions_invert_each_other_and_match_the_profile() -> None:
    for mu in (0.3, 1.0, 1.67, 4.0):
        eps = gdp_epsilon(mu, 1e-5)
        assert gdp_delta(mu, eps) == pytest.approx(1e-5, rel=1e-6)
        assert gdp_mu(eps, 1e-5) == pytest.approx(mu, rel=1e-6)


def test_gaussian_estimate_interval_covers_the_true_mu_at_its_confidence() -> None:
    rng = np.random.default_rng(11)
    sims, covered = 400, 0
    for _ in range(sims):
        inc = rng.random(600) < 0.5
        est = gaussian_estimate(rng.normal(size=600) + 1.5 * inc, inc, delta=1e-5)
        covered += est.mu_low <= 1.5 <= est.mu_high
    # 95% nominal; binomial(400, 0.95) falls below 368 with probability < 0.5%
    assert covered >= 368, f"covered {covered}/{sims}"


def test_bad_counts_and_degenerate_scores_are_named() -> None:
    with pytest.raises(ConfigError, match="correct must be"):
        fdp_mu_lower_bound(m=10, guesses=5, correct=6)
    with pytest.raises(ConfigError, match="guesses must be"):
        fdp_mu_lower_bound(m=10, guesses=11, correct=1)
    with pytest.raises(DataError, match="no spread"):
        gaussian_estimate(np.ones(10), np.arange(10) % 2 == 0, delta=1e-5)
