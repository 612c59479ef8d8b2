"""What an erasure test can show, from its design alone: every PASS must be a test that could
have failed, so each test of ``verify.py`` states its floor and is NOT INFORMATIVE below it.

- **Forget vs held-out AUC** (the LOSS attack, U-LiRA). Under the null — the n forget records
  are like the m never-seen ones — the Mann–Whitney AUC has variance (n + m + 1) / (12 n m)
  (Mann & Whitney 1947; Hanley & McNeil 1982 at AUC = 0.5, where it is largest). The smallest
  departure from 0.5 one model's AUC can show at confidence c is ``auc_floor`` =
  z_{(1+c)/2} times that standard error.
- **PrivLeak** compares two models' AUCs (unlearned vs oracle), each with that sampling error,
  so a difference is significant beyond ``auc_margin`` = z·√2·SE (design-based and
  conservative: the two models score the same records, which only correlates them). PrivLeak =
  (AUC_oracle − AUC_unlearned) / (1 − AUC_oracle) × 100, so the smallest |PrivLeak| it can
  show is ``privleak_floor`` = margin / (1 − AUC_oracle) × 100 (a design-based floor; the
  flags themselves use the paired interval of the difference, :mod:`privaudit.unlearning.
  paired`). PrivLeak cannot go below −100 (every forget record above every held-out one), so
  with a floor of 100 or more not even a model that remembers everything could be told from
  retraining: NOT INFORMATIVE.
- **Forget quality** (KS between the unlearned and the oracle's losses on the n forget
  records): its smallest attainable p-value, ``ks_pvalue_floor``, is that of two completely
  separated samples (exactly 2 / C(2n, n) for two samples of n); above 1 − c it can never
  show a difference.
- **Utility drop**: a paired bootstrap over the test records (the same records under both
  models; ``scipy.stats.bootstrap``) gives the drop's interval; ``utility_collapse`` fires only
  when its lower end is above ``unlearning.verify.utility_drop_max``.

>>> round(auc_floor(3, 40, 0.95), 3), round(privleak_floor(3, 40, 0.5, 0.95), 1)
(0.343, 96.9)
>>> round(ks_pvalue_floor(3, 3), 3), records_needed(40, 0.5, 0.95)
(0.1, 3)
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import bootstrap, ks_2samp, norm

__all__ = [
    "auc_floor",
    "auc_margin",
    "ks_pvalue_floor",
    "privleak_floor",
    "records_needed",
    "utility_drop_interval",
]


_METHOD = "percentile"


def _z(confidence: float) -> float:
    return float(norm.ppf((1 + confidence) / 2))


def _null_se(n: int, m: int) -> float:
    """Standard error of the Mann–Whitney AUC of n vs m exchangeable scores."""
    return math.sqrt((n + m + 1) / (12 * n * m)) if n and m else math.inf


def auc_floor(n: int, m: int, confidence: float) -> float:
    """Smallest departure from AUC 0.5 that n members vs m non-members can show."""
    return _z(confidence) * _null_se(n, m)


def auc_margin(n: int, m: int, confidence: float) -> float:
    """Smallest difference between two models' AUCs (each n vs m) that is significant."""
    return _z(confidence) * math.sqrt(2) * _null_se(n, m)


def privleak_floor(n: int, m: int, auc_oracle: float, confidence: float) -> float:
    """Smallest |PrivLeak| in % the comparison with the oracle can show (inf when the
    oracle's AUC is 1, where PrivLeak is undefined)."""
    room = 1.0 - auc_oracle
    return auc_margin(n, m, confidence) / room * 100.0 if room > 0 else math.inf


def records_needed(m: int, auc_oracle: float, confidence: float, *, limit: int = 10_000) -> int:
    """Fewest forget records for which PrivLeak could show a model that remembers them all
    (floor below 100%); ``limit`` when even that many are not enough."""
    for n in range(1, limit):
        if privleak_floor(n, m, auc_oracle, confidence) < 100.0:
            return n
    return limit


def ks_pvalue_floor(n_a: int, n_b: int) -> float:
    """The smallest p-value ``scipy.stats.ks_2samp`` can give for samples of these sizes."""
    if n_a == 0 or n_b == 0:
        return 1.0
    return float(ks_2samp(np.arange(n_a), np.arange(n_a, n_a + n_b)).pvalue)


def utility_drop_interval(
    before: tuple[ArrayLike, ArrayLike], after: tuple[ArrayLike, ArrayLike], metric: str,
    *, confidence: float, n_resamples: int, seed: int,
) -> tuple[float, float] | None:
    """Paired-bootstrap interval of the relative utility drop (1 − after/before for accuracy,
    1 − before/after for perplexity) from per-test-example (value, weight) pairs of
    :func:`privaudit.unlearning.evaluate.per_example_utility`; None without resamples or
    with fewer than two test records."""
    vb, wb = (np.asarray(x, float) for x in before)
    va, wa = (np.asarray(x, float) for x in after)
    if n_resamples < 1 or vb.size < 2:
        return None

    def drop(vb: np.ndarray, wb: np.ndarray, va: np.ndarray, wa: np.ndarray,
             axis: int = -1) -> np.ndarray:
        if metric == "perplexity":
            b = np.exp(vb.sum(axis) / np.maximum(wb.sum(axis), 1.0))
            a = np.exp(va.sum(axis) / np.maximum(wa.sum(axis), 1.0))
            return 1.0 - b / a
        b, a = vb.mean(axis), va.mean(axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, 1.0 - a / np.where(b > 0, b, 1.0), np.nan)

    res = bootstrap((vb, wb, va, wa), drop, paired=True, vectorized=True,
                    confidence_level=confidence, n_resamples=n_resamples, method=_METHOD,
                    random_state=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    return low, high
