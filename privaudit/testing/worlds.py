"""Synthetic worlds of attack signals: no model, exact control of membership, numpy only.

Every example i has an intrinsic difficulty d_i (its confidence logit on a model that never saw
it). A model that trained on i adds ``effect`` to it; every model adds its own noise. So
φ = d + effect·IN + noise, p_y = sigmoid(φ), loss = −log p_y. Members of the target are half
the examples; each reference model has each example IN for exactly half of the references
(balanced keep masks, as in Carlini et al.'s code). Population points z are extra examples,
never in the target. The language-model signals (tokens, μ/σ, zlib) are derived from the same
φ so that every attack sees the membership effect.

>>> w = attack_world(n=10, n_refs=2, n_pop=4, seed=1)
>>> w.inputs.n, int(w.is_member.sum()), len(w.inputs.references)
(10, 5, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from privaudit.attacks.scores import AttackInputs, SignalSet

__all__ = ["World", "attack_world", "null_world", "reordered"]


@dataclass(frozen=True)
class World:
    """Attack inputs with the truth: ``is_member[i]`` says whether example i trained the target."""

    inputs: AttackInputs
    is_member: np.ndarray


def _balanced_keep(rng: np.random.Generator, n_refs: int, n: int) -> np.ndarray:
    order = np.argsort(rng.random((n_refs, n)), axis=0)
    return order < n_refs // 2


def _signals(
    phi: np.ndarray, d: np.ndarray, rng: np.random.Generator, zlen: np.ndarray, lm: bool
) -> SignalSet:
    loss = np.logaddexp(0.0, -phi)
    if not lm:
        return SignalSet(loss=loss, phi=phi, prob_true=1.0 / (1.0 + np.exp(-phi)))
    lengths = 5 + np.arange(phi.size) % 11
    tok_lp, tok_mu, tok_sd = [], [], []
    for i, t in enumerate(lengths):
        tok_lp.append(-np.logaddexp(0.0, -(phi[i] + 0.5 * rng.standard_normal(t))))
        tok_mu.append(-np.logaddexp(0.0, -(d[i] + 0.5 * rng.standard_normal(t))) - 0.5)
        tok_sd.append(1.0 + 0.2 * np.abs(rng.standard_normal(t)))
    return SignalSet(
        loss=loss, phi=phi, prob_true=1.0 / (1.0 + np.exp(-phi)), token_logprobs=tok_lp,
        token_mu=tok_mu, token_sigma=tok_sd, nbytes_text=2 * zlen, zlib_len=zlen,
    )


def attack_world(
    *,
    n: int = 400,
    n_refs: int = 8,
    n_pop: int = 200,
    difficulty_sd: float = 1.0,
    effect: float = 1.0,
    noise: float = 0.3,
    seed: int = 0,
    lm: bool = True,
) -> World:
    """A world whose target memorises: members' φ is ``effect`` higher (module docstring).

    ``n`` audit examples (half members), ``n_refs`` reference models, ``n_pop`` population
    points; ``lm``: also the language-model signals (tokens, μ/σ, zlib lengths).
    """
    rng = np.random.default_rng(seed)
    d = rng.normal(0.0, difficulty_sd, n + n_pop)
    zlen = rng.integers(30, 80, n + n_pop).astype(float)
    member = np.zeros(n + n_pop, dtype=bool)
    member[rng.permutation(n)[: n // 2]] = True
    keep = _balanced_keep(rng, n_refs, n + n_pop)

    def model(inside: np.ndarray) -> SignalSet:
        phi = d + effect * inside + noise * rng.standard_normal(n + n_pop)
        return _signals(phi, d, rng, zlen, lm)

    target = model(member)
    refs = [model(keep[j]) for j in range(n_refs)]
    ref_model = model(np.zeros(n + n_pop, dtype=bool))
    audit, pop = np.arange(n), np.arange(n, n + n_pop)
    inputs = AttackInputs(
        target=target.take(audit),
        references=[r.take(audit) for r in refs],
        keep=keep[:, audit],
        population_target=target.take(pop),
        population_references=[r.take(pop) for r in refs],
        population_keep=keep[:, pop],
        reference_model=ref_model.take(audit),
    )
    return World(inputs=inputs, is_member=member[audit])


def null_world(*, seed: int = 0, **kwargs: Any) -> World:
    """A world whose target never saw the data: members and non-members from one distribution
    (``effect`` 0); other keywords as :func:`attack_world`."""
    return attack_world(effect=0.0, seed=seed, **kwargs)


def reordered(inputs: AttackInputs, perm: np.ndarray) -> AttackInputs:
    """``inputs`` with the audit examples in the order ``perm`` (population points unchanged)."""
    return AttackInputs(
        target=inputs.target.take(perm),
        references=[r.take(perm) for r in inputs.references],
        keep=None if inputs.keep is None else inputs.keep[:, perm],
        population_target=inputs.population_target,
        population_references=inputs.population_references,
        population_keep=inputs.population_keep,
        reference_model=None if inputs.reference_model is None
        else inputs.reference_model.take(perm),
    )
