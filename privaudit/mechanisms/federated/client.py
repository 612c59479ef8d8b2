"""The client update: (global adapter, client data, config, state) → (update, state, metrics).

:func:`client_update` trains a copy of the global adapter on the client's data and returns
the delta (new − global). It holds no privacy logic of its own: record-level DP replaces its
local loop (:class:`~privaudit.mechanisms.federated.record_dp.RecordLevelDP`) and client-level
DP clips what it returns (:class:`~privaudit.mechanisms.federated.client_dp.ClippedClient`);
both have the :class:`ClientFn` signature, so an engine runs any of them alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from privaudit.mechanisms.dp.accounting import ClientAccountant
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.models import AdapterState, adapter_state, set_adapter_state
from privaudit.mechanisms.tasks import EncodedSet, forward


@dataclass
class ClientState:
    """What a client keeps between rounds. ``accountant``: its record-level DP accountant,
    ONE for the whole federation (None without record-level DP)."""

    client_id: str
    rounds_taken: int = 0
    steps_taken: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    accountant: ClientAccountant | None = None


@dataclass
class ClientUpdate:
    client_id: str
    round: int
    delta: AdapterState
    n_examples: int
    metrics: dict[str, float]
    seen_ids: tuple[str, ...] = ()  # every record id the local loop touched (lineage)


class ClientFn(Protocol):
    """The signature every client update (plain or wrapped) has."""

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
    ) -> tuple[ClientUpdate, ClientState]: ...


def make_optimizer(
    params: list[torch.nn.Parameter], cfg: FederationConfig
) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.learning_rate)
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)


def local_seed(seed: int, round_index: int, client_index: int) -> int:
    return (seed * 1_000_003 + round_index * 1_009 + client_index * 7_919) % (2**31 - 1)


def start_local(model: nn.Module, global_state: AdapterState, seed: int) -> list[nn.Parameter]:
    """Load the global adapter, enter train mode, seed dropout; the trainable parameters."""
    set_adapter_state(model, global_state)
    model.train()
    torch.manual_seed(seed)  # dropout
    return [p for p in model.parameters() if p.requires_grad]


def finish_update(
    model: nn.Module,
    global_state: AdapterState,
    data: EncodedSet,
    state: ClientState,
    *,
    round_index: int,
    steps: int,
    loss_sum: float,
    seen: Iterable[str],
    accountant: ClientAccountant | None = None,
    metrics: dict[str, float] | None = None,
) -> tuple[ClientUpdate, ClientState]:
    """The update (delta = trained − global) and the client's state after this round."""
    new_state = adapter_state(model)
    delta = {n: new_state[n] - global_state[n] for n in global_state}
    update = ClientUpdate(
        client_id=state.client_id,
        round=round_index,
        delta=delta,
        n_examples=len(data),
        metrics={"train_loss": loss_sum / max(steps, 1), "steps": float(steps)}
        | (metrics or {}),
        seen_ids=tuple(sorted(set(seen))),
    )
    new_client_state = ClientState(
        client_id=state.client_id,
        rounds_taken=state.rounds_taken + 1,
        steps_taken=state.steps_taken + steps,
        extra=dict(state.extra),
        accountant=accountant if accountant is not None else state.accountant,
    )
    return update, new_client_state


def client_update(
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
    """Local training for ``cfg.local_epochs`` epochs from the global adapter (no DP)."""
    params = start_local(model, global_state, seed)
    optimizer = make_optimizer(params, cfg)
    generator = torch.Generator().manual_seed(seed)
    steps, loss_sum = 0, 0.0
    seen: set[str] = set()
    for _ in range(cfg.local_epochs):
        order = torch.randperm(len(data), generator=generator).tolist()
        for start in range(0, len(order), cfg.batch_size):
            indices = order[start : start + cfg.batch_size]
            batch = data.batch(indices)
            loss = forward(model, batch, task).loss.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            loss_sum += float(loss.detach())
            seen.update(data.record_ids[i] for i in indices)
    return finish_update(
        model,
        global_state,
        data,
        state,
        round_index=round_index,
        steps=steps,
        loss_sum=loss_sum,
        seen=seen,
    )
