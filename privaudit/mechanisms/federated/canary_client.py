"""Canary clients for auditing client-level DP (DP-FedAvg) in one run.

Under client-level DP the protected unit is a client, so the audit's canaries are whole
clients. Following the one-shot estimate of Andrew, Kairouz, Oh, Oprea, McMahan and
Suriyakumar ("One-shot Empirical Privacy Estimation for Federated Learning", ICLR 2024), a
canary client does not train: every round it is sampled, its update is its own fixed random
direction with L2 norm equal to the clip norm S — the largest update DP-FedAvg lets a client
send. The update goes through the same path as any client's (clipping, secure aggregation,
the server's noise), so the audit measures the mechanism as deployed. The score of a canary
is the cosine between the model's total change and its direction: included canaries push
the model along theirs; in high dimension an excluded canary's cosine is ~N(0, 1/d).

>>> like = {"w": torch.zeros(3, 4)}
>>> d = canary_direction("dp-canary-0001", like, norm=2.0)
>>> round(float(d["w"].double().norm()), 6)
2.0
>>> bool(torch.equal(d["w"], canary_direction("dp-canary-0001", like, norm=2.0)["w"]))
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from privaudit.mechanisms.data.audit_canaries import CANARY_CLIENT_PREFIX
from privaudit.mechanisms.federated.client import ClientFn, ClientState, ClientUpdate
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.tasks import EncodedSet

__all__ = ["CanaryClient", "canary_cosines", "canary_direction"]


def canary_direction(canary_id: str, like: AdapterState, *, norm: float) -> AdapterState:
    """A fixed random direction of L2 norm ``norm`` shaped like ``like``, seeded by the
    canary's id (sha256), so the audit can recompute it without storing it."""
    seed = int.from_bytes(hashlib.sha256(canary_id.encode()).digest()[:8], "big") % 2**63
    generator = torch.Generator().manual_seed(seed)
    parts = {k: torch.randn(like[k].shape, generator=generator, dtype=torch.float64)
             for k in sorted(like)}
    total = math.sqrt(sum(float((p * p).sum()) for p in parts.values()))
    return {k: (p * (norm / total)).to(like[k].dtype) for k, p in parts.items()}


class CanaryClient:
    """Passes data clients to ``inner``; a canary client (id ``canary-client-…``, holding its
    one canary record) sends its direction of norm ``clip_norm`` instead of training."""

    def __init__(self, inner: ClientFn, *, clip_norm: float) -> None:
        self.inner = inner
        self.clip_norm = clip_norm

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
        if not state.client_id.startswith(CANARY_CLIENT_PREFIX):
            return self.inner(model, global_state, data, cfg, state, task=task,
                              round_index=round_index, seed=seed)
        delta = canary_direction(data.record_ids[0], global_state, norm=self.clip_norm)
        update = ClientUpdate(client_id=state.client_id, round=round_index, delta=delta,
                              n_examples=len(data), metrics={}, seen_ids=tuple(data.record_ids))
        return update, dataclasses.replace(state, rounds_taken=state.rounds_taken + 1)


def canary_cosines(
    canary_ids: Sequence[str], initial_state: AdapterState, trained_state: AdapterState
) -> np.ndarray:
    """Cosine between the model's total change and each canary's direction (higher = IN)."""
    keys = sorted(initial_state)
    change = torch.cat([(trained_state[k].double() - initial_state[k].double()).flatten()
                        for k in keys])
    norm = float(change.norm()) or 1.0
    out = []
    for cid in canary_ids:
        d = canary_direction(cid, initial_state, norm=1.0)
        out.append(float(torch.cat([d[k].double().flatten() for k in keys]) @ change) / norm)
    return np.asarray(out, dtype=np.float64)
