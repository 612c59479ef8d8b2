"""Homomorphic secure aggregation as a strategy wrapper: the weighted mean under CKKS.

Three roles run in this process, each with only what it may hold:

- each **client** multiplies its delta by its normalised weight w_k/Σw and encrypts it with
  :meth:`KeyHolder.client_context` (:func:`~privaudit.mechanisms.secagg.client.encrypt_update`);
- the **server** checks each update's manifest against the round and adds ciphertexts as
  they arrive, holding only :meth:`KeyHolder.server_context` (no secret key):
  :class:`~privaudit.mechanisms.secagg.server.SecureAggregator`;
- the **key holder** decrypts the sum only and divides by the total weight.

Normalising the weights keeps the summed values at the scale of one delta, far inside the
CKKS headroom (:func:`~privaudit.mechanisms.secagg.params.value_bound`); the mean is the same.
Pair with: clipping (DP) BEFORE this wrapper, never after; DP-FedAvg, when used, outside it.
The plaintext mean computed for ``max_abs_error`` is an audit check of this simulation (all
roles in one process); a real server cannot and does not compute it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.logs import SecureRoundLog as SecureRoundLog
from privaudit.mechanisms.federated.strategy import Strategy, WeightedMean, check_wrappable
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.secagg import (
    EncryptedUpdate,
    ExpectedRound,
    KeyHolder,
    SecureAggregator,
    encrypt_update,
    expansion_ratio,
    max_abs_error,
    plaintext_weighted_mean,
    value_bound,
)

#: What arrives at the server for one client's encrypted update: the update itself (default),
#: nothing (dropped), several (replayed) or a modified one (tests use this to tamper).
Channel = Callable[[EncryptedUpdate], Sequence[EncryptedUpdate]]


def _deliver(update: EncryptedUpdate) -> Sequence[EncryptedUpdate]:
    return (update,)


class SecureAggregation(Strategy):
    """``inner``'s weighted mean, computed under CKKS (see the module docstring)."""

    def __init__(
        self,
        inner: Strategy,
        key_holder: KeyHolder,
        *,
        adapter_config_hash: str,
        channel: Channel | None = None,
        verify: bool = True,
    ) -> None:
        check_wrappable(inner)
        self.inner = inner
        self.key_holder = key_holder
        self.adapter_config_hash = adapter_config_hash
        self.channel: Channel = channel if channel is not None else _deliver
        self.verify = verify
        self.name = f"{inner.name}+ckks"
        self._client_context = key_holder.client_context()
        self._server_context = key_holder.server_context()

    def weights(self, updates: Sequence[ClientUpdate]) -> list[float]:
        return self.inner.weights(updates)

    def select(self, round_index: int, client_ids: Sequence[str]) -> list[str]:
        return self.inner.select(round_index, client_ids)

    def weighted_mean(
        self,
        global_state: AdapterState,
        updates: Sequence[ClientUpdate],
        weights: Sequence[float],
        *,
        round_index: int,
    ) -> WeightedMean:
        cfg = self.key_holder.cfg
        total = float(sum(weights))
        bound = value_bound(cfg) / max(len(updates), 1)
        t0 = time.perf_counter()
        sent = [  # client side: weight, pack, encrypt
            encrypt_update(
                u.delta,
                weight=w / total,
                round=u.round,
                client_id=u.client_id,
                adapter_config_hash=self.adapter_config_hash,
                context_bytes=self._client_context,
                max_abs_value=bound,
            )
            for u, w in zip(updates, weights, strict=True)
        ]
        t1 = time.perf_counter()
        server = SecureAggregator(  # server side: the context without the secret key
            self._server_context,
            expected=ExpectedRound.from_state(
                global_state, adapter_config_hash=self.adapter_config_hash, round=round_index
            ),
            min_clients=cfg.min_clients,
        )
        for update in sent:
            for arrived in self.channel(update):
                server.add(arrived)
        try:
            encrypted_sum = server.finish()  # raises under min_clients, naming the rejections
        except SecureAggregationError as exc:
            heard = set(server.accepted) | {x.client_id for x in server.rejections}
            lost = [u.client_id for u in updates if u.client_id not in heard]
            if not lost:
                raise
            raise SecureAggregationError(
                f"{exc}; sent but never received: {', '.join(lost)}", exc.problems
            ) from exc
        t2 = time.perf_counter()
        mean = self.key_holder.decrypt_mean(encrypted_sum)  # key holder: the sum only
        t3 = time.perf_counter()
        accepted = list(encrypted_sum.client_ids)
        raw = {u.client_id: (u, w) for u, w in zip(updates, weights, strict=True)}
        error = None
        if self.verify and all(c in raw for c in accepted):
            want = plaintext_weighted_mean(
                [raw[c][0].delta for c in accepted], [raw[c][1] for c in accepted]
            )
            error = max_abs_error(mean, want)
        log = SecureRoundLog(
            round=round_index,
            accepted=accepted,
            rejections=list(server.rejections),
            max_abs_error=error,
            expansion_ratio=max(expansion_ratio(s) for s in sent),
            ciphertext_bytes=sum(s.ciphertext_bytes for s in sent),
            fp32_bytes=sum(4 * s.manifest.n_values for s in sent),
            encrypt_seconds=t1 - t0,
            aggregate_seconds=t2 - t1,
            decrypt_seconds=t3 - t2,
        )
        return WeightedMean(
            mean={k: torch.from_numpy(v) for k, v in mean.items()},
            total_weight=encrypted_sum.total_weight * total,
            clients=accepted,
            log=log,
        )
