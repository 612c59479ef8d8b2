"""Client-level DP (DP-FedAvg; McMahan, Ramage, Talwar & Zhang, ICLR 2018) as two wrappers:
:class:`ClippedClient` around the client update and :class:`DPFedAvg` around the strategy.

The neighbouring relation is add/remove one client's whole data set. The guarantee needs
BOTH wrappers with the same clip norm S: every delta clipped on its client (before any
encryption), clients Poisson-sampled at the rate q the accountant is told, uniform weights,
Gaussian noise of std z·S on the sum, and the FIXED denominator q·n.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from privaudit.core.errors import InternalError
from privaudit.mechanisms.dp.accounting import ClientAccountant
from privaudit.mechanisms.dp.client_level import (
    add_noise_to_sum,
    clip_delta,
    global_norm,
    sample_clients,
)
from privaudit.mechanisms.federated.client import ClientFn, ClientState, ClientUpdate
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.federated.logs import ClientLevelRoundLog as ClientLevelRoundLog
from privaudit.mechanisms.federated.strategy import (
    AggregationLog,
    Strategy,
    WeightedMean,
    apply_mean,
    check_wrappable,
)
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.tasks import EncodedSet

_NORM_SLACK = 1e-5


class ClippedClient:
    """A client update whose delta is clipped to global L2 norm ``clip_norm`` before it leaves
    the client. Pair with :class:`DPFedAvg` (same S) on the server; with secure aggregation
    the clipped delta is what gets encrypted."""

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
        update, new_state = self.inner(
            model, global_state, data, cfg, state, task=task, round_index=round_index, seed=seed
        )
        clipped, norm = clip_delta(update.delta, clip_norm=self.clip_norm)
        metrics = update.metrics | {"delta_norm": norm, "clipped": float(norm > self.clip_norm)}
        return dataclasses.replace(update, delta=clipped, metrics=metrics), new_state


def _round_generator(seed: int, round_index: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + round_index * 7_919 + salt) % 2**63)


class DPFedAvg(Strategy):
    """DP-FedAvg around ``inner`` (which only computes the sum's mean: plain or encrypted).

    Each round: Poisson-sample clients at rate q; check every delta is within S (pair with
    :class:`ClippedClient`); take the inner strategy's mean with UNIFORM weights, turn it
    back into the sum; add N(0, z²S²) per coordinate; divide by the fixed q·n; step the
    federation accountant once (σ = z, rate q). With secure aggregation the key holder, who
    decrypts the sum, adds the noise and must be trusted to. Must be the OUTERMOST strategy
    wrapper: nothing may re-weight or re-average what it returns.
    """

    name = "dp-fedavg"
    must_be_outermost = True

    def __init__(
        self,
        inner: Strategy,
        *,
        clip_norm: float,
        noise_multiplier: float,
        sample_rate: float,
        n_clients: int,
        accountant: ClientAccountant,
        seed: int,
    ) -> None:
        check_wrappable(inner)
        self.inner = inner
        self.clip_norm = clip_norm
        self.noise_multiplier = noise_multiplier
        self.sample_rate = sample_rate
        self.n_clients = n_clients
        self.accountant = accountant
        self.seed = seed

    @property
    def expected_clients(self) -> float:
        return self.sample_rate * self.n_clients

    def weights(self, updates: Sequence[ClientUpdate]) -> list[float]:
        return [1.0] * len(updates)

    def select(self, round_index: int, client_ids: Sequence[str]) -> list[str]:
        if len(client_ids) != self.n_clients:
            raise InternalError(
                f"DPFedAvg was set up for {self.n_clients} clients, got {len(client_ids)}"
            )
        chosen = sample_clients(
            len(client_ids),
            sample_rate=self.sample_rate,
            generator=_round_generator(self.seed, round_index, 1),
        )
        return [client_ids[i] for i in chosen]

    def weighted_mean(
        self,
        global_state: AdapterState,
        updates: Sequence[ClientUpdate],
        weights: Sequence[float],
        *,
        round_index: int,
    ) -> WeightedMean:
        raise InternalError("DPFedAvg must be the outermost strategy wrapper")

    def aggregate_round(
        self, global_state: AdapterState, updates: Sequence[ClientUpdate], *, round_index: int
    ) -> tuple[AdapterState, AggregationLog]:
        for u in updates:
            norm = global_norm(u.delta)
            if norm > self.clip_norm * (1 + _NORM_SLACK):
                raise InternalError(
                    f"DPFedAvg: delta of {u.client_id} has norm {norm:.6g} > clip_norm "
                    f"{self.clip_norm}; pair DPFedAvg with ClippedClient"
                )
        summed: AdapterState
        if updates:
            result = self.inner.weighted_mean(
                global_state, updates, self.weights(updates), round_index=round_index
            )
            summed = {k: v.to(torch.float64) * result.total_weight for k, v in result.mean.items()}
            clients, secure = result.clients, result.log
        else:  # nobody sampled: the release is noise alone, as the analysis assumes
            summed = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in global_state.items()}
            clients, secure = [], None
        noisy = add_noise_to_sum(
            summed,
            clip_norm=self.clip_norm,
            noise_multiplier=self.noise_multiplier,
            expected_clients=self.expected_clients,
            generator=_round_generator(self.seed, round_index, 2),
        )
        self.accountant.step(
            noise_multiplier=self.noise_multiplier,
            sample_rate=self.sample_rate,
            num_steps=1,
            round_index=round_index - 1,
        )
        log = ClientLevelRoundLog(
            sampled=[u.client_id for u in updates],
            expected_clients=self.expected_clients,
            noise_std=self.noise_multiplier * self.clip_norm,
            clip_norm=self.clip_norm,
        )
        return apply_mean(global_state, noisy), AggregationLog(
            clients=clients, secure_aggregation=secure, client_dp=log
        )
