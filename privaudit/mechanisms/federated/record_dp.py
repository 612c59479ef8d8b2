"""Record-level DP-SGD as a client update: the plain update's contract, Opacus' local loop.

:class:`RecordLevelDP` has the :class:`~privaudit.mechanisms.federated.client.ClientFn`
signature. Each round it wraps the client's model with
:func:`~privaudit.mechanisms.dp.record_level.make_private` (Poisson sampling at q = B/N,
per-example clipping to C, Gaussian noise σ·C, fixed denominator q·N) and records the steps
actually taken in the client's ONE accountant, carried in
:attr:`~privaudit.mechanisms.federated.client.ClientState.accountant` from round to round.
The loss back-propagated is the SUM of per-example losses (:class:`ExampleLoss`), each the
loss :func:`~privaudit.mechanisms.tasks.forward` defines for its own example only.

Pair it with noise multipliers calibrated for the WHOLE schedule before training
(:func:`~privaudit.mechanisms.dp.calibration.record_noise_multipliers`); any strategy may
aggregate its updates (post-processing), with or without secure aggregation.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from privaudit.core.errors import InternalError
from privaudit.mechanisms import prefix
from privaudit.mechanisms.dp.accounting import ClientAccountant
from privaudit.mechanisms.dp.config import DPConfig
from privaudit.mechanisms.dp.gradient_canaries import CanaryObserver
from privaudit.mechanisms.dp.record_level import make_private
from privaudit.mechanisms.federated.client import (
    ClientState,
    ClientUpdate,
    finish_update,
    make_optimizer,
    start_local,
)
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.model.device import model_device
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.tasks import EncodedSet, token_nll

#: Opacus warns when the first hooked layer's input needs no gradient (the frozen embeddings
#: feed the first LoRA layer): harmless, the per-sample gradients are still exact.
FULL_BACKWARD_HOOK_WARNING = "Full backward hook is firing"
#: silenced in the local loop: the hook warning above; the PRNG warning of make_private,
#: given once per run by build_recipe instead of once per client and round; a transformers
#: deprecation that Opacus' wrapping triggers
_QUIET = (
    FULL_BACKWARD_HOOK_WARNING,
    "DP noise comes from torch's PRNG",
    ".*is_gradient_checkpointing",
)
IGNORE = -100


class ExampleLoss(nn.Module):
    """Per-example loss of :func:`privaudit.mechanisms.tasks.forward`, reduced by ``reduction``.

    Classification: cross-entropy of the label. Causal LM: mean NLL of the tokens after the
    first (targets are the input ids with padding set to -100). ``reduction`` is "sum" for
    DP-SGD; Opacus' ghost clipping sets it to "none" to get the per-example vector.
    """

    def __init__(self, task: str) -> None:
        super().__init__()
        self.task = task
        self.reduction = "sum"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if self.task == "classification":
            per_example = F.cross_entropy(logits.float(), target, reduction="none")
        else:
            per_example = token_nll(logits, target, target != IGNORE)[0]
        if self.reduction == "none":
            return per_example
        if self.reduction == "sum":
            return per_example.sum()
        raise InternalError(
            f"ExampleLoss: reduction must be 'sum' or 'none' (got {self.reduction!r})"
        )


class _Indices(Dataset[tuple[Tensor]]):
    """Row indices of an EncodedSet: Opacus samples indices, the batch is padded after."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Tensor]:
        return (torch.tensor(i, dtype=torch.long),)


def _target(batch_ids: Tensor, mask: Tensor, labels: Tensor | None, task: str) -> Tensor:
    if task == "classification":
        if labels is None:
            raise InternalError("classification batch without labels")
        return labels
    return batch_ids.masked_fill(mask == 0, IGNORE)


class RecordLevelDP:
    """Client update with record-level DP-SGD (Abadi et al. 2016) through Opacus.

    ``noise_multipliers`` maps each client id to its σ, fixed before training for the
    client's whole schedule. Pair with: those calibrated σ (never re-calibrate per round);
    the client's ClientState carried from round to round (it holds the accountant); any
    aggregation (the released models are post-processing of the clients' private updates).
    """

    def __init__(self, cfg: DPConfig, *, noise_multipliers: Mapping[str, float],
                 canaries: CanaryObserver | None = None) -> None:
        self.cfg = cfg
        self.noise_multipliers = dict(noise_multipliers)
        #: a DP audit's gradient canaries: what to inject, what to observe, where to report
        self.canaries = canaries

    def __call__(
        self,
        model: nn.Module,
        global_state: AdapterState,
        data: EncodedSet,
        cfg: FederationConfig,
        state: ClientState,
        *,
        task: str,
        round_index: int,
        seed: int,
    ) -> tuple[ClientUpdate, ClientState]:
        if state.client_id not in self.noise_multipliers:
            raise InternalError(f"no calibrated noise multiplier for {state.client_id!r}")
        accountant = state.accountant or ClientAccountant(self.cfg.accountant)
        params = start_local(model, global_state, seed)
        optimizer = make_optimizer(params, cfg)
        generator = torch.Generator().manual_seed(seed)
        loader: DataLoader[Any] = DataLoader(_Indices(len(data)), batch_size=cfg.batch_size)
        steps, empty, loss_sum = 0, 0, 0.0
        seen: set[str] = set()
        with warnings.catch_warnings():
            for message in _QUIET:
                warnings.filterwarnings("ignore", message=message)
            with make_private(
                model,
                optimizer,
                loader,
                noise_multiplier=self.noise_multipliers[state.client_id],
                max_grad_norm=self.cfg.max_grad_norm,
                accountant=accountant,
                grad_sample_mode=self.cfg.grad_sample_mode,
                criterion=ExampleLoss(task),
                generator=generator,
                round_index=round_index - 1,
                canaries=self.canaries.inject(state.client_id) if self.canaries else None,
                canary_seed=seed ^ 0x5EED_CA4A,
                observe=self.canaries.observe(state.client_id) if self.canaries else None,
            ) as run:
                for _ in range(cfg.local_epochs):
                    for (indices,) in run.data_loader:
                        run.optimizer.zero_grad(set_to_none=True)
                        if len(indices) == 0:
                            run.noise_only_step()
                            steps += 1
                            empty += 1
                            continue
                        rows = indices.tolist()
                        batch = data.batch(rows).to(model_device(model))
                        with prefix.use_features(model, batch.prefix):  # cached frozen layers
                            logits = run.model(
                                input_ids=batch.input_ids, attention_mask=batch.attention_mask
                            ).logits
                        target = _target(batch.input_ids, batch.attention_mask, batch.labels, task)
                        loss = run.criterion(logits, target)
                        loss.backward()
                        run.optimizer.step()
                        steps += 1
                        loss_sum += float(loss.detach()) / len(rows)
                        seen.update(data.record_ids[i] for i in rows)
        # leaving make_private's block recorded the steps in the accountant, removed the hooks
        if run.steps_taken != steps:
            raise InternalError(f"DP-SGD took {run.steps_taken} noisy steps, the loop {steps}")
        if self.canaries is not None:
            self.canaries.record(round_index, state.client_id, run.observed_sums)
        return finish_update(
            model, global_state, data, state, round_index=round_index, steps=steps,
            loss_sum=loss_sum, seen=seen, accountant=accountant,
            metrics={
                "noise_multiplier": run.noise_multiplier,
                "sample_rate": run.sample_rate,
                "empty_batches": float(empty),
                "epsilon": accountant.epsilon(self.cfg.delta) if self.cfg.delta else 0.0,
            },
        )
