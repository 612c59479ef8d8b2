from __future__ import annotations

from typing import Any

import pytest
import torch

from privaudit.audit.config import config_from_dict
from privaudit.core.errors import ConfigError
from privaudit.mechanisms.data import prepare_data
from privaudit.mechanisms.models import (
    adapter_state,
    apply_lora,
    base_state,
    load_base_model,
    load_tokenizer,
    state_sha256,
)
from privaudit.mechanisms.tasks import attach_features, encode_records, forward


def _setup(cfg_dict: dict[str, Any], top_layers: int | None) -> tuple[Any, Any, Any]:
    cfg_dict["model"]["tiny"] = {"layers": 3, "hidden": 32, "heads": 2, "intermediate": 64}
    cfg_dict["model"]["lora"]["top_layers"] = top_layers
    cfg = config_from_dict(cfg_dict)
    tok = load_tokenizer(cfg.model)
    base = load_base_model(cfg.model, tokenizer=tok, num_labels=4, seed=1)
    model, _ = apply_lora(cfg.model, base, seed=1)
    data = prepare_data(cfg.data, task="classification", k=2, seed=cfg.seed)
    enc = encode_records(data.test[:24], tok, labels=data.labels, max_length=48)
    return cfg, model, enc


def test_lora_goes_only_on_the_top_layers(tiny_config_dict: dict[str, Any]) -> None:
    _, model, _ = _setup(tiny_config_dict, top_layers=1)
    lora = [n for n in adapter_state(model) if "lora_" in n]
    assert lora and all(".layer.2." in n for n in lora)


def test_cached_prefix_gives_the_same_outputs_and_gradients_as_running_it(
    tiny_config_dict: dict[str, Any],
) -> None:
    _, model, enc = _setup(tiny_config_dict, top_layers=1)
    with torch.no_grad():  # make LoRA B non-zero so the adapter matters
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    cached = attach_features(enc, model)
    assert cached.features is not None and len(cached.features) == len(enc)
    model.eval()
    indices = list(range(len(enc)))
    plain = forward(model, enc.batch(indices), "classification")
    fast = forward(model, cached.batch(indices), "classification")
    assert torch.allclose(plain.logits, fast.logits, atol=1e-5)
    grads = []
    for batch in (enc.batch(indices), cached.batch(indices)):
        model.zero_grad()
        forward(model, batch, "classification").loss.sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], atol=1e-5), name


def test_prefix_wrapping_keeps_the_base_hash_and_freezes_the_base(
    tiny_config_dict: dict[str, Any],
) -> None:
    _, model, enc = _setup(tiny_config_dict, top_layers=2)
    before = state_sha256(base_state(model))
    attach_features(enc, model)
    assert state_sha256(base_state(model)) == before
    assert all(not p.requires_grad for n, p in model.named_parameters() if ".layer.0." in n)


def test_too_many_top_layers_is_a_config_error(tiny_config_dict: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"model\.lora\.top_layers: the base model has 3 layers"):
        _setup(tiny_config_dict, top_layers=5)


def test_a_shared_feature_cache_reuses_seen_records_and_gives_the_same_tensors(
    tiny_config_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from privaudit.mechanisms import prefix

    _, model, enc = _setup(tiny_config_dict, top_layers=1)
    fresh = attach_features(enc, model)
    cache: dict[Any, torch.Tensor] = {}
    attach_features(enc.subset(range(0, 24, 2)), model, cache=cache)  # another batch layout
    computed: list[int] = []
    real = prefix.compute_features

    def counting(m: Any, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        computed.append(len(input_ids))
        return real(m, input_ids, mask)

    monkeypatch.setattr(prefix, "compute_features", counting)
    shared = attach_features(enc, model, cache=cache)
    assert sum(computed) == 12  # only the 12 records the cache had not seen
    assert fresh.features is not None and shared.features is not None
    assert all(torch.equal(a, b) for a, b in zip(fresh.features, shared.features, strict=True))
