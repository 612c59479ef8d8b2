"""Record-level DP-SGD inside the federation: the real training path, its accounting and
its loss convention."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant

from privaudit.core.errors import PrivacyBudgetError
from privaudit.mechanisms.dp import ClientAccountant, DPConfig, make_private
from privaudit.mechanisms.federated import ClientState, ExampleLoss, RecordLevelDP
from privaudit.mechanisms.federated.privacy import check_privacy, client_sizes_of, dp_card
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.tasks import forward

Federation = Any  # tests/mechanisms/federated/conftest.py

DELTA = 1e-5


def _record(sigma: float | None = 1.1, **extra: Any) -> dict[str, Any]:
    dp: dict[str, Any] = {"mode": "record", "delta": DELTA, "accountant": "prv"} | extra
    if sigma is not None:
        dp["noise_multiplier"] = sigma
    return {"privacy": {"dp": dp}}


def _train(fed: Federation, **kw: Any) -> Any:
    return train_federation(
        fed.cfg.recipe, fed.bundle, fed.clients, fed.test,
        initial_state=fed.initial_state(), seed=fed.cfg.seed, **kw,
    )


@pytest.mark.parametrize("mechanism, opacus_cls", [("prv", PRVAccountant), ("rdp", RDPAccountant)])
def test_epsilon_after_rounds_equals_opacus_driven_by_the_steps_training_took(
    federation: Callable[..., Federation], mechanism: str, opacus_cls: type
) -> None:
    fed = federation(_record(accountant=mechanism) | {"federation": {"rounds": 3}})
    records = []
    result = _train(fed, on_round=lambda r, s, u, rec: records.append(rec))
    assert result.privacy is not None
    per_client: dict[str, Any] = {}
    for rec in records:  # the independent computation: one Opacus step per noisy step taken
        for cid, m in rec.client_metrics.items():
            acc = per_client.setdefault(cid, opacus_cls())
            for _ in range(int(m["steps"])):
                acc.step(noise_multiplier=m["noise_multiplier"], sample_rate=m["sample_rate"])
    independent = max(a.get_epsilon(delta=DELTA) for a in per_client.values())
    card = dp_card(
        fed.cfg.recipe, result.privacy, client_sizes=client_sizes_of(fed.clients),
        max_records_per_subject=fed.data.max_records_per_subject(),
    )
    assert card.epsilon == pytest.approx(independent, rel=1e-9)
    assert records[-1].epsilon == pytest.approx(independent, rel=1e-9)
    one_round = records[0].epsilon
    assert one_round is not None and card.epsilon > 1.3 * one_round  # not a fresh engine per round
    assert card.epsilon_per_round == pytest.approx([r.epsilon for r in records])
    steps = {c: sum(int(r.client_metrics[c]["steps"]) for r in records) for c in fed.clients}
    assert {c.client_id: c.steps for c in card.clients} == steps


def test_noise_calibrated_to_a_target_covers_the_whole_schedule(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(_record(None, target_epsilon=3.0) | {"federation": {"rounds": 3}})
    result = _train(fed)
    assert result.privacy is not None
    spent = result.privacy.epsilon()
    assert spent is not None and 0.95 * 3.0 <= spent <= 3.0, spent


def test_dp_training_changes_only_the_adapter_and_leaves_no_opacus_hooks(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(_record())
    base = {n: p.clone() for n, p in fed.bundle.model.named_parameters() if not p.requires_grad}
    start = fed.initial_state()
    result = _train(fed)
    for n, p in fed.bundle.model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, base[n]), n
    assert any(not torch.equal(result.final_state[n], start[n]) for n in start)
    leftovers = [m for m in fed.bundle.model.modules() if m._forward_hooks or m._backward_hooks]
    assert not leftovers
    assert not any(hasattr(p, "grad_sample") for p in fed.bundle.model.parameters())


@pytest.mark.parametrize("task", ["classification", "causal-lm"])
def test_per_example_gradients_of_the_training_loss_equal_a_loop_over_forward(
    federation: Callable[..., Federation], task: str
) -> None:
    """ExampleLoss (what DP-SGD back-propagates, summed) gives each example the gradient of
    its own ``tasks.forward`` loss: no coupling between examples, padding ignored."""
    patch: dict[str, Any] = {"model": {"task": task}}
    if task == "causal-lm":
        patch |= {"data": {"public_records": 20},
                  "model": {"task": task, "pretrain": {"epochs": 0}}}
    fed = federation(patch)
    model = fed.bundle.model
    with torch.no_grad():  # lora_B starts at zero: make every LoRA gradient non-trivial
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    data = next(iter(fed.clients.values()))
    rows = list(range(6))
    batch = data.batch(rows)
    reference = copy.deepcopy(model).train()
    want: dict[str, list[torch.Tensor]] = {}
    for i in rows:
        reference.zero_grad()
        forward(reference, data.batch([i]), task).loss.sum().backward()
        for n, p in reference.named_parameters():
            if p.requires_grad:
                want.setdefault(n, []).append(p.grad.detach().clone())
    params = [p for p in model.parameters() if p.requires_grad]
    indices = torch.utils.data.TensorDataset(torch.arange(len(data)))
    loader = torch.utils.data.DataLoader(indices, batch_size=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = make_private(model, torch.optim.SGD(params, lr=0.0), loader, noise_multiplier=1.0,
                           max_grad_norm=1e9, accountant=ClientAccountant("rdp"),
                           criterion=ExampleLoss(task))
        target = batch.labels if task == "classification" else batch.input_ids.masked_fill(
            batch.attention_mask == 0, -100)
        logits = run.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        run.criterion(logits, target).backward()
        got = {n: p.grad_sample.detach().clone() for n, p in model.named_parameters()
               if p.requires_grad}
        run.finish()
    assert set(got) == set(want)
    for n in got:
        torch.testing.assert_close(got[n], torch.stack(want[n]), rtol=1e-4, atol=1e-6)


def test_empty_poisson_batches_are_noise_only_steps_and_accounted(
    federation: Callable[..., Federation],
) -> None:
    fed = federation({"federation": {"batch_size": 1, "local_epochs": 4}})
    data = next(iter(fed.clients.values())).subset(range(5))  # q = 1/5: some batches empty
    dp = DPConfig(mode="record", noise_multiplier=1.0, delta=DELTA, accountant="rdp")
    client = RecordLevelDP(dp, noise_multipliers={"c": 1.0})
    state = ClientState(client_id="c")
    update, state = client(fed.bundle.model, fed.initial_state(), data, fed.cfg.federation,
                           state, task="classification", round_index=1, seed=11)
    assert update.metrics["steps"] == 20  # 4 epochs × 1/q steps, empty batches included
    assert state.accountant is not None and state.accountant.history == [(1.0, 0.2, 20)]
    assert update.metrics["empty_batches"] >= 1  # this seed draws empty batches


@pytest.mark.parametrize(
    "dp, field",
    [
        ({"noise_multiplier": 0.0}, "privacy.dp.noise_multiplier"),
        ({"noise_multiplier": 1.0, "delta": 0.2}, "privacy.dp.delta"),
        ({"noise_multiplier": 1.0, "max_grad_norm": 0.0}, "privacy.dp.max_grad_norm"),
        ({"target_epsilon": 1e-4, "delta": 1e-8}, "privacy.dp.target_epsilon"),
    ],
)
def test_bad_record_settings_are_refused_before_training_naming_the_field(
    federation: Callable[..., Federation], dp: dict[str, Any], field: str
) -> None:
    fed = federation({"privacy": {"dp": {"mode": "record", "delta": DELTA} | dp}})
    with pytest.raises(PrivacyBudgetError, match=field.replace(".", r"\.")):
        check_privacy(fed.cfg.recipe, client_sizes=client_sizes_of(fed.clients),
                      model=fed.bundle.model)


def test_batch_larger_than_a_client_is_refused_as_a_sample_rate_over_one(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(_record() | {"federation": {"batch_size": 1000}})
    with pytest.raises(PrivacyBudgetError, match=r"privacy\.dp\.sample_rate"):
        check_privacy(fed.cfg.recipe, client_sizes=client_sizes_of(fed.clients))


def test_a_trainable_base_layer_is_refused_before_training(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(_record())
    next(p for n, p in fed.bundle.model.named_parameters() if "LayerNorm" in n).requires_grad_()
    with pytest.raises(PrivacyBudgetError, match=r"privacy\.dp\.model"):
        _train(fed)


def test_dp_batch_size_and_learning_rate_replace_the_federation_ones_for_dp_sgd(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(_record(batch_size=32, learning_rate=0.02) | {"federation": {"rounds": 1}})
    records: list[Any] = []
    _train(fed, on_round=lambda r, s, u, rec: records.append(rec))
    for cid, m in records[0].client_metrics.items():
        n = len(fed.clients[cid])
        assert m["sample_rate"] == pytest.approx(1 / math.ceil(n / 32))  # not batch 16
        assert m["steps"] == math.ceil(n / 32)
