"""Min-K% Prob (Shi, Ajith, Xia, Huang, Liu, Blevins, Chen, Zettlemoyer, "Detecting
Pretraining Data from Large Language Models", ICLR 2024).

A member text rarely contains tokens the model finds very surprising; a non-member does. With
ℓ_t = log p(x_t | x_<t) over the T predicted tokens of x:

    score(x) = mean of the ⌈k·T⌉ lowest ℓ_t          (at least one token; k = 0.2)

Higher = more likely member. ⌈k·T⌉ is taken with a 1e-9 tolerance so that floating-point
noise (0.2·15 = 3.0000000000000004) does not add a token. The paper's code truncates
(``int(k·T)``); the two agree whenever k·T is an integer.

>>> ell = [np.array([-0.1, -2.0, -0.5, -3.0, -0.2])]
>>> min_k_scores(ell, k=0.2).tolist(), min_k_scores(ell, k=0.4).tolist()
([-3.0], [-2.5])
"""

from __future__ import annotations

import math
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

__all__ = ["MinKAttack", "MinKParams", "lowest_k_mean", "min_k_scores"]


def lowest_k_mean(values: np.ndarray, k: float) -> float:
    """Mean of the ⌈k·len(values)⌉ smallest entries (at least one).

    >>> lowest_k_mean(np.arange(15.0), 0.2)
    1.0
    """
    n_low = max(1, math.ceil(k * values.size - 1e-9))
    return float(np.mean(np.partition(values, n_low - 1)[:n_low]))


def min_k_scores(token_logprobs: Sequence[np.ndarray], *, k: float = 0.2) -> np.ndarray:
    """Min-K% score of every example from its per-token log-probabilities."""
    return np.array([lowest_k_mean(np.asarray(t, dtype=np.float64), k) for t in token_logprobs])


class MinKParams(AttackParams):
    """``k``: the fraction of lowest-probability tokens averaged, in (0, 1]."""

    k: float = Field(default=0.2, gt=0.0, le=1.0)


class MinKAttack(Attack):
    """Min-K% Prob (Shi et al. 2024); causal language models only."""

    name = "min_k"
    Params = MinKParams
    params: MinKParams

    def requirements(self) -> tuple[str, ...]:
        return ("target.token_logprobs",)

    def compute(self, inputs: AttackInputs) -> np.ndarray:
        ell = required(inputs.target.token_logprobs, "target.token_logprobs")
        return min_k_scores(ell, k=self.params.k)


register_attack("min_k", MinKAttack)
