"""Opacus wiring of one client's local DP-SGD on a peft LoRA model."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from opacus.accountants import PRVAccountant
from opacus.grad_sample import AbstractGradSampleModule
from torch import Tensor, nn
from torch.utils.data import DataLoader

from privaudit.core.errors import PrivacyBudgetError
from privaudit.mechanisms.dp import ClientAccountant, PrivateTraining, make_private, unwrap

Loader = Callable[[int, int], DataLoader[tuple[Tensor, ...]]]
pytestmark = [
    pytest.mark.filterwarnings("ignore:DP noise comes from torch's PRNG"),
    # the first LoRA layer's input (frozen embeddings) needs no gradient; harmless here
    pytest.mark.filterwarnings("ignore:Full backward hook is firing"),
]


def _trainable(model: nn.Module) -> dict[str, Tensor]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _classification_loss(model: nn.Module, batch: tuple[Tensor, ...], crit: Any) -> Any:
    ids, mask, labels = batch
    return crit(model(input_ids=ids, attention_mask=mask).logits, labels)


def _lm_loss(model: nn.Module, batch: tuple[Tensor, ...], crit: Any) -> Any:
    ids = batch[0]
    logits = model(input_ids=ids).logits[:, :-1]
    return crit(logits.flatten(0, 1), ids[:, 1:].flatten(), shape=logits.shape)


class _SummedCE(nn.CrossEntropyLoss):
    """CE summed over tokens; ``shape`` is what Opacus' ghost wrapper reads (ignored here)."""

    def __init__(self) -> None:
        super().__init__(reduction="sum")

    def forward(self, logits: Tensor, target: Tensor, shape: Any = None) -> Tensor:
        return super().forward(logits, target)


TASKS = {"bert": ("bert_lora", _classification_loss), "llama": ("llama_lora", _lm_loss)}


def _per_example_grads(
    model: nn.Module, batch: tuple[Tensor, ...], loss_fn: Callable[..., Any]
) -> dict[str, Tensor]:
    """The reference: one forward/backward per example on an unwrapped copy."""
    ref = copy.deepcopy(model).train()
    grads: dict[str, list[Tensor]] = {n: [] for n in _trainable(ref)}
    for i in range(batch[0].shape[0]):
        ref.zero_grad()
        loss_fn(ref, tuple(t[i : i + 1] for t in batch), _SummedCE()).backward()
        for n, p in _trainable(ref).items():
            grads[n].append(p.grad.detach().clone())
    return {n: torch.stack(g) for n, g in grads.items()}


def _private(model: nn.Module, loader: DataLoader[Any], mode: str, **kw: Any) -> PrivateTraining:
    opt = torch.optim.SGD(_trainable(model).values(), lr=kw.pop("lr", 0.0))
    kw = {"noise_multiplier": 1.0, "max_grad_norm": 1.0, "accountant": ClientAccountant("rdp")} | kw
    return make_private(
        model,
        opt,
        loader,
        grad_sample_mode=mode,
        criterion=_SummedCE(),
        generator=torch.Generator().manual_seed(0),
        **kw,
    )


@pytest.mark.parametrize("task", ["bert", "llama"])
@pytest.mark.parametrize("mode", ["hooks", "functorch"])
def test_per_example_gradients_of_lora_and_head_equal_a_per_example_loop(
    task: str, mode: str, request: pytest.FixtureRequest, loader_of: Loader
) -> None:
    fixture, loss_fn = TASKS[task]
    model = request.getfixturevalue(fixture)
    loader = loader_of(24, 6)
    batch = next(iter(loader))
    expected = _per_example_grads(model, batch, loss_fn)
    run = _private(model, loader, mode)
    loss_fn(run.model, batch, run.criterion).backward()
    got = {n.removeprefix("_module."): p.grad_sample for n, p in _trainable(run.model).items()}
    assert got.keys() == expected.keys()
    if task == "bert":
        assert any("modules_to_save" in n for n in got)  # the head is checked too
    for name, g in got.items():
        torch.testing.assert_close(g, expected[name], rtol=1e-4, atol=1e-6, msg=name)
        assert expected[name].abs().max() > 0, f"{name}: vacuous check (zero gradient)"


@pytest.mark.parametrize("task", ["bert", "llama"])
@pytest.mark.parametrize("mode", ["hooks", "functorch", "ghost"])
def test_applied_gradient_is_the_clipped_sum_over_the_expected_batch_size(
    task: str, mode: str, request: pytest.FixtureRequest, loader_of: Loader
) -> None:
    fixture, loss_fn = TASKS[task]
    model = request.getfixturevalue(fixture)
    loader = loader_of(24, 6)
    batch = next(iter(loader))
    per_example = _per_example_grads(model, batch, loss_fn)
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in per_example.values()))
    clip = float(norms.median())  # some examples clipped, some not
    run = _private(model, loader, mode, max_grad_norm=clip)
    run.optimizer.noise_multiplier = 0.0  # test only: isolate the clipping
    run.optimizer.zero_grad()
    loss_fn(run.model, batch, run.criterion).backward()
    run.optimizer.step()
    scale = torch.clamp(clip / (norms + 1e-6), max=1.0)
    assert run.expected_batch_size == pytest.approx(6.0)
    for name, p in _trainable(run.model).items():
        g = per_example[name.removeprefix("_module.")]
        expected = torch.einsum("i,i...->...", scale, g) / run.expected_batch_size
        torch.testing.assert_close(p.grad, expected, rtol=1e-4, atol=1e-6, msg=name)
    assert run.steps_taken == 1


@pytest.mark.parametrize("mode", ["hooks", "functorch", "ghost"])
def test_first_private_step_gives_every_trainable_parameter_a_noisy_update(
    mode: str, bert_lora: nn.Module, loader_of: Loader
) -> None:
    run = _private(bert_lora, loader_of(24, 6), mode, lr=0.1)
    before = {n: p.detach().clone() for n, p in _trainable(run.model).items()}
    batch = next(b for b in run.data_loader if len(b[0]) > 0)
    _classification_loss(run.model, batch, run.criterion).backward()
    if mode != "ghost":  # ghost clipping computes norms, never per-sample gradients
        missing = [n for n, p in _trainable(run.model).items() if p.grad_sample is None]
        assert missing == []
    run.optimizer.step()
    unchanged = [n for n, p in _trainable(run.model).items() if torch.equal(p, before[n])]
    assert unchanged == []


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_rounds_with_a_fresh_wrapper_accumulate_in_the_one_client_accountant(
    mode: str, bert_lora: nn.Module, loader_of: Loader
) -> None:
    accountant, model, loader = ClientAccountant("prv"), bert_lora, loader_of(20, 5)
    for r in range(3):
        with _private(model, loader, mode, lr=0.05, accountant=accountant, round_index=r) as run:
            for batch in run.data_loader:
                run.optimizer.zero_grad()
                _classification_loss(run.model, batch, run.criterion).backward()
                run.optimizer.step()
        assert run.module is model  # the same module comes back, hooks removed
        assert not isinstance(model, AbstractGradSampleModule)
        assert not hasattr(model, "autograd_grad_sample_hooks")
        assert not any(hasattr(p, "grad_sample") for p in model.parameters())
    assert run.sample_rate == 0.25 and len(run.data_loader) == 4
    assert accountant.history == [(1.0, 0.25, 12)]
    independent = PRVAccountant()
    for _ in range(12):
        independent.step(noise_multiplier=1.0, sample_rate=0.25)
    one_round = ClientAccountant("prv")
    one_round.step(noise_multiplier=1.0, sample_rate=0.25, num_steps=4)
    assert accountant.epsilon(1e-5) == independent.get_epsilon(delta=1e-5)
    assert accountant.epsilon(1e-5) > one_round.epsilon(1e-5)


def test_steps_taken_before_a_failure_are_still_accounted(
    bert_lora: nn.Module, loader_of: Loader
) -> None:
    accountant = ClientAccountant("rdp")
    run = _private(bert_lora, loader_of(20, 5), "hooks", accountant=accountant)
    with pytest.raises(RuntimeError, match="crash"), run:
        batch = next(iter(run.data_loader))
        _classification_loss(run.model, batch, run.criterion).backward()
        run.optimizer.step()
        raise RuntimeError("crash")
    assert accountant.total_steps == 1
    assert not isinstance(unwrap(run.model), AbstractGradSampleModule)


def test_make_private_puts_the_model_in_train_mode(bert_lora: nn.Module, loader_of: Loader) -> None:
    bert_lora.eval()
    _private(bert_lora, loader_of(20, 5), "hooks")
    assert bert_lora.training


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"noise_multiplier": 0.0}, "noise_multiplier"),
        ({"max_grad_norm": -1.0}, "max_grad_norm"),
        ({"criterion": nn.CrossEntropyLoss()}, "criterion"),
        ({"grad_sample_mode": "ew"}, "grad_sample_mode"),
    ],
)
def test_unsafe_private_training_settings_are_refused(
    kw: dict[str, Any], field: str, bert_lora: nn.Module, loader_of: Loader
) -> None:
    opt = torch.optim.SGD(_trainable(bert_lora).values(), lr=0.1)
    args: dict[str, Any] = {
        "noise_multiplier": 1.0,
        "max_grad_norm": 1.0,
        "accountant": ClientAccountant("rdp"),
    } | kw
    with pytest.raises(PrivacyBudgetError, match=rf"privacy\.dp\.{field}"):
        make_private(bert_lora, opt, loader_of(20, 5), **args)


def test_a_trainable_base_layer_is_refused(bert_lora: nn.Module, loader_of: Loader) -> None:
    bert_lora.get_parameter("base_model.model.bert.pooler.dense.weight").requires_grad_(True)
    with pytest.raises(PrivacyBudgetError, match="base model must be frozen"):
        _private(bert_lora, loader_of(20, 5), "hooks")


def test_the_prng_caveat_is_warned(bert_lora: nn.Module, loader_of: Loader) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _private(bert_lora, loader_of(20, 5), "hooks")
    assert any("not a CSPRNG" in str(w.message) for w in caught)


@pytest.mark.parametrize("mode", ["hooks", "functorch", "ghost"])
def test_an_empty_poisson_batch_is_still_one_noisy_accounted_step(
    mode: str, bert_lora: nn.Module, loader_of: Loader
) -> None:
    accountant = ClientAccountant("rdp")
    sizes = []
    with _private(bert_lora, loader_of(20, 1), mode, lr=0.1, accountant=accountant) as run:
        for batch in run.data_loader:
            sizes.append(len(batch[0]))
            run.optimizer.zero_grad()
            before = {n: p.detach().clone() for n, p in _trainable(run.model).items()}
            if sizes[-1] == 0:
                run.noise_only_step()
                moved = [not torch.equal(p, before[n]) for n, p in _trainable(run.model).items()]
                assert all(moved)  # noise was released
                continue
            _classification_loss(run.model, batch, run.criterion).backward()
            run.optimizer.step()
    assert 0 in sizes  # q = 1/20: about a third of the batches are empty
    assert accountant.total_steps == len(sizes) == 20
