"""Pairwise-masked secure aggregation split across Flower's parties: the server's half.

In process, :class:`~privaudit.mechanisms.federated.secure_masked.PairwiseMasking` plays every
party. Over Flower, each client's steps run on its node (:mod:`.masked_node`) and the server
runs :class:`RemoteMaskedAggregation` — the same server code
(:class:`~privaudit.mechanisms.federated.secure_masked.MaskedAggregation`: admission, the
threshold, recovery, the add-only sum, unmasking) fed by messages:

1. before the round's ``train`` messages, :func:`agree_masks` asks every chosen node for its
   signed advert, forwards all adverts and the identity registry, and collects the shares
   each node sealed to each peer (the server cannot open them); each node's ``train`` message
   carries the shares sealed to it;
2. the ``train`` replies carry masked updates (:meth:`RemoteMaskedAggregation.receive`);
3. the server asks the survivors for their releases (``mask_release``) and the key holder's
   node for the decrypted sum (``decrypt_masked``).

The identity registry is what the nodes answered to ``describe`` (trust on first use, as a
deployment without a provisioning step has it). The server never sees a plaintext delta, so
``max_abs_error`` is each client's own quantization error summed over the survivors and
divided by their weight share — an upper bound on the mean's error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Message
from flwr.serverapp import Grid

from privaudit.core.errors import InternalError
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.flower.masked_codec import (
    adverts_from_record,
    adverts_to_record,
    release_from_record,
    sealed_from_record,
)
from privaudit.mechanisms.federated.flower.messages import check_reply, query
from privaudit.mechanisms.federated.secure_masked import (
    Decryptor,
    MaskedAggregation,
    Releaser,
)
from privaudit.mechanisms.federated.strategy import Strategy, WeightedMean, find_layer
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.secagg.party import Advert, MaskedUpdate, Release, SealedShare

__all__ = ["RemoteMaskedAggregation", "agree_masks", "decrypt_over", "find_masked_layer",
           "release_over"]


class RemoteMaskedAggregation(MaskedAggregation):
    """The server's half of a masked round over Flower (module docstring). The server loop
    calls :meth:`agreed`, :meth:`receive` and sets ``release`` and ``decrypt`` before
    :meth:`weighted_mean`."""

    release: Releaser | None = None
    decrypt: Decryptor | None = None

    def agreed(self, adverts: Mapping[str, Advert]) -> None:
        self._adverts = dict(adverts)

    def receive(self, updates: Sequence[MaskedUpdate], *, encrypt_seconds: float,
                errors: Mapping[str, float]) -> None:
        """The round's masked updates as sent, the clients' total time to make them and each
        client's own quantization error."""
        self._sent, self._encrypt_seconds, self._errors = list(updates), encrypt_seconds, \
            dict(errors)

    def weighted_mean(self, global_state: AdapterState, updates: Sequence[ClientUpdate],
                      weights: Sequence[float], *, round_index: int) -> WeightedMean:
        if self.release is None or self.decrypt is None:
            raise InternalError("RemoteMaskedAggregation: no releases or key holder wired")
        sent = {u.client_id: u for u in self._sent}

        def error(survivors: list[str], mean: AdapterState) -> float | None:
            if not all(c in self._errors for c in survivors):
                return None
            share = sum(sent[c].weight for c in survivors)
            return sum(self._errors[c] for c in survivors) / share

        result = self.aggregate_masked(
            global_state, self._sent, self._adverts, total=float(sum(weights)),
            round_index=round_index, release=self.release, decrypt=self.decrypt, error=error,
            encrypt_seconds=self._encrypt_seconds)
        self._sent = []
        return result


def find_masked_layer(strategy: Strategy) -> MaskedAggregation | None:
    """The masked-aggregation wrapper inside ``strategy``'s wrapper chain, if any."""
    return find_layer(strategy, MaskedAggregation)


def _mask_query(action: str, node: int, round_index: int, extra: Mapping[str, Any] | None = None,
                records: dict[str, ConfigRecord] | None = None) -> Message:
    config = ConfigRecord({"round": round_index, **(extra or {})})
    return query(action, node, {"mask": config, **(records or {})})


def agree_masks(grid: Grid, nodes: Mapping[str, int], chosen: Sequence[str], round_index: int,
                layer: RemoteMaskedAggregation, timeout: float) -> dict[str, list[SealedShare]]:
    """Steps 1–2 over messages; the shares sealed to each chosen client, by holder."""
    replies = grid.send_and_receive(
        [_mask_query("mask_advertise", nodes[c], round_index) for c in chosen], timeout=timeout)
    adverts = [a for reply in replies for a in adverts_from_record(
        check_reply(reply, f"round {round_index} mask_advertise").content
        .config_records["advert"])]
    layer.agreed({a.client_id: a for a in adverts})
    registry = {c: k.public_bytes_raw() for c, k in layer.admission.registry.items()}
    extra = {"registry_ids": list(registry), "registry_keys": list(registry.values()),
             "threshold": min(layer.cfg.min_clients, len(adverts))}
    replies = grid.send_and_receive(
        [_mask_query("mask_deal", nodes[c], round_index, extra,
                     {"adverts": adverts_to_record(adverts)}) for c in chosen], timeout=timeout)
    by_holder: dict[str, list[SealedShare]] = {c: [] for c in chosen}
    for reply in replies:
        for s in sealed_from_record(check_reply(reply, f"round {round_index} mask_deal")
                                    .content.config_records["sealed"]):
            by_holder.setdefault(s.holder, []).append(s)
    return by_holder


def release_over(grid: Grid, nodes: Mapping[str, int], round_index: int, timeout: float
                 ) -> Releaser:
    """Step 4's releases, asked of each survivor's node."""
    def ask(survivors: Sequence[str], dropped: Sequence[str]) -> list[Release]:
        extra = {"survivors": list(survivors), "dropped": list(dropped)}
        replies = grid.send_and_receive(
            [_mask_query("mask_release", nodes[s], round_index, extra) for s in survivors],
            timeout=timeout)
        return [release_from_record(check_reply(r, f"round {round_index} mask_release")
                                    .content.config_records["release"])
                for r in replies if not r.has_error()]
    return ask


def decrypt_over(grid: Grid, holder: int | None, timeout: float) -> Decryptor:
    """The key holder's node, decrypting the ciphertext sum to residues mod t."""
    def ask(ciphertexts: tuple[bytes, ...], n_values: int) -> np.ndarray:
        if holder is None:
            raise InternalError("flower: no key holder node to decrypt the masked sum")
        message = query("decrypt_masked", holder, {"sum": ConfigRecord(
            {"ciphertexts": list(ciphertexts), "n_values": n_values})})
        replies = list(grid.send_and_receive([message], timeout=timeout))
        if not replies:
            raise InternalError(f"flower: the key holder (node {holder}) did not answer")
        raw = check_reply(replies[0], "decrypt_masked").content.config_records["sum"]
        residues = raw.get("residues")
        if not isinstance(residues, bytes):
            raise InternalError("flower decrypt_masked: no residues in the reply")
        return np.frombuffer(residues, dtype="<i8").astype(np.int64)
    return ask

