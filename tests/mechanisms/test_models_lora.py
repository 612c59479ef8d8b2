from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from privaudit.audit.config import config_from_dict
from privaudit.core.errors import ConfigError
from privaudit.mechanisms.data import prepare_data
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.models import (
    ModelBundle,
    adapter_state,
    apply_lora,
    base_state,
    load_adapter,
    load_base_model,
    load_tokenizer,
    save_adapter,
    set_adapter_state,
    state_sha256,
)
from privaudit.mechanisms.tasks import encode_records


def _bundle(cfg_dict: dict[str, Any]) -> tuple[Any, ModelBundle]:
    cfg = config_from_dict(cfg_dict)
    tok = load_tokenizer(cfg.model)
    base = load_base_model(cfg.model, tokenizer=tok, num_labels=4, seed=cfg.seed)
    base_sha = state_sha256(base.state_dict())
    model, h = apply_lora(cfg.model, base, seed=cfg.seed)
    return cfg, ModelBundle(model, tok, cfg.model.task, base_sha, h)


def test_only_lora_and_head_are_trainable(tiny_config_dict: dict[str, Any]) -> None:
    _, bundle = _bundle(tiny_config_dict)
    names = list(adapter_state(bundle.model))
    assert names
    assert all("lora_" in n or "classifier" in n for n in names)


def test_lora_training_leaves_base_weights_unchanged(tiny_config_dict: dict[str, Any]) -> None:
    cfg, bundle = _bundle(tiny_config_dict)
    data = prepare_data(cfg.data, task="classification", k=2, seed=cfg.seed)

    def enc(rs: list[Any]) -> Any:
        return encode_records(rs, bundle.tokenizer, labels=data.labels, max_length=48)

    before_base = state_sha256(base_state(bundle.model))
    before_adapter = state_sha256(adapter_state(bundle.model))
    result = train_federation(
        cfg.recipe,
        bundle,
        {c: enc(r) for c, r in data.clients.items()},
        enc(data.test),
        initial_state=adapter_state(bundle.model),
        seed=cfg.seed,
    )
    assert state_sha256(base_state(bundle.model)) == before_base
    assert result.final_sha256 != before_adapter  # the adapter did learn


def test_adapter_round_trips_through_safetensors(
    tmp_path: Path, tiny_config_dict: dict[str, Any]
) -> None:
    _, bundle = _bundle(tiny_config_dict)
    state = adapter_state(bundle.model)
    digest = save_adapter(state, tmp_path / "a" / "adapter.safetensors")
    loaded = load_adapter(tmp_path / "a" / "adapter.safetensors")
    assert state_sha256(loaded) == digest == state_sha256(state)


def test_state_hash_changes_with_one_value_and_not_with_order() -> None:
    a = {"x": torch.zeros(3), "y": torch.ones(2)}
    b = {"y": torch.ones(2), "x": torch.zeros(3)}
    assert state_sha256(a) == state_sha256(b)
    c = {"x": torch.tensor([0.0, 0.0, 1e-7]), "y": torch.ones(2)}
    assert state_sha256(a) != state_sha256(c)


def test_setting_a_mismatched_adapter_state_is_refused(tiny_config_dict: dict[str, Any]) -> None:
    _, bundle = _bundle(tiny_config_dict)
    state = adapter_state(bundle.model)
    state.pop(next(iter(state)))
    with pytest.raises(ConfigError, match="adapter state does not match"):
        set_adapter_state(bundle.model, state)


def test_unknown_lora_target_module_is_a_config_error(tiny_config_dict: dict[str, Any]) -> None:
    tiny_config_dict["model"]["lora"]["target_modules"] = ["q_proj"]
    with pytest.raises(
        ConfigError, match=r"model\.lora\.target_modules: no module named \['q_proj'\]"
    ):
        _bundle(tiny_config_dict)


def test_a_base_path_that_is_not_a_model_directory_is_a_config_error(
    tmp_path: Path, tiny_config_dict: dict[str, Any]
) -> None:
    tiny_config_dict["model"]["base"] = str(tmp_path)
    with pytest.raises(ConfigError, match=r"model\.base: must be 'minilm', 'tiny' or a local"):
        _bundle(tiny_config_dict)


def test_bundled_minilm_loads_from_the_package_with_a_head() -> None:
    cfg = config_from_dict({"model": {"base": "minilm"}})
    tok = load_tokenizer(cfg.model)
    model = load_base_model(cfg.model, tokenizer=tok, num_labels=4, seed=0)
    assert model.config.model_type == "bert"
    assert model.config.num_hidden_layers == 6
    out = model(**tok(["hello"], return_tensors="pt"))
    assert out.logits.shape == (1, 4)
