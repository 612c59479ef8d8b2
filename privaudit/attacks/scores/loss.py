"""LOSS attack (Yeom, Giacomelli, Fredrikson, Jha, "Privacy Risk in Machine Learning:
Analyzing the Connection to Overfitting", CSF 2018).

A model fits its training points better than unseen points of the same distribution, so a
low loss is evidence of membership. Thresholding the loss is the baseline every calibrated
attack (``reference``, ``lira``, ``rmia``) is measured against: it ignores that some
examples are intrinsically easy, which is why its TPR at low FPR is poor (Carlini et al.,
S&P 2022, report 0.09% TPR at 0.1% FPR on CIFAR-10).

score(x) = −loss(x)      (loss in nats: cross-entropy, or mean token NLL for a causal LM)

>>> loss_scores(np.array([0.05, 0.7, 2.3])).tolist()
[-0.05, -0.7, -2.3]
"""

from __future__ import annotations

import numpy as np

from privaudit.attacks.scores.base import Attack, AttackInputs, register_attack

__all__ = ["LossAttack", "loss_scores"]


def loss_scores(loss: np.ndarray) -> np.ndarray:
    """−loss: the higher, the more likely a member."""
    return -np.asarray(loss, dtype=np.float64)


class LossAttack(Attack):
    """LOSS threshold attack (Yeom et al. 2018); needs only the target's per-example loss.

    >>> LossAttack().requires
    ('target.loss',)
    """

    name = "loss"

    def requirements(self) -> tuple[str, ...]:
        return ("target.loss",)

    def compute(self, inputs: AttackInputs) -> np.ndarray:
        return loss_scores(inputs.target.loss)


register_attack("loss", LossAttack)
