"""``model.device`` and ``model.dtype``: the config's checks, the machine's checks before a run,
and a frozen base in bfloat16 under float32 adapters, head, DP-SGD and signals.

No GPU here: placement on CUDA is not exercised; ``auto`` is checked with CUDA faked as
available, without moving anything (``benchmarks/gpu_smoke.py`` runs the demo on a GPU).
"""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from privaudit.attacks.signals import compute_signals
from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.audit.preflight import preflight
from privaudit.core.errors import EXIT_USAGE, ConfigError
from privaudit.mechanisms.data import PreparedData, prepare_data
from privaudit.mechanisms.dp import ClientAccountant, make_private
from privaudit.mechanisms.federated import ExampleLoss
from privaudit.mechanisms.model.device import device_problems, resolve_device
from privaudit.mechanisms.models import (
    adapter_state,
    apply_lora,
    base_state,
    load_base_model,
    load_tokenizer,
    set_adapter_state,
    state_sha256,
)
from privaudit.mechanisms.tasks import EncodedSet, attach_features, encode_records, forward
from tests.audit.bad_input_helpers import run_main
from tests.conftest import TINY, merge


def _cfg(**model: Any) -> AuditConfig:
    return config_from_dict(merge(TINY, {"model": model}))


def _no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# --- the config ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "CPU", "mps"])
def test_a_bad_device_is_refused_naming_the_field_and_the_allowed_values(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        _cfg(device=bad)
    (problem,) = err.value.problems
    assert problem.startswith("model.device: must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
    assert f"(got {bad!r})" in problem


def test_a_bad_dtype_is_refused_naming_the_field_and_the_allowed_values() -> None:
    with pytest.raises(ConfigError) as err:
        _cfg(dtype="half")
    (problem,) = err.value.problems
    assert problem.startswith("model.dtype:")
    assert all(v in problem for v in ("'float32'", "'bfloat16'", "'float16'"))


def test_device_defaults_to_auto_and_dtype_to_float32_and_auto_stays_as_given() -> None:
    cfg = config_from_dict(TINY)
    assert (cfg.model.device, cfg.model.dtype) == ("auto", "float32")
    written = yaml.safe_load(cfg.to_yaml())["model"]
    assert (written["device"], written["dtype"]) == ("auto", "float32")  # not resolved
    assert _cfg(device="cuda:1").model.device == "cuda:1"  # valid config on any machine


# --- the machine -----------------------------------------------------------------------------


def test_auto_resolves_to_cuda_when_cuda_is_available_and_to_cpu_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")
    _no_cuda(monkeypatch)
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_without_cuda_is_refused_by_preflight_naming_model_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_cuda(monkeypatch)
    for setting in ("cuda", "cuda:0"):
        with pytest.raises(ConfigError) as err:
            preflight(_cfg(device=setting))
        assert err.value.exit_code == EXIT_USAGE == 2
        assert any(p.startswith("model.device: CUDA is not available") for p in err.value.problems)
    with pytest.raises(ConfigError, match=r"model\.device: CUDA is not available"):
        resolve_device("cuda")  # and a model is never built there


def test_cuda_without_cuda_exits_2_from_a_dry_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_cuda(monkeypatch)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(merge(TINY, {"model": {"device": "cuda"}})), encoding="utf-8")
    outcome = run_main("run", path, "--out", tmp_path / "run", "--dry-run")
    assert outcome.code == 2, outcome.text
    assert "model.device" in outcome.err and "CUDA is not available" in outcome.err
    assert not (tmp_path / "run").exists()


def test_a_cuda_index_past_the_machines_devices_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert device_problems(_cfg(device="cuda:1").model) == []
    (problem,) = device_problems(_cfg(device="cuda:2").model)
    assert problem.startswith("model.device: no CUDA device 2 on this machine (it has 2")


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_float16_on_the_cpu_is_refused_suggesting_bfloat16_or_float32(
    monkeypatch: pytest.MonkeyPatch, device: str
) -> None:
    _no_cuda(monkeypatch)
    (problem,) = device_problems(_cfg(device=device, dtype="float16").model)
    assert problem.startswith("model.dtype: float16 is not supported on the CPU")
    assert "bfloat16 or float32" in problem
    assert device_problems(_cfg(device=device, dtype="bfloat16").model) == []


# --- a bfloat16 base -------------------------------------------------------------------------


def _model(task: str = "classification", **model: Any) -> tuple[AuditConfig, Any, Any]:
    patch: dict[str, Any] = {"task": task, **model}
    cfg = config_from_dict(merge(TINY, {"model": patch, "data": {"public_records": 20}}))
    tok = load_tokenizer(cfg.model)
    labels = len(_data(task).labels or []) if task == "classification" else None
    base = load_base_model(cfg.model, tokenizer=tok, num_labels=labels, seed=0)
    model_, _ = apply_lora(cfg.model, base, seed=0)
    return cfg, model_, tok


@cache
def _data(task: str) -> PreparedData:
    cfg = config_from_dict(merge(TINY, {"model": {"task": task}, "data": {"public_records": 20}}))
    return prepare_data(cfg.data, task=task, k=2, seed=0)


def _encoded(tok: Any, model: Any, task: str, n: int = 12) -> EncodedSet:
    data = _data(task)
    enc = encode_records(data.test[:n], tok, labels=data.labels, max_length=32)
    return attach_features(enc, model)


def test_a_bfloat16_base_keeps_adapter_and_head_float32_and_the_same_initial_adapter() -> None:
    _, model, _ = _model(dtype="bfloat16", device="cpu")
    _, model32, _ = _model(dtype="float32", device="cpu")
    frozen = [p for p in model.parameters() if not p.requires_grad]
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert frozen and all(p.dtype == torch.bfloat16 for p in frozen)
    assert any("classifier" in n for n in trainable) and any("lora_" in n for n in trainable)
    assert all(p.dtype == torch.float32 for p in trainable.values())
    state = adapter_state(model)
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in state.values())
    assert state_sha256(state) == state_sha256(adapter_state(model32))  # float32 LoRA init
    assert len(state_sha256(base_state(model))) == 64  # a bfloat16 base hashes too


@pytest.mark.parametrize("task", ["classification", "causal-lm"])
def test_a_bfloat16_base_gives_finite_float32_losses_close_to_float32_ones(task: str) -> None:
    """Forward, backward and the attacks' signals under a bfloat16 base (with the frozen
    prefix cached, in bfloat16) stay within 5e-2 of the float32 model's."""
    losses, signals = {}, {}
    for dtype in ("float32", "bfloat16"):
        _, model, tok = _model(task, dtype=dtype, lora={"rank": 4, "alpha": 8, "top_layers": 1},
                               tiny={"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64})
        data = _encoded(tok, model, task)
        assert data.features is not None
        assert data.features[0].dtype == getattr(torch, dtype)
        model.train()
        out = forward(model, data.batch(range(len(data))), task)
        assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss).all()
        out.loss.sum().backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all()
                   for g in grads)
        losses[dtype] = out.loss.detach()
        signals[dtype] = compute_signals(model, data, task=task).loss
    torch.testing.assert_close(losses["bfloat16"], losses["float32"], atol=5e-2, rtol=0)
    assert abs(signals["bfloat16"] - signals["float32"]).max() < 5e-2


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_dp_sgd_with_a_bfloat16_base_takes_a_finite_float32_step(mode: str) -> None:
    """Opacus' per-sample gradients (hooks) or ghost norms run on the float32 trainable
    modules of a bfloat16 base; the noisy step leaves a finite float32 adapter."""
    _, model, tok = _model(dtype="bfloat16", device="cpu")
    data = _encoded(tok, model, "classification", n=8)
    with torch.no_grad():  # lora_B starts at zero: make every LoRA gradient non-trivial
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    start = adapter_state(model)
    params = [p for p in model.parameters() if p.requires_grad]
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.arange(len(data))), batch_size=8)
    batch = data.batch(range(len(data)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = make_private(model, torch.optim.SGD(params, lr=0.1), loader, noise_multiplier=1.0,
                           max_grad_norm=1.0, accountant=ClientAccountant("rdp"),
                           grad_sample_mode=mode, criterion=ExampleLoss("classification"),
                           generator=torch.Generator().manual_seed(0))
        logits = run.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        assert logits.dtype == torch.float32
        run.criterion(logits, batch.labels).backward()
        if mode == "hooks":
            samples = [p.grad_sample for p in params]
            assert all(s.shape[0] == len(data) and s.dtype == torch.float32
                       and torch.isfinite(s).all() for s in samples)
        run.optimizer.step()
        run.finish()
    after = adapter_state(model)
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in after.values())
    assert any(not torch.equal(after[n], start[n]) for n in start)
    set_adapter_state(model, start)  # the state travels back onto the model
    assert state_sha256(adapter_state(model)) == state_sha256(start)
