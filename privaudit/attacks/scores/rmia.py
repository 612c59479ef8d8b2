"""Robust membership inference, RMIA (Zarifzadeh, Liu, Chang, Shokri, "Low-Cost
High-Power Membership Inference Attacks", ICML 2024).

Pr(x|θ) = p_y = softmax(f_θ(x))_y (``SignalSet.prob_true``). Pr(x) averages it over reference
models θ′:

- ``mode="online"``: Pr(x) = mean over ALL references (IN and OUT);
- ``mode="offline"``: Pr(x) = ½[(1 + a)·mean_OUT Pr(x|θ′) + (1 − a)], a ∈ [0, 1] corrects for
  having OUT models only (a = 1: plain OUT mean); :func:`tune_offline_a` picks a by attacking
  one reference model with the others, as the paper does.

Population points z are drawn from the non-member pool (``AttackInputs.population_*``); their
Pr(z) is computed the same way (OUT = where ``population_keep`` is False, all when None). Then

    LR(x, z) = [Pr(x|θ)/Pr(x)] / [Pr(z|θ)/Pr(z)],   score(x) = |{z : LR(x, z) ≥ γ}| / |Z|.

Higher = more likely member. Computed as ratio_z ≤ ratio_x/γ on sorted ratios, O((N+Z) log Z).

With one population shared by all x the score is a step function of ratio_x = Pr(x|θ)/Pr(x):
it ranks examples exactly as ratio_x does, but coarsened to |Z| + 1 levels, and ties among
the top examples cost TPR at low FPR. ``tiebreak=True`` (default) adds ratio_x/(1+ratio_x)/(2|Z|),
less than half a step, so ties are broken by ratio_x and the score stays within 1/(2|Z|) of the
paper's fraction; ``tiebreak=False`` returns the paper's fraction exactly.

Worked example, one reference (OUT), offline a = 0: x has p = 0.9 under the target and 0.5
under the reference, so Pr(x) = ½(0.5 + 1) = 0.75 and ratio_x = 1.2; z₁…z₄ have ratios
0.8, 1.0, 1.2, 1.5 so LR(x, z) = 1.5, 1.2, 1.0, 0.8 and with γ = 1, 3 of 4 count:

>>> rmia_scores(np.array([0.9]), np.array([[0.5]]), None,
...             np.array([0.6, 0.75, 0.9, 0.75]), np.array([[0.5, 0.5, 0.5, 0.0]]), None,
...             mode="offline", a=0.0, gamma=1.0, tiebreak=False).tolist()
[0.75]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field
from sklearn.metrics import roc_auc_score

from privaudit.attacks.scores.base import (
    Attack,
    AttackInputs,
    AttackParams,
    register_attack,
    required,
)
from privaudit.core.errors import EvidenceIncomplete

__all__ = ["RMIAAttack", "RMIAParams", "marginal_prob", "rmia_scores", "tune_offline_a"]

_TINY = 1e-300


def marginal_prob(
    ref_prob: np.ndarray, keep: np.ndarray | None, *, mode: str, a: float, what: str = "x"
) -> np.ndarray:
    """Pr(x) from reference p_y ``ref_prob`` (n_refs, N) and ``keep`` (True = IN)."""
    if mode == "online":
        return np.maximum(ref_prob.mean(axis=0), _TINY)
    out = np.ones(ref_prob.shape, dtype=bool) if keep is None else ~np.asarray(keep, dtype=bool)
    n_out = out.sum(axis=0)
    if np.any(n_out == 0):
        raise EvidenceIncomplete(
            f"offline RMIA needs >= 1 OUT reference per point; {int(np.sum(n_out == 0))} "
            f"{what} points have none"
        )
    mean_out = np.where(out, ref_prob, 0.0).sum(axis=0) / n_out
    return np.maximum(0.5 * ((1.0 + a) * mean_out + (1.0 - a)), _TINY)


def rmia_scores(
    target_prob: np.ndarray,
    ref_prob: np.ndarray,
    keep: np.ndarray | None,
    pop_target_prob: np.ndarray,
    pop_ref_prob: np.ndarray,
    pop_keep: np.ndarray | None,
    *,
    mode: Literal["online", "offline"] = "online",
    a: float = 0.3,
    gamma: float = 1.0,
    tiebreak: bool = True,
) -> np.ndarray:
    """RMIA scores of N examples against Z population points (arrays of p_y; refs n_refs × ·)."""
    pr_x = marginal_prob(np.asarray(ref_prob, float), keep, mode=mode, a=a, what="x")
    pr_z = marginal_prob(np.asarray(pop_ref_prob, float), pop_keep, mode=mode, a=a, what="z")
    ratio_x = np.asarray(target_prob, dtype=np.float64) / pr_x
    ratio_z = np.sort(np.asarray(pop_target_prob, dtype=np.float64) / pr_z)
    counts = np.searchsorted(ratio_z, ratio_x / gamma, side="right")
    scores = counts / ratio_z.size
    if tiebreak:
        scores = scores + ratio_x / (1.0 + ratio_x) / (2.0 * ratio_z.size)
    return np.asarray(scores, dtype=np.float64)


class RMIAParams(AttackParams):
    """``mode``: online | offline; ``a`` in [0, 1] (offline only); ``gamma`` > 0 (1 or 2);
    ``tiebreak``: break ties of the fraction by ratio_x (see the module docstring)."""

    mode: Literal["online", "offline"] = "online"
    a: float = Field(default=0.3, ge=0.0, le=1.0)
    gamma: float = Field(default=1.0, gt=0.0)
    tiebreak: bool = True


def _stack(sets: Sequence[object], what: str) -> np.ndarray:
    return np.stack([required(getattr(s, "prob_true", None), what) for s in sets])


class RMIAAttack(Attack):
    """RMIA (Zarifzadeh et al. 2024) on p_y; needs references and population points z."""

    name = "rmia"
    Params = RMIAParams
    params: RMIAParams

    def requirements(self) -> tuple[str, ...]:
        return ("target.prob_true", "references.prob_true", "population.prob_true")

    def tune(self, inputs: AttackInputs) -> Attack:
        """Offline mode with ``a`` not given and ≥ 4 references: ``a`` fitted by
        :func:`tune_offline_a` (the paper's procedure), else unchanged."""
        if (self.params.mode != "offline" or "a" in self.params.model_fields_set
                or len(inputs.references) < 4):
            return self
        fitted = tune_offline_a(inputs, gamma=float(self.params.gamma))
        return RMIAAttack(**(self.params.model_dump(exclude_unset=True) | {"a": fitted}))

    def compute(self, inputs: AttackInputs) -> np.ndarray:
        pop = required(inputs.population_target, "population_target")
        return rmia_scores(
            required(inputs.target.prob_true, "target.prob_true"),
            _stack(inputs.references, "references.prob_true"),
            inputs.keep,
            required(pop.prob_true, "population_target.prob_true"),
            _stack(inputs.population_references, "population_references.prob_true"),
            inputs.population_keep,
            mode=self.params.mode,
            a=self.params.a,
            gamma=self.params.gamma,
            tiebreak=self.params.tiebreak,
        )


def tune_offline_a(
    inputs: AttackInputs, *, gamma: float = 1.0, grid: Sequence[float] | None = None
) -> float:
    """The a of ``grid`` (default 0, 0.1, …, 1) with the best AUC when reference 0 is attacked
    as if it were the target, its keep row as the truth, the other references as references
    (the paper's procedure). Needs >= 2 references and ``keep``; ties go to the smaller a."""
    refs, keep = inputs.references, inputs.keep
    if len(refs) < 2 or keep is None or inputs.population_target is None:
        raise EvidenceIncomplete("tune_offline_a needs >= 2 references, keep and a population")
    labels = keep[0]
    if labels.all() or not labels.any():
        raise EvidenceIncomplete("tune_offline_a: reference 0 must have IN and OUT examples")
    pop_keep = inputs.population_keep
    best_a, best_auc = 0.0, -1.0
    for a in np.linspace(0.0, 1.0, 11) if grid is None else grid:
        scores = rmia_scores(
            _stack(refs[:1], "references.prob_true")[0],
            _stack(refs[1:], "references.prob_true"),
            keep[1:],
            _stack(inputs.population_references[:1], "population_references.prob_true")[0],
            _stack(inputs.population_references[1:], "population_references.prob_true"),
            None if pop_keep is None else pop_keep[1:],
            mode="offline",
            a=float(a),
            gamma=gamma,
            tiebreak=True,
        )
        auc = float(roc_auc_score(labels, scores))
        if auc > best_auc:
            best_a, best_auc = float(a), auc
    return best_a


register_attack("rmia", RMIAAttack)
