"""Min-K%++ (Zhang, Sun, Ding, et al., "Min-K%++: Improved Baseline for Detecting Pre-Training
Data from Large Language Models", ICLR 2025).

Training makes each training token a local maximum (a mode) of the next-token distribution.
Min-K%++ therefore standardises each token's log-probability by the statistics of log p over
the vocabulary of the SAME next-token distribution p(· | x_<t):

    μ_t = Σ_v p_v log p_v,   σ_t² = Σ_v p_v (log p_v)² − μ_t²
    z_t = (ℓ_t − μ_t) / σ_t,  ℓ_t = log p(x_t | x_<t)
    score(x) = mean of the ⌈k·T⌉ lowest z_t             (k = 0.2)

Higher = more likely member. A degenerate distribution (σ_t = 0) is floored at σ_t = 1e-12.

Worked example (two tokens; the vocabulary distributions give μ = [−1.0, −2.0] and
σ = [0.5, 1.0]; the observed ℓ = [−0.5, −3.0] gives z = [1.0, −1.0]):

>>> min_k_pp_scores([np.array([-0.5, -3.0])], [np.array([-1.0, -2.0])],
...                 [np.array([0.5, 1.0])], k=0.5).tolist()
[-1.0]
>>> p = np.array([0.5, 0.25, 0.25])      # μ and σ from a full distribution
>>> mu, sigma = token_moments(p)
>>> round(mu, 4), round(sigma, 4)
(-1.0397, 0.3466)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from privaudit.attacks.scores.base import (
    Attack,
    AttackInputs,
    AttackParams,
    register_attack,
    required,
)
from privaudit.attacks.scores.min_k import lowest_k_mean

__all__ = ["MinKPlusPlusAttack", "MinKPlusPlusParams", "min_k_pp_scores", "token_moments"]

_MIN_SIGMA = 1e-12


def token_moments(probs: np.ndarray) -> tuple[float, float]:
    """(μ, σ) of log p under p for one next-token distribution ``probs`` (sums to 1).

    Reference implementation of what ``SignalSet.token_mu`` / ``token_sigma`` hold; zero
    probabilities contribute nothing (p log p → 0).
    """
    p = np.asarray(probs, dtype=np.float64)
    logp = np.log(np.where(p > 0, p, 1.0))
    mu = float(np.sum(p * logp))
    var = float(np.sum(p * logp**2)) - mu**2
    return mu, float(np.sqrt(max(var, 0.0)))


def min_k_pp_scores(
    token_logprobs: Sequence[np.ndarray],
    token_mu: Sequence[np.ndarray],
    token_sigma: Sequence[np.ndarray],
    *,
    k: float = 0.2,
) -> np.ndarray:
    """Min-K%++ score of every example from per-token ℓ, μ and σ (aligned arrays)."""
    out = np.empty(len(token_logprobs))
    for i, (ell, mu, sigma) in enumerate(zip(token_logprobs, token_mu, token_sigma, strict=True)):
        z = (np.asarray(ell) - np.asarray(mu)) / np.maximum(np.asarray(sigma), _MIN_SIGMA)
        out[i] = lowest_k_mean(z, k)
    return out


class MinKPlusPlusParams(AttackParams):
    """``k``: the fraction of lowest standardised tokens averaged, in (0, 1]."""

    k: float = Field(default=0.2, gt=0.0, le=1.0)


class MinKPlusPlusAttack(Attack):
    """Min-K%++ (Zhang et al. 2025); causal language models only."""

    name = "min_k_pp"
    Params = MinKPlusPlusParams
    params: MinKPlusPlusParams

    def requirements(self) -> tuple[str, ...]:
        return ("target.token_logprobs", "target.token_mu", "target.token_sigma")

    def compute(self, inputs: AttackInputs) -> np.ndarray:
        t = inputs.target
        return min_k_pp_scores(
            required(t.token_logprobs, "target.token_logprobs"),
            required(t.token_mu, "target.token_mu"),
            required(t.token_sigma, "target.token_sigma"),
            k=self.params.k,
        )


register_attack("min_k_pp", MinKPlusPlusAttack)
