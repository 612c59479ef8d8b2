"""Empirical lower bounds on ε: what the measured leakage proves about the DP guarantee.

**One-run audit** (Steinke, Nasr, Jagielski, "Privacy Auditing with One (1) Training Run",
NeurIPS 2023). m canaries are included independently with probability ½; after one training
run the auditor guesses IN for the k₊ highest scores and OUT for the k₋ lowest
(:func:`guesses_from_scores`; k₊, k₋ fixed before looking), r = k₊ + k₋ guesses, v correct.
Under (ε, δ)-DP, with q = e^ε / (1 + e^ε):

    β(ε) = P[Binomial(r, q) ≥ v]
    α(ε) = max_{i ≥ 1} (1/i) · P[v > Binomial(r, q) ≥ v − i]
    p(ε) = β(ε) + 2mδ · α(ε),      ε_LB = sup{ε : p(ε) < p*}   (bisection; p* = 0.05)

**ROC bound** (Kairouz, Oh, Viswanath, ICML 2015; with Clopper–Pearson intervals as in
Jagielski, Ullman, Oprea, "Auditing Differentially Private Machine Learning", NeurIPS 2020):
at any threshold, ε ≥ max(log((1−δ−FNR)/FPR), log((1−δ−FPR)/FNR)); using upper confidence
bounds on FPR and FNR makes it hold at the stated confidence — for ONE threshold fixed in
advance. Taking the best of many thresholds on the same data breaks that (the maximum of many
bounds each wrong with probability α is wrong far more often), so the threshold is chosen
on a held-out half (``threshold_selection="split"``, the default) or every threshold pays a
Bonferroni correction (``"bonferroni"``). Either way the two rates share α (½ each).

A lower bound above the accountant's ε means the DP implementation or its accounting is
broken. Golden values (δ = 0, p* = 0.05, every guess correct):

>>> round(one_run_epsilon_lower_bound(r=100, v=100, m=1000), 2)
3.49
>>> round(one_run_epsilon_lower_bound(r=1000, v=1000, m=1000), 2)
5.81
>>> guesses_from_scores(np.array([0.1, 0.9, 0.5, 0.7]), k_pos=1, k_neg=1).tolist()
[-1, 1, 0, 0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict
from scipy.special import expit
from scipy.stats import beta, binom
from sklearn.metrics import roc_curve

from privaudit.core.errors import ConfigError, DataError, EvidenceIncomplete

__all__ = [
    "RocEpsilonBound",
    "count_correct",
    "guesses_from_scores",
    "max_tpr_under_dp",
    "one_run_epsilon_lower_bound",
    "roc_epsilon_lower_bound",
]


def _one_run_p(eps: float, r: int, v: int, m: int, delta: float) -> float:
    q = float(expit(eps))
    p = float(binom.sf(v - 1, r, q))
    if delta > 0 and v > 0:
        cdf = binom.cdf(np.arange(-1, v), r, q)  # cdf[j] = P[B <= j - 1]
        i = np.arange(1, v + 1)
        p += 2 * m * delta * float(np.max((cdf[v] - cdf[v - i]) / i))
    return p


def one_run_epsilon_lower_bound(
    *, r: int, v: int, m: int, delta: float = 0.0, p_value: float = 0.05
) -> float:
    """ε_LB of the one-run audit from r guesses of which v are correct, among m canaries."""
    problems = []
    if not (isinstance(r, int | np.integer) and r >= 1):
        problems.append(f"r (guesses) must be an integer >= 1; got {r!r}")
    elif not (isinstance(v, int | np.integer) and 0 <= v <= r):
        problems.append(f"v (correct guesses) must be an integer in [0, r={r}]; got {v!r}")
    if not (isinstance(m, int | np.integer) and m >= r):
        problems.append(f"m (canaries) must be an integer >= r={r}; got {m!r}")
    if not 0.0 <= delta < 1.0:
        problems.append(f"delta must lie in [0, 1); got {delta!r}")
    if not 0.0 < p_value < 1.0:
        problems.append(f"p_value must lie in (0, 1); got {p_value!r}")
    if problems:
        raise ConfigError("; ".join(problems), problems)
    if _one_run_p(0.0, r, v, m, delta) >= p_value:
        return 0.0
    lo, hi = 0.0, 1.0
    while _one_run_p(hi, r, v, m, delta) < p_value and hi < 1e3:
        lo, hi = hi, 2 * hi
    while hi - lo > 1e-9:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _one_run_p(mid, r, v, m, delta) < p_value else (lo, mid)
    return lo


def one_run_ceiling(*, r: int, m: int, delta: float = 0.0, p_value: float = 0.05) -> float:
    """The largest ε lower bound the one-run audit can ever print with r guesses among m
    canaries: every guess correct. Whatever the training does, the audit cannot show more.

    >>> round(one_run_ceiling(r=20, m=200), 2)   # the default 200 canaries, 5% + 5% guesses
    1.82
    """
    return one_run_epsilon_lower_bound(r=r, v=r, m=m, delta=delta, p_value=p_value)


def canaries_needed(claimed: float, *, guess_fraction: float, delta: float = 0.0,
                    p_value: float = 0.05, limit: int = 1_000_000) -> int | None:
    """The fewest canaries m whose one-run ceiling (r = ``guess_fraction``·m guesses, all
    correct) exceeds ``claimed``: what an audit needs to be able to refute that claim at all.
    None when no m up to ``limit`` can: with δ > 0 the ceiling levels off as m grows (the
    2mδ term), so some claims are beyond any one-run audit with that guess fraction.

    >>> canaries_needed(1.5, guess_fraction=0.1)
    146
    >>> canaries_needed(7.9, guess_fraction=0.1, delta=1e-5) is None   # 5% + 5% guesses
    True
    """
    def reaches(m: int) -> bool:
        r = max(1, round(guess_fraction * m))
        return one_run_ceiling(r=r, m=m, delta=delta, p_value=p_value) > claimed

    return fewest_reaching(reaches, start=2, limit=limit)


def fewest_reaching(reaches: Callable[[int], bool], *, start: int, limit: int) -> int | None:
    """The smallest count for which ``reaches`` (monotone: once true, true for every larger
    count) holds: doubling from ``start``, then bisection; None when not even ``limit`` does."""
    hi = start
    while not reaches(hi):
        if hi >= limit:
            return None
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return hi


def roc_ceiling(*, n_members: int, n_nonmembers: int, delta: float,
                confidence: float = 0.95) -> float:
    """The largest ε the ROC bound (split threshold selection) can print with these canary
    counts: a perfect separation of the measured half, at the bound's confidence."""
    alpha = 1.0 - confidence
    n_pos, n_neg = n_members - n_members // 2, n_nonmembers - n_nonmembers // 2
    if n_pos < 1 or n_neg < 1:
        return 0.0
    eps, _, _ = _eps(np.array([0]), np.array([0]), n_neg, n_pos, alpha / 2, delta)
    return max(0.0, float(eps[0]))


def max_provable_epsilon(*, r: int, m: int, n_included: int, delta: float,
                         confidence: float = 0.95) -> float:
    """The most this audit design can print, whatever the training does: the larger of the
    one-run ceiling (every guess correct) and the ROC ceiling (perfect separation) for m
    canaries of which ``n_included`` were trained on."""
    return max(one_run_ceiling(r=r, m=m, delta=delta, p_value=1 - confidence),
               roc_ceiling(n_members=n_included, n_nonmembers=m - n_included, delta=delta,
                           confidence=confidence))


def guesses_from_scores(scores: ArrayLike, k_pos: int, k_neg: int) -> np.ndarray:
    """+1 (guess IN) for the ``k_pos`` highest scores, −1 (OUT) for the ``k_neg`` lowest, 0
    (abstain) elsewhere; ties broken by position (stable sort), so the result is reproducible."""
    s = np.asarray(scores, dtype=np.float64)
    if not (k_pos >= 0 and k_neg >= 0 and k_pos + k_neg <= s.size):
        raise ConfigError(
            f"guesses: k_pos and k_neg must be >= 0 with k_pos + k_neg <= {s.size} canaries; "
            f"got k_pos={k_pos}, k_neg={k_neg}"
        )
    order = np.argsort(s, kind="stable")
    out = np.zeros(s.size, dtype=np.int64)
    out[order[:k_neg]] = -1
    out[order[s.size - k_pos:]] = 1
    return out


def count_correct(guesses: ArrayLike, included: ArrayLike) -> tuple[int, int]:
    """(r, v): the number of non-abstaining guesses and of correct ones.

    >>> count_correct([1, -1, 0, 1], [True, False, True, False])
    (3, 2)
    """
    g, inc = np.asarray(guesses), np.asarray(included, dtype=bool)
    made = g != 0
    return int(made.sum()), int(np.sum(made & ((g == 1) == inc)))


def max_tpr_under_dp(fpr: ArrayLike, *, epsilon: float, delta: float) -> np.ndarray:
    """The largest TPR an (ε, δ)-DP mechanism allows at each FPR (the privacy region's edge).

    >>> max_tpr_under_dp([0.0, 0.01], epsilon=1.0, delta=0.0).round(4).tolist()
    [0.0, 0.0272]
    """
    f = np.asarray(fpr, dtype=np.float64)
    e = np.exp(epsilon)
    return np.minimum.reduce([np.ones_like(f), e * f + delta, 1.0 - (1.0 - delta - f) / e])


class RocEpsilonBound(BaseModel):
    """The ROC-based bound and the operating point it was measured at (evaluation data)."""

    model_config = ConfigDict(frozen=True)
    epsilon: float
    threshold: float
    fpr: float
    fnr: float
    fpr_upper: float
    fnr_upper: float
    confidence: float
    threshold_selection: str
    n_members: int
    n_nonmembers: int


def _rates(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(threshold, FP, FN) counts for 'member if score >= threshold', finite thresholds."""
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    fp = np.rint(fpr[1:] * n_neg).astype(int)
    fn = n_pos - np.rint(tpr[1:] * n_pos).astype(int)
    return thr[1:], fp, fn


def _eps(fp: np.ndarray, fn: np.ndarray, n_neg: int, n_pos: int, alpha: float, delta: float) -> (
    tuple[np.ndarray, np.ndarray, np.ndarray]
):
    fp_hi = np.where(fp >= n_neg, 1.0, beta.ppf(1 - alpha, fp + 1, np.maximum(n_neg - fp, 1)))
    fn_hi = np.where(fn >= n_pos, 1.0, beta.ppf(1 - alpha, fn + 1, np.maximum(n_pos - fn, 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.clip(1 - delta - fn_hi, 0, None) / fp_hi)
        b = np.log(np.clip(1 - delta - fp_hi, 0, None) / fn_hi)
    return np.nan_to_num(np.maximum(a, b), nan=-np.inf), fp_hi, fn_hi


def roc_epsilon_lower_bound(
    scores: ArrayLike,
    is_member: ArrayLike,
    *,
    delta: float,
    confidence: float = 0.95,
    threshold_selection: Literal["split", "bonferroni"] = "split",
    seed: int = 0,
) -> RocEpsilonBound:
    """ε lower bound holding with probability ≥ ``confidence`` (see the module docstring).

    ``split``: a stratified random half (``seed``) picks the threshold with the best bound;
    the other half measures it. ``bonferroni``: all data, every threshold at α/(2·K).
    """
    if not 0.0 < confidence < 1.0 or not 0.0 <= delta < 1.0:
        raise ConfigError(f"confidence must lie in (0, 1) and delta in [0, 1); "
                          f"got confidence={confidence}, delta={delta}")
    if threshold_selection not in ("split", "bonferroni"):
        raise ConfigError(f"threshold_selection must be 'split' or 'bonferroni'; "
                          f"got {threshold_selection!r}")
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(is_member).astype(bool)
    if s.shape != y.shape or s.ndim != 1 or not np.all(np.isfinite(s)):
        raise DataError("scores must be finite and 1-D, the same length as is_member")
    alpha = 1.0 - confidence
    if threshold_selection == "split":
        rng = np.random.default_rng(seed)
        pick = np.zeros(s.size, dtype=bool)
        for cls in (True, False):
            idx = rng.permutation(np.flatnonzero(y == cls))
            pick[idx[: idx.size // 2]] = True
        sel_s, sel_y, s, y = s[pick], y[pick], s[~pick], y[~pick]
    _need_both(y)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if threshold_selection == "split":
        _need_both(sel_y)
        thr, fp, fn = _rates(sel_s, sel_y)
        eps, _, _ = _eps(fp, fn, int((~sel_y).sum()), int(sel_y.sum()), alpha / 2, delta)
        t = float(thr[int(np.argmax(eps))])
        pred = s >= t
        fp_e, fn_e = np.array([int(np.sum(pred & ~y))]), np.array([int(np.sum(~pred & y))])
        eps, fp_hi, fn_hi = _eps(fp_e, fn_e, n_neg, n_pos, alpha / 2, delta)
        j, fp, fn = 0, fp_e, fn_e
    else:
        thr, fp, fn = _rates(s, y)
        eps, fp_hi, fn_hi = _eps(fp, fn, n_neg, n_pos, alpha / (2 * thr.size), delta)
        j = int(np.argmax(eps))
        t = float(thr[j])
    return RocEpsilonBound(
        epsilon=max(0.0, float(eps[j])), threshold=t, fpr=fp[j] / n_neg, fnr=fn[j] / n_pos,
        fpr_upper=float(fp_hi[j]), fnr_upper=float(fn_hi[j]), confidence=confidence,
        threshold_selection=threshold_selection, n_members=n_pos, n_nonmembers=n_neg,
    )


def _need_both(y: np.ndarray) -> None:
    if y.all() or not y.any():
        raise EvidenceIncomplete(f"need members and non-members (in each half when split); got "
                                 f"{int(y.sum())} members of {y.size}")
