"""Two-Gaussian simulation of the TPR-at-FPR interval: members N(d, 1), non-members N(0, 1),
so the true TPR at FPR f is 1 − Φ(Φ⁻¹(1 − f) − d). Shared by the coverage test and
``benchmarks/bench_metrics_coverage.py`` (the larger table)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from privaudit.attacks.metrics import clopper_pearson, rate_at_fpr
from privaudit.attacks.resolution import resolves


@dataclass(frozen=True)
class Coverage:
    n: int
    d: float
    fpr: float
    true_tpr: float
    covered: float  # share of runs whose reported interval holds the true TPR
    covered_fixed: float  # the same for Clopper–Pearson at the measured threshold alone
    mean_estimate: float  # of the measured point (the report gives none when not estimable)
    estimable: bool  # whether n non-members resolve fpr (else the report states a bound only)


def true_tpr(d: float, fpr: float) -> float:
    return float(norm.sf(norm.isf(fpr) - d))


def simulate(n: int, d: float, fpr: float, runs: int, seed: int = 0) -> Coverage:
    rng = np.random.default_rng(seed)
    truth = true_tpr(d, fpr)
    hits = hits_fixed = 0
    estimates = []
    for _ in range(runs):
        pos, neg = rng.normal(d, 1, n), rng.normal(0, 1, n)
        rate = rate_at_fpr(pos, neg, fpr)
        hits += rate.ci_low <= truth <= rate.ci_high
        point = measured_tpr(pos, neg, fpr)
        assert rate.value is None or abs(rate.value - point) < 1e-12
        low, high = clopper_pearson(round(point * n), n, 0.95)
        hits_fixed += low <= truth <= high
        estimates.append(point)
    return Coverage(n, d, fpr, truth, hits / runs, hits_fixed / runs, float(np.mean(estimates)),
                    resolves(n, fpr))


def measured_tpr(pos: np.ndarray, neg: np.ndarray, fpr: float) -> float:
    """The members' rate above the best threshold whose measured FPR is ≤ ``fpr`` (continuous
    scores): k = ⌊fpr·m⌋ false positives allowed, the threshold just above the (k+1)-th
    highest non-member."""
    k = int(np.floor(fpr * neg.size + 1e-9))
    if k >= neg.size:
        return 1.0
    return float(np.mean(pos > np.sort(neg)[::-1][k]))
