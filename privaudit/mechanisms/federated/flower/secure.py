"""Secure aggregation split across Flower's parties: the server half as a strategy wrapper.

In process, :class:`~privaudit.mechanisms.federated.secure.SecureAggregation` plays all three
roles. Over Flower they are apart: each ClientApp encrypts ``(w_k/Σw)·delta_k`` itself
(:mod:`.client_app`); :class:`RemoteSecureAggregation` — the server — holds only the public
context, checks each arrived update's manifest and adds ciphertexts
(:class:`~privaudit.mechanisms.secagg.server.SecureAggregator`, privaudit's own), and hands
the ciphertext SUM to the key holder (a client node) through ``decrypt``. It replaces the
SecureAggregation layer of the run's strategy (:func:`split_secure_layer`); every other
wrapper (FedAvg weighting, DP-FedAvg sampling, noise and accounting) is reused unchanged.

The server never sees a plaintext delta, so it cannot compare the decrypted mean with the
plaintext one as the in-process engine does; each client measures what encryption changed in
its own update (it holds the key) and ``max_abs_error`` is logged as their sum over the
accepted clients divided by the weights' sum — an upper bound, as CKKS decryption is linear.
Pair with: clients
encrypting with the weights :func:`planned_weights` gives (the server sends them); with
DP-FedAvg outside it, whose noise the server adds after the key holder returns the mean.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from privaudit.core.errors import InternalError, SecureAggregationError
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.flower.workload import ClientCrypto, ServerCrypto
from privaudit.mechanisms.federated.secure import Channel, SecureAggregation, SecureRoundLog
from privaudit.mechanisms.federated.strategy import (
    Strategy,
    WeightedMean,
    check_wrappable,
    find_layer,
)
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.secagg import (
    EncryptedSum,
    EncryptedUpdate,
    ExpectedRound,
    SecureAggregator,
    expansion_ratio,
)

Decrypt = Callable[[EncryptedSum], dict[str, Any]]


class RemoteSecureAggregation(Strategy):
    """``inner``'s weighted mean from updates the clients encrypted (see module docstring).

    ``decrypt`` asks the key holder for the mean of a ciphertext sum (the server loop sets
    it once it knows the key holder's node). Before :meth:`weighted_mean`, the server loop
    calls :meth:`receive` with the round's encrypted updates as they arrived.
    """

    def __init__(
        self,
        inner: Strategy,
        crypto: ServerCrypto,
        *,
        decrypt: Decrypt | None = None,
        channel: Channel | None = None,
    ) -> None:
        check_wrappable(inner)
        self.inner = inner
        self.crypto = crypto
        self.decrypt = decrypt
        self.channel = channel
        self.name = f"{inner.name}+ckks"
        self._arrived: list[EncryptedUpdate] = []
        self._encrypt_seconds = 0.0
        self._errors: dict[str, float] = {}

    def receive(
        self,
        updates: Sequence[EncryptedUpdate],
        *,
        encrypt_seconds: float,
        errors: dict[str, float] | None = None,
    ) -> None:
        """The round's encrypted updates as sent, their clients' total encryption time and
        each client's own encryption error (see the module docstring)."""
        self._arrived = []
        for update in updates:
            self._arrived.extend(self.channel(update) if self.channel else (update,))
        self._encrypt_seconds = encrypt_seconds
        self._errors = dict(errors or {})

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
        total = float(sum(weights))
        t1 = time.perf_counter()
        server = SecureAggregator(  # the context without the secret key
            self.crypto.server_context,
            expected=ExpectedRound.from_state(
                global_state, adapter_config_hash=self.crypto.adapter_config_hash,
                round=round_index,
            ),
            min_clients=self.crypto.config.min_clients,
        )
        for arrived in self._arrived:
            server.add(arrived)
        encrypted_sum = server.finish()  # raises under min_clients, naming the rejections
        t2 = time.perf_counter()
        if self.decrypt is None:
            raise InternalError("RemoteSecureAggregation: no key holder to decrypt the sum")
        mean = self.decrypt(encrypted_sum)  # key holder: the sum only
        t3 = time.perf_counter()
        sent = [u for u in self._arrived if u.manifest.client_id in encrypted_sum.client_ids]
        log = SecureRoundLog(
            round=round_index,
            accepted=list(encrypted_sum.client_ids),
            rejections=list(server.rejections),
            max_abs_error=_error_bound(self._errors, encrypted_sum),
            expansion_ratio=max(expansion_ratio(s) for s in sent),
            ciphertext_bytes=sum(s.ciphertext_bytes for s in sent),
            fp32_bytes=sum(4 * s.manifest.n_values for s in sent),
            encrypt_seconds=self._encrypt_seconds,
            aggregate_seconds=t2 - t1,
            decrypt_seconds=t3 - t2,
        )
        self._arrived = []
        return WeightedMean(
            mean={k: torch.as_tensor(v) for k, v in mean.items()},
            total_weight=encrypted_sum.total_weight * total,
            clients=list(encrypted_sum.client_ids),
            log=log,
        )


def _error_bound(errors: dict[str, float], total: EncryptedSum) -> float | None:
    """Σ_k err_k / Σ_k w_k over the accepted clients; None when one did not report."""
    if not all(c in errors for c in total.client_ids) or not total.total_weight > 0:
        return None
    return sum(errors[c] for c in total.client_ids) / total.total_weight


def find_secure_layer(strategy: Strategy) -> SecureAggregation | None:
    """The in-process SecureAggregation wrapper inside ``strategy``'s wrapper chain, if any."""
    return find_layer(strategy, SecureAggregation)


def find_remote_layer(strategy: Strategy) -> RemoteSecureAggregation | None:
    """The RemoteSecureAggregation wrapper inside ``strategy``'s wrapper chain, if any."""
    return find_layer(strategy, RemoteSecureAggregation)


def split_secure_layer(
    strategy: Strategy, replace: Callable[[Any], Strategy], kind: type = SecureAggregation
) -> Strategy:
    """``strategy`` with its ``kind`` layer (SecureAggregation, or the masked one) swapped
    for ``replace(layer)``; the wrappers around it are shallow copies (they share accountants
    with the original)."""
    if isinstance(strategy, kind):
        return replace(strategy)
    inner = getattr(strategy, "inner", None)
    if not isinstance(inner, Strategy):
        raise InternalError(f"{type(strategy).__name__} has no {kind.__name__} layer")
    outer = copy.copy(strategy)
    outer.inner = split_secure_layer(inner, replace, kind)  # type: ignore[attr-defined]
    return outer


def crypto_of(layer: SecureAggregation) -> tuple[ClientCrypto, ServerCrypto]:
    """The clients' half (secret-key context) and the server's half (public context)."""
    holder = layer.key_holder
    return (
        ClientCrypto(
            config=holder.cfg,
            client_context=holder.client_context(),
            adapter_config_hash=layer.adapter_config_hash,
        ),
        ServerCrypto(
            config=holder.cfg,
            server_context=holder.server_context(),
            adapter_config_hash=layer.adapter_config_hash,
        ),
    )


def planned_weights(strategy: Strategy, chosen: Sequence[str], sizes: dict[str, int]
                    ) -> dict[str, float]:
    """The normalised weight w_k/Σw each chosen client encrypts with: the outermost
    strategy's own weighting, applied to the clients' record counts before they train."""
    stand_ins = [
        ClientUpdate(client_id=c, round=0, delta={}, n_examples=sizes[c], metrics={})
        for c in chosen
    ]
    weights = strategy.weights(stand_ins)
    total = float(sum(weights))
    if not total > 0:
        raise SecureAggregationError(f"aggregation weights must sum to > 0 (got {weights})")
    return {c: w / total for c, w in zip(chosen, weights, strict=True)}
