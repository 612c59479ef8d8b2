"""The shared contract of every registered attack (STYLE 11): a new attack is tested by being
registered. Synthetic worlds from ``conftest.py``: members have higher φ / lower loss."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from privaudit.attacks.metrics import evaluate_scores
from privaudit.attacks.scores import AttackInputs, SignalSet, available_attacks, get_attack
from privaudit.core.errors import EvidenceIncomplete

VARIANTS: list[tuple[str, dict[str, Any]]] = [(name, {}) for name in available_attacks()] + [
    ("lira", {"mode": "offline"}),
    ("lira", {"variance": "per_example"}),
    ("rmia", {"mode": "offline"}),
    ("rmia", {"tiebreak": False}),
]
IDS = [name + "".join(f"-{v}" for v in params.values()) for name, params in VARIANTS]


def test_the_built_in_battery_is_registered() -> None:
    assert set(available_attacks()) >= {
        "loss", "zlib", "min_k", "min_k_pp", "reference", "lira", "rmia"
    }


@pytest.mark.parametrize(("name", "params"), VARIANTS, ids=IDS)
def test_every_attack_returns_one_finite_score_per_example(world, name, params) -> None:
    scores = get_attack(name, **params).score(world.inputs)
    assert scores.shape == (world.inputs.n,)
    assert scores.dtype == np.float64
    assert np.all(np.isfinite(scores))


@pytest.mark.parametrize(("name", "params"), VARIANTS, ids=IDS)
def test_members_score_higher_so_every_attack_has_auc_above_half(world, name, params) -> None:
    scores = get_attack(name, **params).score(world.inputs)
    metrics = evaluate_scores(scores, world.is_member, n_bootstrap=50)
    assert metrics.auc_ci_low > 0.5, f"{name}{params}: AUC {metrics.auc:.3f}"


@pytest.mark.parametrize(("name", "params"), VARIANTS, ids=IDS)
def test_on_a_model_that_never_saw_the_data_auc_is_chance(null_world, name, params) -> None:
    null = null_world  # one fixed draw: each variant has a ~1% chance to miss at 99%
    scores = get_attack(name, **params).score(null.inputs)
    metrics = evaluate_scores(scores, null.is_member, confidence=0.99, n_bootstrap=100)
    assert metrics.auc_ci_low <= 0.5 <= metrics.auc_ci_high, f"AUC {metrics.auc:.3f}"


@pytest.mark.parametrize(("name", "params"), VARIANTS, ids=IDS)
def test_scores_follow_their_examples_when_the_examples_are_reordered(world, name, params) -> None:
    inputs = world.inputs
    perm = np.random.default_rng(3).permutation(inputs.n)
    shuffled = AttackInputs(
        target=inputs.target.take(perm),
        references=[r.take(perm) for r in inputs.references],
        keep=None if inputs.keep is None else inputs.keep[:, perm],
        population_target=inputs.population_target,
        population_references=inputs.population_references,
        population_keep=inputs.population_keep,
        reference_model=None if inputs.reference_model is None
        else inputs.reference_model.take(perm),
    )
    attack = get_attack(name, **params)
    np.testing.assert_allclose(attack.score(shuffled), attack.score(inputs)[perm])


@pytest.mark.parametrize(("name", "params"), VARIANTS, ids=IDS)
def test_missing_inputs_are_reported_by_name_before_any_work(name, params) -> None:
    attack = get_attack(name, **params)
    bare = AttackInputs(target=SignalSet(loss=[0.1, 0.2]))
    if set(attack.requires) <= {"target.loss"}:
        assert attack.score(bare).shape == (2,)
        return
    with pytest.raises(EvidenceIncomplete) as err:
        attack.score(bare)
    first_missing = next(r for r in attack.requires if r != "target.loss").split(".")[0]
    assert first_missing in str(err.value) and repr(name) in str(err.value)


def test_calibrated_attacks_beat_loss_at_low_fpr_when_examples_differ_in_difficulty(
    world_factory,
) -> None:
    # Intrinsic difficulty (sd 2 in logit units) swamps the membership effect (+1) for a plain
    # loss threshold; LiRA and RMIA compare each example with itself under reference models.
    hard = world_factory(n=2000, n_pop=1000, difficulty_sd=2.0, seed=7, lm=False)
    tpr = {}
    for name in ("loss", "lira", "rmia"):
        scores = get_attack(name).score(hard.inputs)
        m = evaluate_scores(scores, hard.is_member, fprs=(0.01,), n_bootstrap=20)
        assert not m.warnings
        tpr[name] = m.tpr_at_fpr["0.01"]
    for name in ("lira", "rmia"):
        assert tpr[name].ci_low > tpr["loss"].ci_high, tpr
