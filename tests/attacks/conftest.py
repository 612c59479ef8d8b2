"""A synthetic world of signals for the attack tests: no model, exact control of membership.

Every example i has an intrinsic difficulty d_i (its confidence logit on a model that never saw
it). A model that trained on i adds ``effect`` to it; every model adds its own noise. So
φ = d + effect·IN + noise, p_y = sigmoid(φ), loss = −log p_y. Members of the target are half
the examples; each reference model has each example IN for exactly half of the references
(balanced keep masks, as in Carlini et al.'s code). Population points z are extra examples,
never in the target. The language-model signals (tokens, μ/σ, zlib) are derived from the same
φ so that every attack sees the membership effect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from privaudit.attacks.scores import AttackInputs, SignalSet


@dataclass(frozen=True)
class World:
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


def make_world(
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


@pytest.fixture
def world_factory() -> Callable[..., World]:
    return make_world


@pytest.fixture(scope="session")
def world() -> World:
    return make_world()


@pytest.fixture(scope="session")
def null_world() -> World:
    """Members and non-members from the same distribution: the target never saw the data."""
    return make_world(effect=0.0)
