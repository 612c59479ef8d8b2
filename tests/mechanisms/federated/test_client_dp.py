"""Client-level DP (DP-FedAvg) composed around the strategy, through the real training path."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
from opacus.accountants import RDPAccountant

from privaudit.core.errors import InternalError
from privaudit.mechanisms.dp import ClientAccountant
from privaudit.mechanisms.dp.client_level import global_norm
from privaudit.mechanisms.federated import (
    FEDERATION,
    ClientUpdate,
    DPFedAvg,
    FedAvg,
    SecureAggregation,
)
from privaudit.mechanisms.federated.privacy import client_sizes_of, dp_card
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.secagg import KeyHolder, SecureAggregationConfig

Federation = Any  # tests/mechanisms/federated/conftest.py
DELTA = 1e-3
S, Z = 0.05, 0.8


def _client_mode(**dp: Any) -> dict[str, Any]:
    base = {"mode": "client", "noise_multiplier": Z, "clip_norm": S, "delta": DELTA,
            "accountant": "rdp"}
    return {"privacy": {"dp": base | dp}, "federation": {"clients": 4, "rounds": 3}}


class _Recording(FedAvg):
    """FedAvg that remembers the weights it was asked to use."""

    def __init__(self) -> None:
        super().__init__(weighting="examples")
        self.seen: list[list[float]] = []

    def weighted_mean(self, global_state: Any, updates: Sequence[ClientUpdate],
                      weights: Sequence[float], *, round_index: int) -> Any:
        self.seen.append(list(weights))
        return super().weighted_mean(global_state, updates, weights, round_index=round_index)


def test_client_mode_clips_every_delta_to_s_before_it_leaves_the_client(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(_client_mode())
    sent: list[ClientUpdate] = []
    train_federation(fed.cfg.recipe, fed.bundle, fed.clients, fed.test,
                     initial_state=fed.initial_state(), seed=fed.cfg.seed,
                     on_round=lambda r, s, updates, rec: sent.extend(updates))
    assert len(sent) == 12
    assert all(global_norm(u.delta) <= S * (1 + 1e-5) for u in sent)
    assert any(u.metrics["delta_norm"] > S for u in sent)  # clipping actually happened


def test_client_epsilon_equals_opacus_over_one_step_per_round_at_rate_q(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(_client_mode(client_sample_rate=0.5))
    records: list[Any] = []
    result = train_federation(fed.cfg.recipe, fed.bundle, fed.clients, fed.test,
                              initial_state=fed.initial_state(), seed=fed.cfg.seed,
                              on_round=lambda r, s, u, rec: records.append(rec))
    independent = RDPAccountant()
    for _ in range(3):
        independent.step(noise_multiplier=Z, sample_rate=0.5)
    card = dp_card(fed.cfg.recipe, result.privacy, client_sizes=client_sizes_of(fed.clients),
                   max_records_per_subject=fed.data.max_records_per_subject(),
                   max_clients_per_subject=1)
    assert card.unit_of_privacy == "client"
    assert card.epsilon == pytest.approx(independent.get_epsilon(delta=DELTA), rel=1e-12)
    assert card.subject_level_epsilon == card.epsilon  # subjects live on one client
    assert [r.epsilon for r in records] == card.epsilon_per_round
    assert [len(r.clients) for r in records] != [4, 4, 4]  # Poisson sampling at q = 0.5
    logs = [r.aggregation.client_dp for r in records]
    assert all(log.expected_clients == 2.0 and log.noise_std == Z * S for log in logs)


def _zero_updates(n: int, sizes: Sequence[int]) -> list[ClientUpdate]:
    return [ClientUpdate(client_id=f"c{i}", round=1, delta={"w": torch.zeros(20_000)},
                         n_examples=sizes[i], metrics={}) for i in range(n)]


def test_dp_fedavg_weights_uniformly_with_a_fixed_denominator_and_noise_z_s() -> None:
    inner = _Recording()
    acc = ClientAccountant("rdp")
    dp = DPFedAvg(inner, clip_norm=S, noise_multiplier=Z, sample_rate=0.5, n_clients=4,
                  accountant=acc, seed=0)
    start = {"w": torch.zeros(20_000)}
    new, log = dp.aggregate_round(start, _zero_updates(3, [10, 200, 3000]), round_index=1)
    assert inner.seen == [[1.0, 1.0, 1.0]]  # not by example count
    # zero deltas: the update is noise alone, std z·S over the FIXED q·n = 2 (not 3 clients)
    assert float(new["w"].std()) == pytest.approx(Z * S / 2.0, rel=0.03)
    assert acc.history == [(Z, 0.5, 1)]
    assert log.client_dp is not None and log.client_dp.sampled == ["c0", "c1", "c2"]


def test_dp_fedavg_uniform_mean_of_clipped_deltas_is_what_is_noised() -> None:
    acc = ClientAccountant("rdp")
    dp = DPFedAvg(FedAvg(), clip_norm=10.0, noise_multiplier=1e-9, sample_rate=1.0,
                  n_clients=2, accountant=acc, seed=0)
    updates = [ClientUpdate(client_id="a", round=1, delta={"w": torch.tensor([1.0, 0.0])},
                            n_examples=1, metrics={}),
               ClientUpdate(client_id="b", round=1, delta={"w": torch.tensor([0.0, 3.0])},
                            n_examples=99, metrics={})]
    new, _ = dp.aggregate_round({"w": torch.zeros(2)}, updates, round_index=1)
    torch.testing.assert_close(new["w"], torch.tensor([0.5, 1.5]))  # (Σ δ) / (q·n)


def test_an_unclipped_delta_is_refused_by_the_server_wrapper() -> None:
    dp = DPFedAvg(FedAvg(), clip_norm=0.1, noise_multiplier=1.0, sample_rate=1.0, n_clients=1,
                  accountant=ClientAccountant("rdp"), seed=0)
    update = ClientUpdate(client_id="a", round=1, delta={"w": torch.ones(4)}, n_examples=1,
                          metrics={})
    with pytest.raises(InternalError, match="ClippedClient"):
        dp.aggregate_round({"w": torch.zeros(4)}, [update], round_index=1)


def test_dp_fedavg_must_be_outside_secure_aggregation() -> None:
    dp = DPFedAvg(FedAvg(), clip_norm=1.0, noise_multiplier=1.0, sample_rate=1.0, n_clients=3,
                  accountant=ClientAccountant("rdp"), seed=0)
    holder = KeyHolder.generate(SecureAggregationConfig(enabled=True))
    with pytest.raises(InternalError, match="outermost"):
        SecureAggregation(dp, holder, adapter_config_hash="h")  # would skip the noise
    with pytest.raises(InternalError, match="outermost"):
        dp.weighted_mean({"w": torch.zeros(4)}, [], [], round_index=1)


def test_client_mode_with_secure_aggregation_sums_clipped_deltas_under_encryption(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(_client_mode() | {"secure_aggregation": {"enabled": True,
                                                               "masking": "none"}})
    records: list[Any] = []
    result = train_federation(fed.cfg.recipe, fed.bundle, fed.clients, fed.test,
                              initial_state=fed.initial_state(), seed=fed.cfg.seed,
                              on_round=lambda r, s, u, rec: records.append(rec))
    assert result.privacy is not None and set(result.privacy.accountants) == {FEDERATION}
    for rec in records:
        secure = rec.aggregation.secure_aggregation
        assert secure is not None and sorted(secure.accepted) == sorted(rec.clients)
        assert secure.max_abs_error is not None and secure.max_abs_error < 1e-7
    assert not math.isnan(result.privacy.epsilon() or math.nan)
