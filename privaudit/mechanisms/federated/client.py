"""The client update: (global adapter, client data, config, state) → (update, state, metrics).

The function trains a copy of the global adapter on the client's data and returns the delta
(new − global). It holds no privacy logic of its own: DP and secure aggregation wrap it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from privaudit.audit.config import FederationConfig
from privaudit.mechanisms.models import AdapterState, adapter_state, set_adapter_state
from privaudit.mechanisms.tasks import EncodedSet, forward


@dataclass
class ClientState:
    """What a client keeps between rounds (the DP accountant joins it when DP is on)."""

    client_id: str
    rounds_taken: int = 0
    steps_taken: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClientUpdate:
    client_id: str
    round: int
    delta: AdapterState
    n_examples: int
    metrics: dict[str, float]
    seen_ids: tuple[str, ...] = ()  # every record id the local loop touched (lineage)


def make_optimizer(
    params: list[torch.nn.Parameter], cfg: FederationConfig
) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.learning_rate)
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)


def local_seed(seed: int, round_index: int, client_index: int) -> int:
    return (seed * 1_000_003 + round_index * 1_009 + client_index * 7_919) % (2**31 - 1)


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
    """Local training for ``cfg.local_epochs`` epochs from the global adapter."""
    set_adapter_state(model, global_state)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, cfg)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
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
    new_state = adapter_state(model)
    delta = {n: new_state[n] - global_state[n] for n in global_state}
    update = ClientUpdate(
        client_id=state.client_id,
        round=round_index,
        delta=delta,
        n_examples=len(data),
        metrics={"train_loss": loss_sum / max(steps, 1), "steps": float(steps)},
        seen_ids=tuple(sorted(seen)),
    )
    new_client_state = ClientState(
        client_id=state.client_id,
        rounds_taken=state.rounds_taken + 1,
        steps_taken=state.steps_taken + steps,
        extra=dict(state.extra),
    )
    return update, new_client_state
