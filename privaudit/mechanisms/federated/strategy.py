"""Server strategies: a function of the round's client updates → the next global adapter.

A strategy chooses who takes part in a round (:meth:`Strategy.select`), weights the updates
(:meth:`Strategy.weights`) and forms their weighted mean (:meth:`Strategy.weighted_mean`).
Privacy composes AROUND a strategy, never by subclassing one: secure aggregation
(:class:`~privaudit.mechanisms.federated.secure.SecureAggregation`) replaces how the weighted
mean is computed, DP-FedAvg (:class:`~privaudit.mechanisms.federated.client_dp.DPFedAvg`)
samples clients, weights them uniformly and adds noise around whatever computes the mean.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from privaudit.core.errors import ConfigError, InternalError
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.logs import ClientLevelRoundLog, SecureRoundLog
from privaudit.mechanisms.models import AdapterState

LayerT = TypeVar("LayerT")

@dataclass
class WeightedMean:
    """Σ w_k·delta_k / Σ w_k over the updates that made it into the mean (``clients``), and
    Σ w_k of those. ``log``: what secure aggregation reports when it computed the mean."""

    mean: AdapterState
    total_weight: float
    clients: list[str]
    log: SecureRoundLog | None = None


@dataclass
class AggregationLog:
    """What the aggregation of one round reports besides the new adapter."""

    clients: list[str]
    secure_aggregation: SecureRoundLog | None = None
    client_dp: ClientLevelRoundLog | None = None


class Strategy(ABC):
    """Aggregates client deltas. Privacy wrappers compose around a strategy."""

    name: str = ""
    #: a wrapper that must not be wrapped (it releases the final, privatised update)
    must_be_outermost: bool = False

    @abstractmethod
    def weights(self, updates: Sequence[ClientUpdate]) -> list[float]:
        """The aggregation weight of each update (before normalisation)."""

    def select(self, round_index: int, client_ids: Sequence[str]) -> list[str]:
        """The clients that take part in round ``round_index`` (all of them by default)."""
        return list(client_ids)

    def weighted_mean(
        self,
        global_state: AdapterState,
        updates: Sequence[ClientUpdate],
        weights: Sequence[float],
        *,
        round_index: int,
    ) -> WeightedMean:
        """Σ w_k·delta_k / Σ w_k in float64, in plaintext."""
        if not updates:
            raise ValueError("no client updates to aggregate")
        total = float(sum(weights))
        mean: AdapterState = {}
        for name, value in global_state.items():
            acc = torch.zeros_like(value, dtype=torch.float64)
            for w, u in zip(weights, updates, strict=True):
                acc += w * u.delta[name].to(torch.float64)
            mean[name] = acc / total
        return WeightedMean(mean=mean, total_weight=total, clients=[u.client_id for u in updates])

    def aggregate_round(
        self, global_state: AdapterState, updates: Sequence[ClientUpdate], *, round_index: int
    ) -> tuple[AdapterState, AggregationLog]:
        """global + Σ w_k·delta_k / Σ w_k, and what the round's aggregation reports."""
        result = self.weighted_mean(
            global_state, updates, self.weights(updates), round_index=round_index
        )
        return apply_mean(global_state, result.mean), AggregationLog(
            clients=result.clients, secure_aggregation=result.log
        )

    def aggregate(
        self, global_state: AdapterState, updates: Sequence[ClientUpdate]
    ) -> AdapterState:
        """global + Σ w_k·delta_k / Σ w_k."""
        if not updates:
            raise ValueError("no client updates to aggregate")
        return self.aggregate_round(global_state, updates, round_index=updates[0].round)[0]


def find_layer(strategy: object, kind: type[LayerT]) -> LayerT | None:
    """The first ``kind`` wrapper in ``strategy``'s wrapper chain (``.inner`` links), if any."""
    layer = strategy
    while layer is not None:
        if isinstance(layer, kind):
            return layer
        layer = getattr(layer, "inner", None)
    return None


def check_wrappable(inner: Strategy) -> None:
    """Refuse to wrap a strategy that must stay the outermost one (e.g. DP-FedAvg)."""
    if inner.must_be_outermost:
        raise InternalError(f"{type(inner).__name__} must be the outermost strategy wrapper")


def apply_mean(global_state: AdapterState, mean: AdapterState) -> AdapterState:
    """global + mean, computed in float64 and cast back to each tensor's dtype."""
    return {
        name: (value.to(torch.float64) + mean[name].to(torch.float64)).to(value.dtype)
        for name, value in global_state.items()
    }


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
