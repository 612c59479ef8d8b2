"""A declared DP claim tested from below (``attacks/declared_dp.py``), as a statistic: a true
claim is almost never contradicted, a false one is, and a claim the sample cannot reach is
not informative."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from privaudit.attacks.declared_dp import test_declared_claim as check_claim
from privaudit.attacks.metrics import evaluate_scores
from privaudit.attacks.results import AttackResult
from privaudit.mechanisms.dp.results import DeclaredDP

N = 3000  # members and non-members: TPR at 1% FPR is estimable (needs 1,000)


def _attack(mu: float, seed: int) -> AttackResult:
    """An attack whose member scores are N(μ, 1) and non-member scores N(0, 1): exactly what
    a μ-GDP mechanism allows at best."""
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(mu, 1, N), rng.normal(0, 1, N)]
    m = evaluate_scores(scores, np.r_[np.ones(N), np.zeros(N)].astype(bool),
                        fprs=(0.1, 0.01), n_bootstrap=10, seed=seed)
    return AttackResult(attack="loss", model="external", auc=m.auc, tpr_at_fpr=m.tpr_at_fpr,
                        n_members=m.n_members, n_nonmembers=m.n_nonmembers)


def _gdp_delta(mu: float, eps: float) -> float:
    """δ(ε) of μ-GDP (Dong, Roth, Su 2019): the (ε, δ) claims a μ-GDP mechanism satisfies."""
    return float(norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2))


def test_a_true_claim_is_not_contradicted_by_the_strongest_attack_it_allows() -> None:
    mu, eps = 1.0, 1.0
    claim = DeclaredDP(epsilon=eps, delta=_gdp_delta(mu, eps))
    contradicted = sum(check_claim(claim, [_attack(mu, s)]).contradicted for s in range(20))
    assert contradicted <= 1  # the union bound promises ≤ 5% of seeds


def test_a_false_claim_is_contradicted_on_every_seed() -> None:
    claim = DeclaredDP(epsilon=0.1, delta=1e-5)  # far below what μ = 1 leaks
    for seed in range(5):
        check = check_claim(claim, [_attack(1.0, seed)])
        assert check.informative and check.contradicted
        assert any(r.contradicts and r.tpr_ci_low > r.max_tpr_allowed for r in check.rows)


def test_a_claim_the_sample_cannot_reach_is_not_informative_and_says_how_many_it_needs() -> None:
    attack = _attack(3.0, 0)  # a strong attack...
    check = check_claim(DeclaredDP(epsilon=8.0, delta=1e-5), [attack])
    # ...cannot contradict ε = 8, which allows TPR 1 at every FPR above e^-8 ≈ 0.03%
    assert not check.contradicted and not check.informative
    assert check.nonmembers_needed is not None and check.nonmembers_needed > N
