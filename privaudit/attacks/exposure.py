"""Canary exposure (Carlini, Liu, Erlingsson, Kos, Song, "The Secret Sharer: Evaluating and
Testing Unintended Memorization in Neural Networks", USENIX Security 2019).

A secret canary s[r] is drawn from a randomness space R (e.g. 6 random digits: |R| = 10⁶)
and inserted into training. Candidates s[r′], r′ ∈ R, are ranked by the model's
log-perplexity (lower = more likely, rank 1 = the most likely):

    exposure(s[r]) = log₂|R| − log₂ rank(s[r])          bits, in [0, log₂|R|]

|R| is too large to score every candidate, so the rank is estimated from a sample of them
(:func:`estimate_exposure`):

- ``method="skewnorm"`` (default, the paper's §4.3 "approximation via distribution model"):
  fit a skew-normal distribution to the candidates' log-perplexities by maximum likelihood
  (``scipy.stats.skewnorm.fit``); rank ≈ |R| · F(canary), so exposure = −log₂ F(canary)
  with F the fitted CDF (computed in log space, so it extrapolates far beyond the sample);
- ``method="normal"``: the same with a normal fit;
- ``method="empirical"``: F(canary) = (1 + #candidates below + ½ #ties) / (n + 1); it cannot
  resolve more than log₂(n + 1) bits, the sample's own limit.

The estimated rank is at least 1, so exposure never exceeds log₂|R|.

>>> exposure_from_rank(1, 2**20), exposure_from_rank(2**10, 2**20)
(20.0, 10.0)
>>> candidates = np.arange(1.0, 100.0)        # 99 sampled candidates' log-perplexities
>>> round(estimate_exposure(10.5, candidates, 10**6, method="empirical").bits, 3)
3.184
>>> z = (candidates - candidates.mean()) / candidates.std(ddof=1)
>>> round(estimate_exposure(-3.0, z, 10**6, method="normal").bits, 3)  # −log₂ Φ(−3)
9.533
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict
from scipy.stats import norm, skewnorm

from privaudit.core.errors import ConfigError, DataError

__all__ = ["ExposureEstimate", "estimate_exposure", "exposure_from_rank"]

_MIN_CANDIDATES = {"skewnorm": 10, "normal": 3, "empirical": 1}


class ExposureEstimate(BaseModel):
    """One canary's exposure: ``bits``, the estimated ``rank`` in R, and how it was estimated."""

    model_config = ConfigDict(frozen=True)
    bits: float
    rank: float
    log2_space_size: float
    method: str
    n_candidates: int


def exposure_from_rank(rank: float, space_size: float) -> float:
    """log₂|R| − log₂ rank, for 1 ≤ rank ≤ |R| (rank 1 = the canary is the most likely)."""
    if not space_size >= 2:
        raise ConfigError(f"space_size must be >= 2; got {space_size!r}")
    if not 1 <= rank <= space_size:
        raise ConfigError(f"rank must lie in [1, space_size={space_size}]; got {rank!r}")
    return math.log2(space_size) - math.log2(rank)


def _log_fraction(canary: float, cand: np.ndarray, method: str) -> float:
    """Natural log of the estimated fraction of R at least as likely as the canary."""
    if method == "empirical":
        below = float(np.sum(cand < canary)) + 0.5 * float(np.sum(cand == canary))
        return math.log((1.0 + below) / (cand.size + 1.0))
    if method == "normal":
        sd = float(np.std(cand, ddof=1))
        if sd <= 0:
            raise DataError("exposure: candidate log-perplexities have zero spread")
        return float(norm.logcdf(canary, loc=float(np.mean(cand)), scale=sd))
    shape, loc, scale = skewnorm.fit(cand)
    return float(skewnorm.logcdf(canary, shape, loc=loc, scale=scale))


def estimate_exposure(
    canary_logppl: float,
    candidate_logppl: ArrayLike,
    space_size: float,
    *,
    method: Literal["skewnorm", "normal", "empirical"] = "skewnorm",
) -> ExposureEstimate:
    """Exposure of one canary from its log-perplexity and a random sample of candidates'
    log-perplexities (drawn uniformly from R, the canary itself excluded)."""
    if method not in _MIN_CANDIDATES:
        raise ConfigError(f"exposure method must be one of {', '.join(_MIN_CANDIDATES)}; "
                          f"got {method!r}")
    if not space_size >= 2:
        raise ConfigError(f"space_size must be >= 2; got {space_size!r}")
    cand = np.asarray(candidate_logppl, dtype=np.float64)
    if cand.ndim != 1 or cand.size < _MIN_CANDIDATES[method] or not np.all(np.isfinite(cand)):
        raise DataError(f"exposure ({method}): need >= {_MIN_CANDIDATES[method]} finite "
                        f"candidate log-perplexities in a 1-D array; got shape {cand.shape}")
    if not math.isfinite(canary_logppl):
        raise DataError(f"exposure: canary log-perplexity must be finite; got {canary_logppl}")
    log2_r = math.log2(space_size)
    log2_frac = _log_fraction(float(canary_logppl), cand, method) / math.log(2.0)
    log2_rank = min(max(log2_r + log2_frac, 0.0), log2_r)  # 1 <= rank <= |R|
    return ExposureEstimate(
        bits=log2_r - log2_rank,
        rank=2.0**log2_rank,
        log2_space_size=log2_r,
        method=method,
        n_candidates=int(cand.size),
    )
