"""Two-Gaussian simulation of the TPR-at-FPR interval: members N(d, 1), non-members N(0, 1),
so the true TPR at FPR f is 1 − Φ(Φ⁻¹(1 − f) − d). Shared by the coverage test and
``benchmarks/bench_metrics_coverage.py`` (the larger table)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from privaudit.attacks.metrics import clopper_pearson, rate_at_fpr


@dataclass(frozen=True)
class Coverage:
    n: int
    d: float
    fpr: float
    true_tpr: float
    covered: float  # share of runs whose reported interval holds the true TPR
    covered_fixed: float  # the same for Clopper–Pearson at the measured threshold alone
    mean_estimate: float


def true_tpr(d: float, fpr: float) -> float:
    return float(norm.sf(norm.isf(fpr) - d))


def simulate(n: int, d: float, fpr: float, runs: int, seed: int = 0) -> Coverage:
    rng = np.random.default_rng(seed)
    truth = true_tpr(d, fpr)
    hits = hits_fixed = 0
    estimates = []
    for _ in range(runs):
        rate = rate_at_fpr(rng.normal(d, 1, n), rng.normal(0, 1, n), fpr)
        hits += rate.ci_low <= truth <= rate.ci_high
        low, high = clopper_pearson(round(rate.value * n), n, 0.95)
        hits_fixed += low <= truth <= high
        estimates.append(rate.value)
    return Coverage(n, d, fpr, truth, hits / runs, hits_fixed / runs, float(np.mean(estimates)))
