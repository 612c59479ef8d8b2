"""Server strategies: a function of the round's client updates → the next global adapter."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from privaudit.audit.errors import ConfigError
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.models import AdapterState


class Strategy(ABC):
    """Aggregates client deltas. Privacy wrappers compose around a strategy."""

    name: str = ""

    @abstractmethod
    def weights(self, updates: Sequence[ClientUpdate]) -> list[float]:
        """The aggregation weight of each update (before normalisation)."""

    def aggregate(
        self, global_state: AdapterState, updates: Sequence[ClientUpdate]
    ) -> AdapterState:
        """global + Σ w_k·delta_k / Σ w_k."""
        if not updates:
            raise ValueError("no client updates to aggregate")
        weights = self.weights(updates)
        total = float(sum(weights))
        new_state: AdapterState = {}
        for name, value in global_state.items():
            acc = torch.zeros_like(value, dtype=torch.float64)
            for w, u in zip(weights, updates, strict=True):
                acc += w * u.delta[name].to(torch.float64)
            new_state[name] = (value.to(torch.float64) + acc / total).to(value.dtype)
        return new_state


class FedAvg(Strategy):
    """Federated averaging (McMahan et al. 2017): weights by examples, or uniform."""

    name = "fedavg"

    def __init__(self, *, weighting: str = "examples") -> None:
        if weighting not in ("examples", "uniform"):
            raise ConfigError(
                f"federation.weighting: must be 'examples' or 'uniform' (got {weighting!r})"
            )
        self.weighting = weighting

    def weights(self, updates: Sequence[ClientUpdate]) -> list[float]:
        if self.weighting == "uniform":
            return [1.0] * len(updates)
        return [float(u.n_examples) for u in updates]
