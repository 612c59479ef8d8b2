"""SISA: exact erasure by retraining only the affected shard from its last clean checkpoint."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace
from typing import cast

import pytest
import torch

from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.audit.stages.erase import run_erase
from privaudit.core.progress import PlainReporter
from privaudit.mechanisms.dp.accounting import ClientAccountant
from privaudit.mechanisms.dp.calibration import calibrate_noise, poisson_schedule
from privaudit.mechanisms.federated.recipe import TrainingRecipe
from privaudit.mechanisms.models import load_adapter, set_adapter_state, state_sha256
from privaudit.mechanisms.tasks import forward
from privaudit.unlearning import sisa as sisa_module
from privaudit.unlearning.base import UnlearnedModel, UnlearningContext
from privaudit.unlearning.evaluate import per_example_loss
from privaudit.unlearning.ledger import erased_so_far, read_ledger
from privaudit.unlearning.requests import ErasureRequest
from privaudit.unlearning.sisa import (
    Sisa,
    SisaLayout,
    _slice_recipe,
    shard_noise_multiplier,
    shard_recipe,
    train_shard,
)
from tests.conftest import TINY, merge
from tests.unlearning.conftest import SisaRun


def _layout(sisa_run: SisaRun) -> SisaLayout:
    ledger = read_ledger(sisa_run.run)
    return SisaLayout.from_json(json.loads(sisa_run.run.path(ledger["sisa"]["layout"]).read_text()))


def _erase(sisa_run: SisaRun, rid: str, record: str) -> tuple[UnlearnedModel, UnlearnedModel]:
    ctx = sisa_run.ctx
    before = Sisa(ctx.ucfg).start_model(ctx, read_ledger(sisa_run.run))
    request = ErasureRequest(id=rid, kind="record", ids=[record])
    run_erase(ctx, [request], ["sisa"], PlainReporter(quiet=True), oracle=False)
    after = UnlearnedModel.load(sisa_run.run.path("models", "sisa", rid, "adapter.safetensors"))
    return before, after


def test_sisa_layout_is_disjoint_and_covers_the_training_data(sisa_run: SisaRun) -> None:
    layout = _layout(sisa_run)
    ids = [i for shard in layout.slices for part in shard for i in part]
    assert len(ids) == len(set(ids))
    assert set(ids) == {r.id for r in sisa_run.ctx.data.training}
    assert layout.shards == 2 and all(len(shard) == 3 for shard in layout.slices)


def test_sisa_erasure_equals_retraining_the_shard(sisa_run: SisaRun) -> None:
    """A record in the LAST slice: the shard restarts from the checkpoint after slice 2, and
    ends byte-identical to training the shard from scratch without the record."""
    layout = _layout(sisa_run)
    record = layout.slices[1][2][0]
    before, after = _erase(sisa_run, "late", record)
    erased = frozenset(erased_so_far(read_ledger(sisa_run.run)))
    assert record in erased
    scratch = train_shard(sisa_run.ctx, layout, 1, excluded=erased)
    assert state_sha256(after.states[1]) == state_sha256(scratch.checkpoints[-1])
    assert state_sha256(after.states[1]) != state_sha256(before.states[1])
    assert state_sha256(after.states[0]) == state_sha256(before.states[0])  # other shard
    written = sorted(p.relative_to(sisa_run.run.path("models", "sisa", "late")).as_posix()
                     for p in sisa_run.run.path("models", "sisa", "late").rglob("*.safetensors"))
    assert written == ["adapter.safetensors", "shard-01/slice-03/adapter.safetensors"]


def test_sisa_erasure_in_the_first_slice_retrains_the_whole_shard_exactly(
    sisa_run: SisaRun,
) -> None:
    layout = _layout(sisa_run)
    record = layout.slices[0][0][0]
    before, after = _erase(sisa_run, "early", record)
    erased = frozenset(erased_so_far(read_ledger(sisa_run.run)))
    scratch = train_shard(sisa_run.ctx, layout, 0, excluded=erased)
    assert state_sha256(after.states[0]) == state_sha256(scratch.checkpoints[-1])
    assert state_sha256(after.states[1]) == state_sha256(before.states[1])
    ledger = read_ledger(sisa_run.run)
    shard0 = ledger["sisa"]["shards"][0]["slices"]
    assert all("/early/" in p for p in shard0)
    assert state_sha256(load_adapter(sisa_run.run.path(shard0[-1]))) == state_sha256(
        after.states[0])


def test_sisa_result_is_exact_and_verified_against_its_oracle(sisa_run: SisaRun) -> None:
    layout = _layout(sisa_run)
    record = layout.slices[1][1][0]
    ctx = sisa_run.ctx
    request = ErasureRequest(id="mid", kind="record", ids=[record])
    (result,), _ = run_erase(ctx, [request], ["sisa"], PlainReporter(quiet=True), oracle=False)
    assert result.exactness == "exact"
    assert any(f.startswith("exactness verified") for f in result.flags)
    assert result.oracle_seconds is not None and result.speedup_vs_oracle is not None
    assert result.stopping_reason == "retrained shard 1 from slice 2 of 2 shard(s)"
    assert result.forget.mean_loss_oracle == result.forget.mean_loss_after


def test_ensemble_loss_is_minus_log_of_the_mean_shard_probability(sisa_run: SisaRun) -> None:
    ctx = sisa_run.ctx
    model, task = ctx.bundle.model, ctx.recipe.task
    shards = Sisa(ctx.ucfg).start_model(ctx, read_ledger(sisa_run.run)).states
    data = ctx.test.subset(range(5))
    got = per_example_loss(model, shards, data, task)
    probs = []
    model.eval()
    with torch.no_grad():
        batch = data.batch(range(5))
        for state in shards:
            set_adapter_state(model, state)
            probs.append(torch.softmax(forward(model, batch, task).logits, -1))
        assert batch.labels is not None
        mean = torch.stack(probs).mean(0).gather(-1, batch.labels.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(torch.as_tensor(got), -torch.log(mean).double(), atol=1e-5)


def _dp_config(batch: int) -> AuditConfig:
    return config_from_dict(merge(TINY, {"privacy": {"dp": {
        "mode": "record", "target_epsilon": 4.0, "delta": 1e-5, "batch_size": batch,
        "accountant": "rdp"}}}))


def _dp_recipe(batch: int) -> TrainingRecipe:
    return _dp_config(batch).recipe


def test_sisa_shard_sigma_keeps_the_composition_over_its_slices_within_the_target() -> None:
    """Slice 1's records are trained with every slice: the shard's ε composes all of them."""
    cfg = _dp_recipe(batch=32)
    layout = SisaLayout(slices=((tuple(f"a{i}" for i in range(20)),
                                 tuple(f"b{i}" for i in range(60)),
                                 tuple(f"c{i}" for i in range(60))),))
    sigma = shard_noise_multiplier(cfg, layout, 0)
    assert sigma is not None
    acc = ClientAccountant("rdp")
    for n in (20, 80, 140):  # the first slice (20 < 32) trains full-batch
        q, steps = poisson_schedule(n_records=n, batch_size=min(32, n), local_epochs=1)
        acc.step(noise_multiplier=sigma, sample_rate=q, num_steps=steps)
    assert 0.9 * 4.0 <= acc.epsilon(1e-5) <= 4.0
    # calibrating each slice alone to ε = 4 would spend about three times the budget
    alone = calibrate_noise(target_epsilon=4.0, delta=1e-5, sample_rate=1 / 5, steps=5,
                            accountant="rdp")
    assert alone < sigma


def test_sisa_slice_smaller_than_the_dp_batch_trains_full_batch_under_the_shard_sigma() -> None:
    cfg = _dp_recipe(batch=32)
    small = _slice_recipe(cfg, 1.3, 20)
    dp = small.dp
    assert (dp.batch_size, dp.noise_multiplier, dp.target_epsilon) == (20, 1.3, None)
    assert _slice_recipe(cfg, 1.3, 100).dp.batch_size == 32
    plain = config_from_dict(TINY).recipe
    assert _slice_recipe(plain, None, 5) == plain


def test_sisa_learning_rate_is_the_step_every_slice_trains_with_dp_or_not(
    sisa_run: SisaRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sisa.learning_rate`` replaces the run's step for the shards only (under record DP it
    replaces ``privacy.dp.learning_rate``, which the clients would train with); the shard's
    σ does not depend on it."""
    seen: list[float] = []

    def record(recipe: TrainingRecipe, *args: object, **kwargs: object) -> object:
        seen.append(recipe.training_federation().learning_rate)
        raise _Stop

    monkeypatch.setattr(sisa_module, "train_federation", record)
    for dp in ({"mode": "none"}, {"mode": "record", "target_epsilon": 4.0, "delta": 1e-5,
                                  "batch_size": 8, "learning_rate": 0.05, "accountant": "rdp"}):
        cfg = config_from_dict(merge(TINY, {
            "privacy": {"dp": dp}, "unlearning": {"sisa": {"learning_rate": 0.0123}}}))
        ctx = dataclasses.replace(sisa_run.ctx, recipe=cfg.recipe, ucfg=cfg.unlearning)
        with pytest.raises(_Stop):
            train_shard(ctx, _layout(sisa_run), 0, excluded=frozenset())
        assert ctx.recipe.training_federation().learning_rate != 0.0123  # federation keeps its
    assert seen == [0.0123, 0.0123]
    dp_cfg = _dp_config(batch=32)
    layout = SisaLayout(slices=((tuple(f"a{i}" for i in range(40)),),))
    faster = config_from_dict(merge(dp_cfg.model_dump(mode="json"),
                                    {"unlearning": {"sisa": {"learning_rate": 0.5}}}))
    sigmas = {shard_noise_multiplier(shard_recipe(_ctx_of(c)), layout, 0) for c in (faster, dp_cfg)}
    assert len(sigmas) == 1 and None not in sigmas


def _ctx_of(cfg: AuditConfig) -> UnlearningContext:
    """What shard_recipe reads of a context: the recipe and the unlearning section."""
    return cast(UnlearningContext, SimpleNamespace(recipe=cfg.recipe, ucfg=cfg.unlearning))


class _Stop(Exception):
    """Raised by the stand-in for train_federation once it has seen the recipe."""
