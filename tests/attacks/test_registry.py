"""The attack registry and parameter validation: clear errors that name what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from privaudit.attacks.scores import (
    Attack,
    AttackInputs,
    SignalSet,
    available_attacks,
    base,
    get_attack,
    missing_inputs,
    register_attack,
)
from privaudit.attacks.scores.loss import LossAttack
from privaudit.core.errors import ConfigError, EvidenceIncomplete


def test_unknown_attack_name_is_a_config_error_listing_the_available_ones() -> None:
    with pytest.raises(ConfigError) as err:
        get_attack("lirra")
    message = str(err.value)
    assert "'lirra'" in message
    for name in available_attacks():
        assert name in message


def test_registering_a_different_class_under_a_taken_name_is_refused() -> None:
    class Impostor(LossAttack):
        name = "loss"

    with pytest.raises(ConfigError, match="already registered"):
        register_attack("loss", Impostor)
    assert get_attack("loss").__class__ is LossAttack


def test_registering_under_a_name_other_than_the_class_name_is_refused() -> None:
    class Negated(LossAttack):
        name = "negated_loss"

    with pytest.raises(ConfigError, match="differs"):
        register_attack("other", Negated)
    with pytest.raises(ConfigError, match="Attack subclass"):
        register_attack("thing", dict)  # type: ignore[arg-type]
    assert "other" not in available_attacks()


def test_a_new_attack_is_usable_by_name_once_registered() -> None:
    class Doubled(Attack):
        name = "test_doubled_loss"

        def compute(self, inputs: AttackInputs) -> np.ndarray:
            return -2 * inputs.target.loss

    with base.ATTACKS.scoped():  # the registration is undone after the block
        register_attack("test_doubled_loss", Doubled)
        scores = get_attack("test_doubled_loss").score(AttackInputs(target=SignalSet(loss=[1.0])))
        assert scores.tolist() == [-2.0]
    assert "test_doubled_loss" not in available_attacks()


def test_an_unknown_parameter_names_itself_and_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as err:
        get_attack("lira", varience="fixed")
    message = str(err.value)
    assert "'varience'" in message and "variance" in message and "mode" in message


def test_a_bad_parameter_value_names_the_parameter_the_allowed_values_and_the_value() -> None:
    with pytest.raises(ConfigError) as err:
        get_attack("lira", variance="global")
    message = str(err.value)
    assert "attacks.lira.variance" in message
    assert "'per_example'" in message and "'fixed'" in message and "'global'" in message


@pytest.mark.parametrize(
    ("name", "params", "param"),
    [("min_k", {"k": 0.0}, "k"), ("min_k_pp", {"k": 1.5}, "k"), ("rmia", {"a": -0.1}, "a"),
     ("rmia", {"gamma": 0}, "gamma"), ("rmia", {"mode": "both"}, "mode")],
)
def test_out_of_range_parameters_are_refused_at_construction(name, params, param) -> None:
    with pytest.raises(ConfigError, match=rf"attacks\.{name}\.{param}"):
        get_attack(name, **params)


def test_every_finding_is_collected_before_reporting() -> None:
    with pytest.raises(ConfigError) as err:
        get_attack("rmia", a=2.0, gamma=-1.0)
    assert len(err.value.problems) == 2


def test_requirements_depend_on_the_mode() -> None:
    assert "keep" in get_attack("lira", mode="online").requires
    assert "keep" not in get_attack("lira", mode="offline").requires


def test_missing_inputs_lists_every_missing_input_in_order() -> None:
    inputs = AttackInputs(target=SignalSet(loss=[0.1]))
    assert missing_inputs(inputs, ["target.loss", "target.phi", "references.phi", "keep"]) == [
        "target.phi",
        "references (at least one reference model's signals)",
        "keep (n_refs × N membership mask)",
    ]
    with pytest.raises(EvidenceIncomplete, match="population_target"):
        get_attack("rmia").score(AttackInputs(
            target=SignalSet(loss=[0.1], prob_true=[0.9]),
            references=[SignalSet(loss=[0.2], prob_true=[0.8])],
        ))
