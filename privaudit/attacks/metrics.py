"""How well an attack separates members from non-members, with honest uncertainty.

Following Carlini et al. ("Membership Inference Attacks From First Principles", IEEE S&P 2022)
the headline numbers are TPR at low FPR (1%, 0.1%) next to the AUC. Every number carries an
interval at ``confidence``:

- AUC: stratified bootstrap (members and non-members resampled separately), percentile
  interval, widened if needed to contain the point estimate; the AUC itself is the
  Mann–Whitney statistic (= ``sklearn.metrics.roc_auc_score``, ties counted half).
- TPR at FPR ≤ target: the best operating point of ``sklearn.metrics.roc_curve`` whose FPR
  does not exceed the target (the lowest such threshold, so the highest TPR). Its interval
  covers the threshold's own error too (:func:`tpr_interval_at_fpr`, distribution-free, after
  Hilgers 1991): order statistics of the non-members bracket the true threshold at that FPR
  (binomial, at half the error budget), and Clopper–Pearson (1934) bounds on the members'
  rates at the two bracketing thresholds spend the other half. A Clopper–Pearson interval
  at the measured threshold alone, as if it were fixed, covered 49–79% at 1% FPR for a
  nominal 95% (tests/attacks/test_metrics_coverage.py).
- Not estimable below the smallest FPR the non-members resolve, 10/n
  (:mod:`privaudit.attacks.resolution`): with fewer than 10/FPR non-members an FPR of 0.1%
  means less than ten false positives, and the "best threshold" is set by the top one or two
  non-members (biased upward, 0.066 against a true 0.005 at n = 40). There the rate has no
  point (``value`` None, ``estimable`` False, ``reason`` says why) and only its bounds are
  reported: ``ci_high`` is a valid upper bound of the TPR at that FPR
  (:func:`tpr_interval_at_fpr` needs a few non-members, not 10/FPR, for its upper end), and
  a warning says so.

Convention: higher score = more likely member; ``is_member`` is 1 (True) for members.

>>> m = evaluate_scores([0.9, 0.8, 0.4, 0.7, 0.3, 0.2], [1, 1, 1, 0, 0, 0], n_bootstrap=50)
>>> round(m.auc, 4), m.tpr_at_fpr["0.01"].value, round(m.balanced_accuracy, 4)
(0.8889, None, 0.8333)
>>> m.tpr_at_fpr["0.01"].ci_high, m.min_resolvable_fpr   # 3 non-members resolve no FPR < 1
(1.0, 1.0)
>>> m.warnings[0]
'fewer than 10/FPR non-members (have 3, need 1000): TPR at FPR=0.01 is not estimable'
>>> [round(b, 4) for b in clopper_pearson(0, 10, 0.95)]   # upper = 1 − 0.025^(1/10)
[0.0, 0.3085]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict
from scipy.stats import beta, binom, rankdata
from sklearn.metrics import roc_curve

from privaudit.attacks.resolution import min_resolvable_fpr, nonmembers_needed, resolves
from privaudit.attacks.results import RateCI, RocCurve
from privaudit.core.errors import ConfigError, DataError, EvidenceIncomplete

__all__ = [
    "AttackMetrics",
    "RateCI",
    "RocCurve",
    "clopper_pearson",
    "clopper_pearson_many",
    "evaluate_scores",
    "fpr_key",
    "rate_at_fpr",
    "tpr_interval_at_fpr",
]

_MAX_ROC_POINTS = 200


class AttackMetrics(BaseModel):
    """Metrics of one attack on one model (the ``attacks[]`` entry of the report, less names)."""

    model_config = ConfigDict(frozen=True)
    auc: float
    auc_ci_low: float
    auc_ci_high: float
    tpr_at_fpr: dict[str, RateCI]
    balanced_accuracy: float
    n_members: int
    n_nonmembers: int
    min_resolvable_fpr: float
    confidence: float
    n_bootstrap: int
    warnings: list[str]
    roc: RocCurve


def fpr_key(fpr: float) -> str:
    """The report key of an FPR target: ``0.01 -> "0.01"``, ``0.001 -> "0.001"``."""
    return str(float(fpr))


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval of a binomial proportion k/n (Clopper & Pearson 1934)."""
    low, high = clopper_pearson_many(np.array([k]), n, confidence)
    return float(low[0]), float(high[0])


def clopper_pearson_many(k: np.ndarray, n: int, confidence: float = 0.95
                         ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`clopper_pearson` of every count in ``k`` at once (one vectorised quantile call
    each side: a ROC's few hundred points cost one call, not hundreds).

    >>> low, high = clopper_pearson_many(np.array([0, 3, 10]), 10)
    >>> [round(float(x), 4) for x in (*low, *high)]
    [0.0, 0.0667, 0.6915, 0.3085, 0.6525, 1.0]
    """
    alpha = 1.0 - confidence
    k = np.asarray(k, int)
    with np.errstate(invalid="ignore"):
        low = np.where(k <= 0, 0.0, beta.ppf(alpha / 2, k, n - k + 1))
        high = np.where(k >= n, 1.0, beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low.astype(float), high.astype(float)


def tpr_interval_at_fpr(
    pos: np.ndarray, neg: np.ndarray, target: float, confidence: float = 0.95
) -> tuple[float, float]:
    """An interval for the true TPR at the threshold whose true FPR is ``target``, which holds
    at ``confidence`` whatever the score distributions (continuous scores; ties only make it
    more conservative).

    The threshold q with FPR(q) = target is the (1 − target)-quantile of the non-member
    scores; the number N of non-members at or below it is Binomial(m, 1 − target), so order
    statistics X_(a) ≤ q < X_(b) with P(N < a) ≤ α/4 and P(N ≥ b) ≤ α/4 bracket it with
    probability ≥ 1 − α/2 (a = 0: no lower threshold; b > m: no upper one). TPR is monotone
    in the threshold, so TPR(q) lies between the members' rates at X_(b) and X_(a); one-sided
    Clopper–Pearson bounds at α/4 each on those two rates spend the rest (Bonferroni; the
    construction of Hilgers, "Distribution-free confidence bounds for ROC curves", Methods
    Inf. Med. 1991).

    The upper end alone is a valid bound at 1 − α/2 however few non-members there are: it
    needs only X_(a) ≤ q, which holds with probability ≥ 1 − α/4 for any m, and is 1 when no
    such a exists (m so small that even the top non-member may lie below q). It is what a
    not-estimable rate reports (:func:`rate_at_fpr`). It never exceeds the upper end at a
    larger FPR t' — in particular at the smallest FPR the non-members resolve, 10/m — since
    the (1 − t')-quantile is lower, so its a' ≤ a, X_(a') ≤ X_(a) and more members lie above:
    the bound is consistent with the ROC being monotone.

    >>> rng = np.random.default_rng(0)
    >>> low, high = tpr_interval_at_fpr(rng.normal(1, 1, 500), rng.normal(0, 1, 500), 0.01)
    >>> bool(low < 0.092 < high)   # true TPR at 1% FPR: 1 − Φ(2.326 − 1) = 0.092
    True
    """
    alpha = 1.0 - confidence
    m, n = neg.size, pos.size
    sorted_neg = np.sort(neg)
    cdf = binom.cdf(np.arange(m + 1), m, 1.0 - target)  # cdf[k] = P(N <= k)
    # a: the largest order (1-based) with P(N <= a - 1) <= alpha/4
    below = np.nonzero(cdf[:m] <= alpha / 4)[0]
    a = int(below[-1]) + 1 if below.size else 0
    # b: the smallest order with P(N >= b) = 1 - cdf[b - 1] <= alpha/4
    above = np.nonzero(1.0 - cdf[:m] <= alpha / 4)[0]
    b = int(above[0]) + 1 if above.size else m + 1
    k_high = n if a == 0 else int(np.sum(pos >= sorted_neg[a - 1]))
    k_low = 0 if b > m else int(np.sum(pos >= sorted_neg[b - 1]))
    low = clopper_pearson(k_low, n, 1.0 - alpha / 2)[0]
    high = clopper_pearson(k_high, n, 1.0 - alpha / 2)[1]
    return low, high


def _rate_at(fpr: np.ndarray, tpr: np.ndarray, pos: np.ndarray, neg: np.ndarray,
             target: float, confidence: float) -> RateCI:
    low, high = tpr_interval_at_fpr(pos, neg, target, confidence)
    if not resolves(neg.size, target):
        return RateCI(
            value=None, ci_low=low, ci_high=high, estimable=False,
            reason=f"{neg.size} non-members resolve FPRs down to "
                   f"{min_resolvable_fpr(neg.size):.3g} only (FPR {fpr_key(target)} needs "
                   f"at least {nonmembers_needed(target)}): the TPR there is at most {high:.3g}")
    i = int(np.searchsorted(fpr, target + 1e-12, side="right") - 1)
    value = int(np.rint(tpr[i] * pos.size)) / pos.size
    return RateCI(value=value, ci_low=min(low, value), ci_high=max(high, value))


def rate_at_fpr(pos: ArrayLike, neg: ArrayLike, target: float,
                confidence: float = 0.95) -> RateCI:
    """TPR at FPR ≤ ``target`` with its interval, exactly as :func:`evaluate_scores` reports
    it, from member scores ``pos`` and non-member scores ``neg``. With fewer than 10/target
    non-members it is not estimable: no point, and ``ci_high`` the distribution-free upper
    bound of :func:`tpr_interval_at_fpr` (valid at any count; ``ci_low`` its lower end,
    usually 0 there).

    >>> rng = np.random.default_rng(1)
    >>> r = rate_at_fpr(rng.normal(2, 1, 100), rng.normal(0, 1, 100), 0.001)
    >>> r.estimable, r.value, round(r.ci_high, 3)   # true TPR at 0.1% FPR: 0.138
    (False, None, 0.349)
    """
    p, n = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    y = np.r_[np.ones(p.size, dtype=bool), np.zeros(n.size, dtype=bool)]
    fpr, tpr, _ = roc_curve(y, np.r_[p, n], drop_intermediate=False)
    return _rate_at(fpr, tpr, p, n, target, confidence)


def _auc_from_ranks(scores: np.ndarray, n_members: int) -> np.ndarray:
    """AUC of each row of ``scores`` whose first ``n_members`` columns are members."""
    ranks = rankdata(scores, axis=-1)
    n_non = scores.shape[-1] - n_members
    r1 = ranks[..., :n_members].sum(axis=-1)
    return np.asarray((r1 - n_members * (n_members + 1) / 2) / (n_members * n_non))


def _bootstrap_auc(
    pos: np.ndarray, neg: np.ndarray, n_bootstrap: int, confidence: float, seed: int
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    aucs: list[np.ndarray] = []
    chunk = max(1, 2_000_000 // (pos.size + neg.size))
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        sample = np.concatenate(
            [pos[rng.integers(0, pos.size, (b, pos.size))],
             neg[rng.integers(0, neg.size, (b, neg.size))]], axis=1)
        aucs.append(_auc_from_ranks(sample, pos.size))
    alpha = 1.0 - confidence
    low, high = np.quantile(np.concatenate(aucs), [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _check(
    scores: ArrayLike, is_member: ArrayLike, fprs: Sequence[float], confidence: float,
    n_bootstrap: int,
) -> tuple[np.ndarray, np.ndarray]:
    problems: list[str] = []
    if not all(0.0 < f < 1.0 for f in fprs):
        problems.append(f"fprs must lie in (0, 1); got {list(fprs)}")
    if not 0.0 < confidence < 1.0:
        problems.append(f"confidence must lie in (0, 1); got {confidence}")
    if n_bootstrap < 10:
        problems.append(f"n_bootstrap must be >= 10; got {n_bootstrap}")
    if problems:
        raise ConfigError("; ".join(problems), problems)
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(is_member)
    if s.ndim != 1 or y.shape != s.shape:
        raise DataError(f"scores and is_member must be 1-D, equal length; got {s.shape}, {y.shape}")
    if not np.all(np.isfinite(s)):
        raise DataError(f"scores has {int(np.sum(~np.isfinite(s)))} non-finite values")
    if not np.all((y == 0) | (y == 1)):
        raise DataError("is_member must hold 0/1 or booleans (1 = member)")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise EvidenceIncomplete(
            f"need members and non-members; got {int(y.sum())} members, {int((~y).sum())} non"
        )
    return s, y


def _downsample(fpr: np.ndarray, tpr: np.ndarray, n_pos: int, n_neg: int, confidence: float) -> (
    RocCurve
):
    grid = np.unique(fpr[fpr > 0])
    if grid.size > _MAX_ROC_POINTS:
        grid = np.geomspace(1.0 / n_neg, 1.0, _MAX_ROC_POINTS)
    idx = np.searchsorted(fpr, grid + 1e-12, side="right") - 1
    tps = np.rint(tpr[idx] * n_pos).astype(int)
    low, high = clopper_pearson_many(tps, n_pos, confidence)
    return RocCurve(fpr=grid.tolist(), tpr=(tps / n_pos).tolist(),
                    tpr_ci_low=low.tolist(), tpr_ci_high=high.tolist())


def evaluate_scores(
    scores: ArrayLike,
    is_member: ArrayLike,
    *,
    fprs: Sequence[float] = (0.01, 0.001),
    confidence: float = 0.95,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> AttackMetrics:
    """AUC (bootstrap CI), TPR at each FPR in ``fprs`` (distribution-free CI; not estimable,
    an upper bound only, below :func:`min_resolvable_fpr`), best balanced accuracy and a
    plotting ROC; warnings for FPRs that the non-member count cannot resolve."""
    s, y = _check(scores, is_member, fprs, confidence, n_bootstrap)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    pos, neg = s[y], s[~y]
    auc = float(_auc_from_ranks(np.concatenate([pos, neg]), n_pos))
    auc_low, auc_high = _bootstrap_auc(pos, neg, n_bootstrap, confidence, seed)
    rates: dict[str, RateCI] = {}
    warnings: list[str] = []
    for target in fprs:
        rates[fpr_key(target)] = _rate_at(fpr, tpr, pos, neg, target, confidence)
        if not resolves(n_neg, target):
            warnings.append(f"fewer than 10/FPR non-members (have {n_neg}, need "
                            f"{nonmembers_needed(target)}): TPR at FPR={fpr_key(target)} is "
                            "not estimable")
    return AttackMetrics(
        auc=auc,
        auc_ci_low=min(auc_low, auc),
        auc_ci_high=max(auc_high, auc),
        tpr_at_fpr=rates,
        balanced_accuracy=float(np.max((tpr + 1.0 - fpr) / 2.0)),
        n_members=n_pos,
        n_nonmembers=n_neg,
        min_resolvable_fpr=min_resolvable_fpr(n_neg),
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        warnings=warnings,
        roc=_downsample(fpr, tpr, n_pos, n_neg, confidence),
    )
