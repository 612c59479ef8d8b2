"""The shipped variants of a LoRA model: merged, int8, int4, NF4 — what each changes and that
every weight comes back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from privaudit.mechanisms.data import prepare_data
from privaudit.mechanisms.model.shipped import VARIANTS, quantize_nf4, quantize_rtn, shipped
from privaudit.mechanisms.models import (
    ModelBundle,
    adapter_state,
    set_adapter_state,
    state_sha256,
)
from privaudit.mechanisms.tasks import encode_records
from privaudit.unlearning.evaluate import per_example_loss
from tests.conftest import merge
from tests.mechanisms.test_models_lora import _bundle


@pytest.fixture(scope="module")
def trained_like() -> tuple[Any, ModelBundle, Any]:
    """A tiny model whose adapter is far from its initialisation (B ≠ 0), and some records."""
    from tests.conftest import TINY

    cfg, bundle = _bundle(merge(TINY, {"model": {"lora": {"top_layers": 1}}}))
    gen = torch.Generator().manual_seed(0)
    state = {n: t + 0.05 * torch.randn(t.shape, generator=gen)
             for n, t in adapter_state(bundle.model).items()}
    set_adapter_state(bundle.model, state)
    data = prepare_data(cfg.data, task="classification", k=2, seed=cfg.seed)
    encoded = encode_records(data.test[:40], bundle.tokenizer, labels=data.labels,
                             max_length=48)
    return cfg, bundle, encoded


def _everything(model: torch.nn.Module) -> str:
    return state_sha256({n: t for n, t in model.state_dict().items()})


def test_merged_variant_predicts_like_the_unmerged_adapter(trained_like: Any) -> None:
    _, bundle, data = trained_like
    before = per_example_loss(bundle.model, None, data, "classification")
    with shipped(bundle.model, "merged"):
        merged = per_example_loss(bundle.model, None, data, "classification")
    assert np.abs(before - merged).max() < 1e-5


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_restores_every_weight_byte_for_byte(trained_like: Any,
                                                           variant: str) -> None:
    _, bundle, data = trained_like
    sha = _everything(bundle.model)
    before = per_example_loss(bundle.model, None, data, "classification")
    with shipped(bundle.model, variant):
        inside = per_example_loss(bundle.model, None, data, "classification")
    assert _everything(bundle.model) == sha
    if variant != "merged":  # quantization moves the losses; fewer bits move them more
        assert np.abs(inside - before).max() > 1e-6


def test_fewer_bits_lose_more_of_the_model(trained_like: Any) -> None:
    _, bundle, data = trained_like
    ref = per_example_loss(bundle.model, None, data, "classification")
    gaps = {}
    for variant in ("int8", "int4"):
        with shipped(bundle.model, variant):
            gaps[variant] = float(np.abs(
                per_example_loss(bundle.model, None, data, "classification") - ref).mean())
    assert gaps["int8"] < gaps["int4"]


def test_round_to_nearest_keeps_each_channel_on_its_own_grid() -> None:
    w = torch.randn(16, 64, generator=torch.Generator().manual_seed(1))
    for bits in (8, 4):
        q = quantize_rtn(w, bits)
        scale = w.abs().amax(1, keepdim=True) / (2 ** (bits - 1) - 1)
        steps = q / scale
        assert torch.allclose(steps, steps.round(), atol=1e-4)  # on the grid
        assert bool(((q - w).abs() <= scale / 2 + 1e-6).all())  # the nearest point of it
        assert len(torch.unique(steps.round())) <= 2 ** bits - 1


def test_conv1d_channels_are_the_columns() -> None:
    w = torch.tensor([[1.0, 100.0], [0.4, 30.0]])  # Conv1D layout: (in, out)
    q = quantize_rtn(w, 2, channel_dim=1)
    assert q[:, 0].tolist() == [1.0, 0.0] and q[:, 1].tolist() == [100.0, 0.0]


def test_nf4_uses_sixteen_levels_per_block_from_bitsandbytes() -> None:
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(2))
    q = quantize_nf4(w)
    for row in range(8):  # a block of 64 = one row here: 16 NF4 levels × its absmax at most
        assert len(torch.unique(q[row])) <= 16
    assert float((q - w).abs().mean()) < 0.15 * float(w.abs().mean())


def test_an_unknown_variant_is_refused_by_name(trained_like: Any) -> None:
    _, bundle, _ = trained_like
    with pytest.raises(ValueError, match="int3"), shipped(bundle.model, "int3"):
        pass


def test_the_frozen_weights_cache_gives_the_same_model_and_is_reused(trained_like: Any) -> None:
    from privaudit.mechanisms.model.shipped import FrozenCache

    _, bundle, data = trained_like
    cache: FrozenCache = {}
    for variant in ("int4", "nf4"):
        with shipped(bundle.model, variant):
            plain = per_example_loss(bundle.model, None, data, "classification")
        for _ in range(2):  # filled on the first call, read on the second
            with shipped(bundle.model, variant, cache=cache):
                cached = per_example_loss(bundle.model, None, data, "classification")
            assert np.array_equal(plain, cached)
    frozen = [p for p in bundle.model.parameters() if not p.requires_grad and p.dim() == 2]
    assert cache and len(cache) < 2 * len(frozen)  # the merged LoRA bases are never cached
