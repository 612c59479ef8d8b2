"""The attack contract beyond what every registered name is checked for in
``tests/test_common.py`` (the public kit's ``check_attack``): every parameter variant that
changes how an attack scores passes the same kit, and calibrated attacks earn their keep.
Synthetic worlds from ``conftest.py``: members have higher φ / lower loss."""

from __future__ import annotations

from typing import Any

import pytest

from privaudit.attacks.metrics import evaluate_scores
from privaudit.attacks.scores import available_attacks, get_attack
from privaudit.attacks.scores.base import ATTACKS
from privaudit.testing import check_attack

#: parameter variants that score differently from the attack's defaults
VARIANTS: list[tuple[str, dict[str, Any]]] = [
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
def test_every_parameter_variant_keeps_the_attack_contract(
    world, null_world, name, params
) -> None:
    check_attack(ATTACKS.get(name), params, world=world, null=null_world)


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
