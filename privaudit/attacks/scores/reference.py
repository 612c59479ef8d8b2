"""Reference-model calibration (Carlini et al., "Extracting Training Data from Large Language
Models", USENIX Security 2021, §5.2 "Comparing to other neural language models"; as a
membership score, Watson et al., "On the Importance of Difficulty Calibration in Membership
Inference Attacks", ICLR 2022).

A second model trained on the same distribution WITHOUT the audited examples tells how hard
each example is intrinsically; subtracting its loss removes that difficulty, which the LOSS
attack confounds with membership:

    score(x) = −(loss_target(x) − loss_ref(x)) = loss_ref(x) − loss_target(x)

For causal LMs the losses are log-perplexities, so this is log-ppl_ref − log-ppl_target.
Higher = more likely member.

>>> np.round(reference_scores(np.array([0.2, 1.5]), np.array([1.0, 1.6])), 6).tolist()
[0.8, 0.1]
"""

from __future__ import annotations

import numpy as np

from privaudit.attacks.scores.base import (
    Attack,
    AttackInputs,
    register_attack,
    required,
)

__all__ = ["ReferenceAttack", "reference_scores"]


def reference_scores(loss_target: np.ndarray, loss_reference: np.ndarray) -> np.ndarray:
    """−(loss_target − loss_reference)."""
    return np.asarray(loss_reference, dtype=np.float64) - np.asarray(loss_target, dtype=np.float64)


class ReferenceAttack(Attack):
    """Difficulty calibration by one reference model (``AttackInputs.reference_model``)."""

    name = "reference"

    def requirements(self) -> tuple[str, ...]:
        return ("target.loss", "reference_model.loss")

    def uses_references(self, reference_model: str) -> bool:
        return reference_model == "references"

    def uses_base_model(self, reference_model: str) -> bool:
        return reference_model == "base"

    def compute(self, inputs: AttackInputs) -> np.ndarray:
        ref = required(inputs.reference_model, "reference_model")
        return reference_scores(inputs.target.loss, ref.loss)


register_attack("reference", ReferenceAttack)
