"""Likelihood-ratio attack, LiRA (Carlini, Chien, Nasr, Song, Terzis, Tramèr, "Membership
Inference Attacks From First Principles", IEEE S&P 2022).

For each example x, the confidence logits φ(x) of reference models trained WITH x (IN) and
WITHOUT x (OUT) are fitted with Gaussians; the target's φ_t(x) is then tested against them.
For a causal LM, φ is the sequence's mean token log-likelihood (``signals.lm_phi``): LiRA on
the sequence loss, as Hayes et al. (2025) scale it to GPT-2 models.

- centre μ: the median of the IN (resp. OUT) φ (``center="median"``, the paper's code) or the
  mean;
- spread σ: ``variance="per_example"``: the standard deviation of that example's IN (OUT) φ
  (ddof = 1; needs ≥ 2 per side); ``variance="fixed"``: one pooled within-example standard
  deviation, √(Σ residual² / (n − number of fitted means)) with residuals about each
  example's IN (OUT) mean, pooled over both sides: online LiRA uses the same σ for IN and
  OUT, as the authors' code does with a fixed variance (there from the raw IN values); the
  offline test uses the OUT side's. The paper finds fixed variance better below ~64
  references; it is the default.
- ``mode="online"``: score = log N(φ_t; μ_in, σ_in²) − log N(φ_t; μ_out, σ_out²).
- ``mode="offline"``: the paper's one-sided test Φ((φ_t − μ_out)/σ_out), returned as its
  logarithm log Φ(·) (scipy's ``norm.logcdf``): the same ranking, but it keeps resolving
  members up to z ≈ 37 where Φ itself rounds to 1.0. It is NOT the −log N(φ_t; μ_out, σ_out²)
  variant some code uses (that one is two-sided).

σ is floored at 1e-6 (φ is in logit units). Higher score = more likely member.

Worked example, one example with IN φ = [2, 4], OUT φ = [−1, 1], target φ_t = 3, per-example
variance: μ_in = 3, μ_out = 0, σ_in = σ_out = √2, so online = (3/√2)²/2 = 2.25 and offline =
log Φ(3/√2) = log 0.98305 = −0.01709.

>>> ref = np.array([[2.0], [4.0], [-1.0], [1.0]])
>>> keep = np.array([[True], [True], [False], [False]])
>>> lira_scores(np.array([3.0]), ref, keep, mode="online", variance="per_example").round(5)
array([2.25])
>>> lira_scores(np.array([3.0]), ref, keep, mode="offline", variance="per_example").round(5)
array([-0.01709])
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from scipy.stats import norm

from privaudit.attacks.scores.base import (
    Attack,
    AttackInputs,
    AttackParams,
    register_attack,
    required,
)
from privaudit.core.errors import EvidenceIncomplete

__all__ = ["LiRAAttack", "LiRAParams", "gaussian_fit", "lira_scores"]

_MIN_STD = 1e-6


def gaussian_fit(
    phi: np.ndarray,
    select: np.ndarray,
    *,
    center: Literal["median", "mean"] = "median",
    variance: Literal["per_example", "fixed"] = "fixed",
    side: str = "OUT",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example (μ, σ) of ``phi`` (n_refs, N) over the entries where ``select`` is True.

    Raises EvidenceIncomplete, naming ``side``, when an example has too few selected
    references (1 for fixed variance, 2 for per-example variance).
    """
    counts = select.sum(axis=0)
    need = 2 if variance == "per_example" else 1
    short = int(np.sum(counts < need))
    if short:
        raise EvidenceIncomplete(
            f"LiRA needs >= {need} {side} reference model(s) per example with variance="
            f"{variance!r}; {short} of {phi.shape[1]} examples have fewer (min {int(counts.min())})"
            ". Use more references, balanced keep masks (each example IN for exactly half), or "
            "variance='fixed'"
        )
    vals = np.where(select, phi, np.nan)
    mu = np.nanmedian(vals, axis=0) if center == "median" else np.nanmean(vals, axis=0)
    sq = _squared_residuals(phi, select)
    if variance == "per_example":
        sigma = np.sqrt(sq / (counts - 1))
    else:
        dof = int(counts.sum()) - phi.shape[1]
        if dof <= 0:
            raise EvidenceIncomplete(
                f"LiRA with variance='fixed' needs some example with >= 2 {side} references"
            )
        sigma = np.full(phi.shape[1], np.sqrt(sq.sum() / dof))
    return mu, np.maximum(sigma, _MIN_STD)


def _squared_residuals(phi: np.ndarray, select: np.ndarray) -> np.ndarray:
    """Per example: Σ (φ − that example's mean over the selected references)²."""
    vals = np.where(select, phi, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # examples with none selected
        return np.asarray(np.nansum((vals - np.nanmean(vals, axis=0)) ** 2, axis=0))


def _shared_sigma(ref: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """One pooled within-example σ over the IN and the OUT residuals together."""
    sq, dof = 0.0, 0
    for select in (inside, ~inside):
        counts = select.sum(axis=0)
        sq += float(_squared_residuals(ref, select).sum())
        dof += int(counts.sum()) - int(np.sum(counts > 0))
    if dof <= 0:
        raise EvidenceIncomplete("LiRA with variance='fixed' needs some example with >= 2 "
                                 "references on one side")
    return np.full(ref.shape[1], max(np.sqrt(sq / dof), _MIN_STD))


def lira_scores(
    target_phi: np.ndarray,
    ref_phi: np.ndarray,
    keep: np.ndarray | None,
    *,
    mode: Literal["online", "offline"] = "online",
    variance: Literal["per_example", "fixed"] = "fixed",
    center: Literal["median", "mean"] = "median",
) -> np.ndarray:
    """LiRA scores of N examples: ``target_phi`` (N,), ``ref_phi`` (n_refs, N), ``keep``
    (n_refs, N) True = IN (``None``: every reference is OUT; offline only)."""
    phi_t = np.asarray(target_phi, dtype=np.float64)
    ref = np.asarray(ref_phi, dtype=np.float64)
    inside = np.zeros(ref.shape, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    mu_out, sd_out = gaussian_fit(ref, ~inside, center=center, variance=variance, side="OUT")
    if mode == "offline":
        return np.asarray(norm.logcdf((phi_t - mu_out) / sd_out), dtype=np.float64)
    mu_in, sd_in = gaussian_fit(ref, inside, center=center, variance=variance, side="IN")
    if variance == "fixed":
        # one σ for both sides, as the authors' code does with a fixed variance: with two
        # different σ the quadratic terms rank a member the target fits better than its IN
        # references did BELOW one it fits worse (seen on small overfitted models)
        sd_in = sd_out = _shared_sigma(ref, inside)
    log_in = -0.5 * ((phi_t - mu_in) / sd_in) ** 2 - np.log(sd_in)
    log_out = -0.5 * ((phi_t - mu_out) / sd_out) ** 2 - np.log(sd_out)
    return np.asarray(log_in - log_out, dtype=np.float64)


class LiRAParams(AttackParams):
    """``mode``: online | offline; ``variance``: per_example | fixed; ``center``: median | mean."""

    mode: Literal["online", "offline"] = "online"
    variance: Literal["per_example", "fixed"] = "fixed"
    center: Literal["median", "mean"] = "median"


class LiRAAttack(Attack):
    """LiRA (Carlini et al. 2022) on the confidence logit φ.

    Online needs ``keep``; offline treats references as OUT where ``keep`` is False, or all
    of them when ``keep`` is None (references trained without the audited examples). It fits
    an IN and an OUT Gaussian per example, so each side needs 2 references (4 in all).
    """

    min_references = 4

    name = "lira"
    Params = LiRAParams
    params: LiRAParams

    def requirements(self) -> tuple[str, ...]:
        base = ("target.phi", "references.phi")
        return (*base, "keep") if self.params.mode == "online" else base

    def compute(self, inputs: AttackInputs) -> np.ndarray:
        ref_phi = np.stack([required(r.phi, "references.phi") for r in inputs.references])
        return lira_scores(
            required(inputs.target.phi, "target.phi"),
            ref_phi,
            inputs.keep,
            mode=self.params.mode,
            variance=self.params.variance,
            center=self.params.center,
        )


register_attack("lira", LiRAAttack)
