"""The one-run audit judged against Gaussian trade-off curves, and the Gaussian estimate.

**f-DP one-run bound** (Mahloujifar, Melis, Chaudhuri, "Auditing f-Differential Privacy in
One Run", ICML 2025, arXiv:2410.22235). The experiment is Steinke et al.'s (m canaries, each
included with probability ½; c' guesses fixed from the scores, c of them correct), but the
null hypothesis is a whole trade-off curve instead of one (ε, δ) pair, which is far tighter
when many guesses are made. Their bound for guessing games with abstentions (the recursive
numerical procedure of their Section 5: "empirical privacy with a cap on the number of
guesses") decides whether c correct out of c' guesses can happen with probability above τ
under a mechanism whose k-ary "inverse blow-up" is g (k = 2 for membership): with
t = τ·c'/m, start at r_c = t·c/c', h_c = t·(c' − c)/c' and for i = c−1, …, 0

    h_i = max(h_{i+1}, (k − 1)·g(r_{i+1})),    r_i = r_{i+1} + i/(c' − i) · (h_i − h_{i+1});

the observation is possible at level τ iff r_0 + h_0 ≤ c'/m. For μ-GDP (Dong, Roth, Su 2019),
the curve DP-SGD converges to under composition, g(x) = Φ(Φ⁻¹(x) − μ). μ_LB is the largest
μ under which the observation is impossible: with probability ≥ 1 − τ the training is not
μ-GDP for any μ < μ_LB. It is read as ε at the run's δ through the GDP privacy profile
δ(ε) = Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2) — the paper's "empirical privacy".

**Gaussian estimate** (Andrew, Kairouz, Oh, Oprea, McMahan, Suriyakumar, "One-shot Empirical
Privacy Estimation for Federated Learning", ICLR 2024): fit one normal to the included
canaries' scores and one to the excluded ones; μ̂ = (mean_in − mean_out) / pooled SD (the
standardised mean difference), with the large-sample normal interval of Hedges & Olkin
(1985); ε̂ = ε(μ̂, δ). An estimate, not a proof: it assumes the scores are Gaussian.

Golden values (τ = 0.05, every guess correct, δ = 1e-5):

>>> round(fdp_mu_lower_bound(m=1000, guesses=100, correct=100), 3)
1.226
>>> round(fdp_epsilon_lower_bound(m=1000, guesses=100, correct=100, delta=1e-5), 2)
5.55
>>> round(fdp_epsilon_lower_bound(m=1000, guesses=100, correct=90, delta=1e-5), 2)
2.46
>>> round(gdp_epsilon(1.0, 1e-5), 3)
4.377
>>> round(gdp_mu(4.377, 1e-5), 3)
1.0
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

from privaudit.attacks.dp_audit import fewest_reaching
from privaudit.core.errors import ConfigError, DataError

__all__ = [
    "GaussianEstimate",
    "fdp_canaries_needed",
    "fdp_ceiling",
    "fdp_epsilon_lower_bound",
    "fdp_mu_lower_bound",
    "gaussian_estimate",
    "gdp_delta",
    "gdp_epsilon",
    "gdp_mu",
]

_MU_MAX = 60.0


def gdp_delta(mu: float, epsilon: float) -> float:
    """δ(ε) of μ-GDP (Dong, Roth, Su 2019, Corollary 2.13)."""
    if mu <= 0:
        return 0.0
    return float(ndtr(-epsilon / mu + mu / 2) - math.exp(epsilon) * ndtr(-epsilon / mu - mu / 2))


def gdp_epsilon(mu: float, delta: float) -> float:
    """The smallest ε with μ-GDP ⇒ (ε, δ)-DP; 0 for μ = 0."""
    if not 0.0 < delta < 1.0:
        raise ConfigError(f"delta must lie in (0, 1) to read μ-GDP as ε; got {delta!r}")
    if mu <= 0 or gdp_delta(mu, 0.0) <= delta:
        return 0.0
    hi = 1.0
    while gdp_delta(mu, hi) > delta:
        hi *= 2
    return float(brentq(lambda e: gdp_delta(mu, e) - delta, 0.0, hi, xtol=1e-10))


def gdp_mu(epsilon: float, delta: float) -> float:
    """The μ whose GDP profile gives exactly (ε, δ): how a claimed ε reads as a Gaussian curve."""
    if epsilon <= 0:
        return 0.0
    return float(brentq(lambda m: gdp_delta(m, epsilon) - delta, 1e-9, _MU_MAX, xtol=1e-12))


def _possible(mu: np.ndarray, m: int, guesses: int, correct: int, tau: float) -> np.ndarray:
    """For each μ: can ``correct`` of ``guesses`` happen with probability > τ under μ-GDP?"""
    t = tau * guesses / m
    r = np.full(mu.shape, t * correct / guesses)
    h = np.full(mu.shape, t * (guesses - correct) / guesses)
    for i in range(correct - 1, -1, -1):
        with np.errstate(divide="ignore"):
            h_new = np.maximum(h, ndtr(ndtri(np.clip(r, 0.0, 1.0)) - mu))
        r = r + i / (guesses - i) * (h_new - h)
        h = h_new
    return np.asarray(r + h <= guesses / m, dtype=bool)


def _check(m: int, guesses: int, correct: int, p_value: float) -> None:
    problems = []
    if not (isinstance(guesses, int | np.integer) and 1 <= guesses <= m):
        problems.append(f"guesses must be an integer in [1, m={m}]; got {guesses!r}")
    elif not (isinstance(correct, int | np.integer) and 0 <= correct <= guesses):
        problems.append(f"correct must be an integer in [0, guesses={guesses}]; got {correct!r}")
    if not 0.0 < p_value < 1.0:
        problems.append(f"p_value must lie in (0, 1); got {p_value!r}")
    if problems:
        raise ConfigError("; ".join(problems), problems)


def fdp_mu_lower_bound(*, m: int, guesses: int, correct: int, p_value: float = 0.05) -> float:
    """μ_LB: the largest μ under which ``correct`` of ``guesses`` is impossible at level
    ``p_value`` (0 when it is possible under every μ > 0). Bisection on a grid of 64 μ's at a
    time, 1e-6 apart at the end."""
    _check(m, guesses, correct, p_value)
    lo, hi = 0.0, _MU_MAX
    if _possible(np.array([1e-9]), m, guesses, correct, p_value)[0]:
        return 0.0
    while hi - lo > 1e-6:
        grid = np.linspace(lo, hi, 66)[1:-1]
        ok = _possible(grid, m, guesses, correct, p_value)
        first = int(np.argmax(ok)) if ok.any() else grid.size
        lo = float(grid[first - 1]) if first > 0 else lo
        hi = float(grid[first]) if first < grid.size else hi
    return lo


def fdp_epsilon_lower_bound(*, m: int, guesses: int, correct: int, delta: float,
                            p_value: float = 0.05) -> float:
    """ε_LB at ``delta`` of the f-DP one-run bound: ε(μ_LB, δ)."""
    return gdp_epsilon(fdp_mu_lower_bound(m=m, guesses=guesses, correct=correct,
                                          p_value=p_value), delta)


def fdp_ceiling(*, m: int, guesses: int, delta: float, p_value: float = 0.05) -> float:
    """The most the f-DP bound can print with these counts: every guess correct.

    >>> round(fdp_ceiling(m=200, guesses=20, delta=1e-5), 2)   # the old input-canary design
    2.89
    """
    return fdp_epsilon_lower_bound(m=m, guesses=guesses, correct=guesses, delta=delta,
                                   p_value=p_value)


def fdp_canaries_needed(claimed: float, *, guess_fraction: float, delta: float,
                        p_value: float = 0.05, limit: int = 1_000_000) -> int | None:
    """The fewest canaries whose f-DP ceiling (``guess_fraction`` of them guessed, all
    correctly) exceeds ``claimed``; None when no count up to ``limit`` does.

    >>> fdp_canaries_needed(8.0, guess_fraction=0.1, delta=1e-5)
    5066
    """
    def reaches(m: int) -> bool:
        g = max(1, round(guess_fraction * m))
        return fdp_ceiling(m=m, guesses=g, delta=delta, p_value=p_value) > claimed

    return fewest_reaching(reaches, start=8, limit=limit)


class GaussianEstimate(BaseModel):
    """μ̂ and ε̂ of the Gaussian fit, each with its interval at ``confidence``."""

    model_config = ConfigDict(frozen=True)
    mu: float
    mu_low: float
    mu_high: float
    epsilon: float
    epsilon_low: float
    epsilon_high: float
    confidence: float
    n_included: int
    n_excluded: int


def gaussian_estimate(scores: ArrayLike, included: ArrayLike, *, delta: float,
                      confidence: float = 0.95) -> GaussianEstimate:
    """The Gaussian estimate of μ and ε from canary scores (see the module docstring).

    >>> rng = np.random.default_rng(0)
    >>> inc = rng.random(4000) < 0.5
    >>> est = gaussian_estimate(rng.normal(size=4000) + 2.0 * inc, inc, delta=1e-5)
    >>> est.mu_low < 2.0 < est.mu_high
    True
    """
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(included, dtype=bool)
    if s.shape != y.shape or s.ndim != 1 or not np.all(np.isfinite(s)):
        raise DataError("scores must be finite and 1-D, the same length as included")
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 < 2 or n0 < 2:
        raise DataError(f"the Gaussian estimate needs >= 2 included and excluded canaries; "
                        f"got {n1} and {n0}")
    pooled = math.sqrt(((n1 - 1) * s[y].var(ddof=1) + (n0 - 1) * s[~y].var(ddof=1))
                       / (n1 + n0 - 2))
    if pooled == 0:
        raise DataError("the canary scores have no spread: the Gaussian estimate is undefined")
    d = float((s[y].mean() - s[~y].mean()) / pooled)
    se = math.sqrt((n1 + n0) / (n1 * n0) + d * d / (2 * (n1 + n0)))
    z = float(ndtri(0.5 + confidence / 2))
    lo, hi = d - z * se, d + z * se
    return GaussianEstimate(
        mu=d, mu_low=lo, mu_high=hi, epsilon=gdp_epsilon(max(d, 0.0), delta),
        epsilon_low=gdp_epsilon(max(lo, 0.0), delta),
        epsilon_high=gdp_epsilon(max(hi, 0.0), delta), confidence=confidence,
        n_included=n1, n_excluded=n0,
    )
