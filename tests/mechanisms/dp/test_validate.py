"""Checks before training: every problem collected, each naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from torch import nn

from privaudit.mechanisms.dp import DPConfig, check_dp_config, check_model_for_opacus

SCHEDULE: dict[str, Any] = {
    "client_sizes": [300, 250, 400],
    "rounds": 5,
    "local_epochs": 2,
    "batch_size": 32,
}
RECORD: dict[str, Any] = {"mode": "record", "noise_multiplier": 1.0, "delta": 1e-5}
CLIENT: dict[str, Any] = {"mode": "client", "noise_multiplier": 1.0, "delta": 1e-3}


@pytest.mark.parametrize("base", [RECORD, CLIENT, {"mode": "none"}])
def test_a_sound_config_has_no_problems(base: dict[str, Any]) -> None:
    assert check_dp_config(DPConfig(**base), **SCHEDULE) == []


@pytest.mark.parametrize(
    ("change", "schedule", "expected"),
    [
        ({"noise_multiplier": 0.0}, {}, "privacy.dp.noise_multiplier: must be > 0"),
        ({"noise_multiplier": -1.0}, {}, "(got -1.0)"),
        ({"noise_multiplier": None}, {}, "privacy.dp.noise_multiplier: give"),
        ({"target_epsilon": 3.0}, {}, "privacy.dp.target_epsilon: give noise_multiplier or"),
        ({"delta": None}, {}, "privacy.dp.delta: required with mode=record"),
        ({"delta": 0.004}, {}, "privacy.dp.delta: must be < 1/(smallest client size) = 1/250"),
        ({"max_grad_norm": 0.0}, {}, "privacy.dp.max_grad_norm: must be > 0 (got 0.0)"),
        ({}, {"batch_size": 350}, "privacy.dp.sample_rate: batch_size / client size"),
        ({}, {"batch_size": 0}, "privacy.dp.sample_rate"),
        ({}, {"client_sizes": [300, 0]}, "privacy.dp.sample_rate"),
        ({}, {"rounds": 0}, "rounds must be >= 1 (got 0)"),
        ({}, {"local_epochs": 0}, "local_epochs must be >= 1 (got 0)"),
        ({}, {"client_sizes": []}, "at least one client"),
    ],
)
def test_each_bad_record_setting_is_named(
    change: dict[str, Any], schedule: dict[str, Any], expected: str
) -> None:
    problems = check_dp_config(DPConfig(**(RECORD | change)), **(SCHEDULE | schedule))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"noise_multiplier": 0.0}, "privacy.dp.noise_multiplier: must be > 0"),
        ({"delta": 0.5}, "privacy.dp.delta: must be < 1/(number of clients) = 1/3"),
        ({"clip_norm": -1.0}, "privacy.dp.clip_norm: must be > 0 (got -1.0)"),
        ({"client_sample_rate": 0.0}, "privacy.dp.client_sample_rate: must be in (0, 1]"),
        ({"client_sample_rate": 1.5}, "(got 1.5)"),
        ({"client_sample_rate": 0.2}, "expected clients per round q·n must be >= 1"),
    ],
)
def test_each_bad_client_setting_is_named(change: dict[str, Any], expected: str) -> None:
    problems = check_dp_config(DPConfig(**(CLIENT | change)), **SCHEDULE)
    assert any(expected in p for p in problems), problems


def test_all_problems_are_collected_before_reporting() -> None:
    cfg = DPConfig(mode="record", noise_multiplier=0.0, delta=0.5, max_grad_norm=-1.0)
    problems = check_dp_config(cfg, **(SCHEDULE | {"batch_size": 1000}))
    fields = {p.split(":")[0] for p in problems}
    assert fields == {
        "privacy.dp.noise_multiplier",
        "privacy.dp.delta",
        "privacy.dp.max_grad_norm",
        "privacy.dp.sample_rate",
    }


def test_lora_model_with_frozen_base_and_head_passes(bert_lora: nn.Module) -> None:
    assert check_model_for_opacus(bert_lora) == []
    assert check_model_for_opacus(bert_lora, grad_sample_mode="ghost") == []


def test_a_frozen_batchnorm_passes_and_a_trainable_one_is_named() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.LSTM(4, 4))
    for p in model[1:].parameters():
        p.requires_grad_(False)
    assert check_model_for_opacus(model) == []
    for p in model.parameters():
        p.requires_grad_(True)
    problems = check_model_for_opacus(model)
    assert any("layer '1'" in p and "BatchNorm1d" in p for p in problems)
    assert any("layer '2'" in p and "LSTM" in p for p in problems)
    assert not any("layer '0'" in p for p in problems)


def test_a_peft_model_with_a_trainable_base_layer_is_named(bert_lora: nn.Module) -> None:
    name = "base_model.model.bert.encoder.layer.0.output.dense.weight"
    bert_lora.get_parameter(name).requires_grad_(True)
    problems = check_model_for_opacus(bert_lora)
    assert len(problems) == 1
    assert "base model must be frozen" in problems[0] and name in problems[0]


def test_a_model_with_nothing_to_train_is_reported() -> None:
    model = nn.Linear(2, 2).requires_grad_(False)
    assert "no trainable parameters" in check_model_for_opacus(model)[0]
