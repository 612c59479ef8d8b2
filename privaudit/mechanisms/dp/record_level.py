"""Record-level DP-SGD for one client's local training of a peft LoRA model (Opacus).

The loss convention the training loop MUST follow::

    with make_private(model, optimizer, loader, noise_multiplier=σ, max_grad_norm=C,
                      accountant=client_accountant, round_index=r, generator=g) as run:
        for epoch in range(local_epochs):
            for inputs, labels in run.data_loader:           # Poisson batches, may be empty
                run.optimizer.zero_grad()
                if len(labels) == 0:                         # HF models fail on batch size 0
                    run.noise_only_step()
                    continue
                logits = run.model(**inputs).logits
                loss = run.criterion(logits, labels)         # SUM over examples
                loss.backward()
                run.optimizer.step()
    model = run.module                                       # the unwrapped model, hooks gone

* The loss back-propagated is the SUM over the batch of per-example losses, each depending
  on its own example only (``reduction="sum"``; for a language model the per-sequence loss,
  e.g. ``criterion(logits.flatten(0, 1), labels.flatten(), shape=logits.shape)`` with ghost).
  Never the mean over the batch, and never a token mean over the whole batch (HF's
  ``outputs.loss``): it couples examples, so one example's removal changes the others'
  clipped gradients and the sensitivity bound fails. Per-sample gradients are then exactly
  the per-example gradients (Opacus ``loss_reduction="sum"``).
* The optimizer step applies (Σ clipped per-example gradients + N(0, σ²C²)) / (q·N): the
  average with a FIXED denominator, the expected batch size (Abadi et al. 2016). Use the
  learning rate you would use with a batch-mean loss.

One PrivacyEngine-like wrapping per round, ONE :class:`ClientAccountant` per client for the
whole federation: leaving the ``with`` block (or :meth:`PrivateTraining.finish`) records
(σ, q, steps actually taken) in it, removes the hooks and gives back the original module,
ready to be wrapped again next round.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import torch
import torch.nn as nn
from opacus.data_loader import DPDataLoader
from opacus.grad_sample import AbstractGradSampleModule
from opacus.grad_sample.utils import prepare_module
from opacus.optimizers import DPOptimizer, get_optimizer_class
from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping
from torch.utils.data import DataLoader

from privaudit.core.errors import InternalError, PrivacyBudgetError
from privaudit.mechanisms.dp.accounting import ClientAccountant
from privaudit.mechanisms.dp.validate import check_model_for_opacus

GRAD_SAMPLE_MODES = ("hooks", "functorch", "ghost")


def unwrap(model: nn.Module) -> nn.Module:
    """The original module inside an Opacus wrapper, with hooks and per-sample state removed
    (a plain module is returned as is)."""
    if isinstance(model, AbstractGradSampleModule):
        model = model.to_standard_module()
    for p in model.parameters():
        if hasattr(p, "summed_grad"):
            del p.summed_grad
    return model


@dataclass
class PrivateTraining:
    """The private objects of one client's local training in one round."""

    model: nn.Module
    optimizer: DPOptimizer
    data_loader: DataLoader[Any]
    criterion: Callable[..., Any]
    accountant: ClientAccountant
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    expected_batch_size: float
    round_index: int | None = None
    steps_taken: int = 0
    module: nn.Module | None = field(default=None, repr=False)
    #: gradient canaries of a DP audit: (parameter, flat indices of the included ones)
    canaries: list[tuple[nn.Parameter, torch.Tensor]] = field(default_factory=list, repr=False)
    canary_generator: torch.Generator | None = field(default=None, repr=False)
    #: the rate the loader samples real records at: canaries are sampled like them
    canary_rate: float = 0.0
    #: (tensor name, parameter, flat indices) whose noisy gradient sums are observed
    observed: list[tuple[str, nn.Parameter, torch.Tensor]] = field(default_factory=list,
                                                                   repr=False)
    #: tensor name → the observed coordinates' noisy gradient sums, added over the steps
    observed_sums: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def _inject_canaries(self) -> None:
        """Add C·u_i to the summed clipped gradients for each included canary that Poisson
        sampling (rate q) puts in this step's batch: before the noise, like any record."""
        for p, idx in self.canaries:
            hit = idx[torch.rand(idx.numel(), generator=self.canary_generator)
                      < self.canary_rate]
            if hit.numel():
                summed = p.summed_grad  # type: ignore[attr-defined]
                summed.view(-1).index_add_(
                    0, hit.to(summed.device), torch.full(
                        (hit.numel(),), self.max_grad_norm, dtype=summed.dtype,
                        device=summed.device))

    def _after_noise(self, optimizer: DPOptimizer) -> None:
        """Opacus step hook: runs once per noisy step, after noise, before the update."""
        for name, p, idx in self.observed:  # the released noisy sum, before the denominator
            flat = p.grad.detach().reshape(-1)  # type: ignore[union-attr]
            got = flat[idx.to(flat.device)].to("cpu", torch.float64)
            self.observed_sums[name] = self.observed_sums.get(name, torch.zeros_like(got)) + got
        for p in optimizer.params:
            if p.grad is not None:
                p.grad.div_(self.expected_batch_size)
        self.steps_taken += 1

    def noise_only_step(self) -> None:
        """The step for an empty Poisson batch, without a forward pass: zero gradient plus
        noise. Skipping it instead would make the release depend on the batch being empty;
        the accountant counts it like any other step."""
        for p in self.optimizer.params:
            p.grad = torch.zeros_like(p)
            if not isinstance(self.criterion, DPLossFastGradientClipping):
                p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
        self.optimizer.step()

    def finish(self) -> nn.Module:
        """Record this round in the persistent accountant and return the unwrapped model.
        Idempotent."""
        if self.module is None:
            self.accountant.step(
                noise_multiplier=self.noise_multiplier,
                sample_rate=self.sample_rate,
                num_steps=self.steps_taken,
                round_index=self.round_index,
            )
            self.module = unwrap(self.model)
        return self.module

    def __enter__(self) -> PrivateTraining:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()  # steps taken before a failure were released too: account them


#: What the noise is drawn from, said wherever DP-SGD is set up or a run trains with DP.
PRNG_NOTE = ("DP noise comes from torch's PRNG, not a CSPRNG: fine for audits and reproducible "
             "runs, not hardened against floating-point or RNG-state attacks")


def _setting_problems(noise_multiplier: float, max_grad_norm: float, grad_sample_mode: str,
                      criterion: nn.Module) -> list[str]:
    """Every problem of the DP-SGD settings, named by their config field."""
    problems = []
    if not noise_multiplier > 0:
        problems.append(
            f"privacy.dp.noise_multiplier: must be > 0 with DP on (got {noise_multiplier})"
        )
    if not max_grad_norm > 0:
        problems.append(f"privacy.dp.max_grad_norm: must be > 0 (got {max_grad_norm})")
    if grad_sample_mode not in GRAD_SAMPLE_MODES:
        problems.append(
            f"privacy.dp.grad_sample_mode: must be one of {', '.join(GRAD_SAMPLE_MODES)} "
            f"(got {grad_sample_mode!r})"
        )
    if getattr(criterion, "reduction", "sum") != "sum":
        problems.append(
            "privacy.dp.criterion: the loss must be summed over examples "
            f"(got reduction={getattr(criterion, 'reduction', None)!r})"
        )
    return problems


def _attach_canaries(run: PrivateTraining, model: nn.Module,
                     canaries: Mapping[str, torch.Tensor] | None,
                     observe: Mapping[str, torch.Tensor] | None, canary_seed: int) -> None:
    """Observe the noisy sums at ``observe``; inject ``canaries`` before the noise."""
    named = dict(model.named_parameters())
    run.observed = [(n, named[n], idx) for n, idx in sorted((observe or {}).items())]
    if not canaries:
        return
    run.canaries = [(named[n], idx) for n, idx in sorted(canaries.items())]
    run.canary_generator = torch.Generator().manual_seed(canary_seed)
    run.canary_rate = run.sample_rate
    optimizer = run.optimizer
    add_noise = optimizer.add_noise

    def add_noise_after_canaries() -> None:
        run._inject_canaries()
        add_noise()

    optimizer.add_noise = add_noise_after_canaries  # type: ignore[method-assign]


def _noise_generator(generator: torch.Generator | None, model: nn.Module
                     ) -> torch.Generator | None:
    """``generator`` when it is on the device of the model's parameters; else a generator
    on that device seeded with ``generator``'s seed: torch draws CUDA noise from a CUDA
    generator only (Opacus does not move it), while the Poisson sampling stays on the CPU."""
    device = next((p.device for p in model.parameters() if p.requires_grad), None)
    if generator is None or device is None or device.type == generator.device.type:
        return generator
    return torch.Generator(device=device).manual_seed(generator.initial_seed())


def make_private(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data_loader: DataLoader[Any],
    *,
    noise_multiplier: float,
    max_grad_norm: float,
    accountant: ClientAccountant,
    grad_sample_mode: str = "hooks",
    criterion: nn.Module | None = None,
    generator: torch.Generator | None = None,
    round_index: int | None = None,
    canaries: Mapping[str, torch.Tensor] | None = None,
    canary_seed: int = 0,
    observe: Mapping[str, torch.Tensor] | None = None,
) -> PrivateTraining:
    """Wrap one client's model, optimizer and loader for DP-SGD with Poisson sampling.

    ``model``: trainable parameters are the adapter (and a head) only, base frozen; it is put
    in train mode (Opacus records no activations in eval mode). ``criterion`` must reduce by
    sum (default ``CrossEntropyLoss(reduction="sum")``); with ``grad_sample_mode="ghost"`` the
    returned ``criterion`` is Opacus' wrapper and the loss MUST be computed with it.
    ``generator`` drives the Poisson sampling and the noise (a CUDA model's noise: a CUDA
    generator seeded like it). ``canaries``: a DP audit's included gradient canaries here
    (tensor name → flat indices), sampled by their own
    generator (``canary_seed``); ``observe``: coordinates whose noisy gradient sums (what
    DP-SGD releases) add up in :attr:`PrivateTraining.observed_sums`. Raises
    PrivacyBudgetError for σ ≤ 0, C ≤ 0, or layers Opacus cannot handle.
    """
    if isinstance(model, AbstractGradSampleModule):
        raise InternalError("make_private got a wrapped model; pass unwrap(model)")
    criterion = criterion if criterion is not None else nn.CrossEntropyLoss(reduction="sum")
    problems = _setting_problems(noise_multiplier, max_grad_norm, grad_sample_mode, criterion)
    model_params = {id(p) for p in model.parameters()}
    if any(id(p) not in model_params for g in optimizer.param_groups for p in g["params"]):
        raise InternalError("the optimizer holds parameters that are not the model's")
    model.train()
    problems += check_model_for_opacus(model, grad_sample_mode=grad_sample_mode)
    if problems:
        raise PrivacyBudgetError("; ".join(problems), problems)
    warnings.warn(PRNG_NOTE, UserWarning, stacklevel=2)

    extra = {"max_grad_norm": max_grad_norm} if grad_sample_mode == "ghost" else {}
    wrapped = prepare_module(
        model, grad_sample_mode, batch_first=True, loss_reduction="sum", **extra
    )
    wrapped.forbid_grad_accumulation()
    loader = DPDataLoader.from_data_loader(data_loader, generator=generator)
    sample_rate = float(loader.sample_rate)
    expected = len(loader.dataset) * sample_rate  # type: ignore[arg-type]
    if isinstance(optimizer, DPOptimizer):
        optimizer = optimizer.original_optimizer
    dp_optimizer = get_optimizer_class(
        clipping="flat", distributed=False, grad_sample_mode=grad_sample_mode
    )(
        optimizer,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        expected_batch_size=max(1, round(expected)),
        loss_reduction="sum",
        generator=_noise_generator(generator, model),
    )
    loss: Callable[..., Any] = criterion
    if grad_sample_mode == "ghost":
        loss = DPLossFastGradientClipping(wrapped, dp_optimizer, criterion, "sum")
    run = PrivateTraining(
        model=wrapped,
        optimizer=dp_optimizer,
        data_loader=loader,
        criterion=loss,
        accountant=accountant,
        noise_multiplier=float(noise_multiplier),
        max_grad_norm=float(max_grad_norm),
        sample_rate=sample_rate,
        expected_batch_size=expected,
        round_index=round_index,
    )
    dp_optimizer.attach_step_hook(run._after_noise)
    _attach_canaries(run, model, canaries, observe, canary_seed)
    return run
