"""Pairwise-masked secure aggregation: the weighted mean with masks that cancel in the sum,
under BFV encryption (``secure_aggregation.masking: pairwise``).

One round, with the roles of :mod:`privaudit.mechanisms.federated.secure` and each holding
only what it may:

1. **Mask agreement.** Every client makes a fresh X25519 key pair and publishes the public
   half through the server; each pair of clients derives a shared seed
   (:func:`~privaudit.mechanisms.secagg.masking.pair_seed`), and each client hands Shamir
   shares of its private key to the others (:mod:`privaudit.mechanisms.secagg.shares`;
   threshold ``secure_aggregation.min_clients``).
2. **Client.** Its delta times its normalised weight is quantized to a fixed-point grid with
   stochastic rounding (``quantization_bits`` fraction bits), masked in Z_t with the pair
   masks and its own self-mask PRG(b) (double masking, b shared like the key), encrypted
   with the key holder's *public* BFV key, and signed with the client's own Ed25519 key
   (round, nonce, weight, ciphertext digests; its masking key is signed too).
3. **Server.** Admits only signed, fresh updates of the round's participants
   (:mod:`privaudit.mechanisms.secagg.signing`: unsigned, altered, replayed, stale or
   duplicated ones are refused and listed in the round log, their sender then counting as
   dropped) and adds their ciphertexts (it holds no secret key). When clients
   dropped after step 1, it collects the survivors' shares of each dropped client's key —
   fewer than the threshold and the round fails (exit 4, like ``min_clients``) —, recovers
   the key and the pair seeds, and removes those masks after decryption; for each survivor it
   recovers b from the survivors' shares and removes its self-mask. A survivor releases, per
   peer, a share of the key (peer dropped) or of b (peer counted), never both: a client
   falsely declared dropped stays hidden by its self-mask.
4. **Key holder.** Decrypts the sum only (exact: BFV), and the server unmasks and divides by
   the survivors' share of the weight.

Decrypting one client's ciphertext (the key holder colluding with the server) gives values
uniform on Z_t; the sum is exact up to the quantization error, < K·2^-quantization_bits per
value for K clients (:func:`~privaudit.mechanisms.secagg.masking.quantization_error_bound`).
In-process, all roles run here; the plaintext mean computed for ``max_abs_error`` is the
simulation's audit check, which a real server cannot compute.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.logs import SecureRoundLog
from privaudit.mechanisms.federated.strategy import Strategy, WeightedMean, check_wrappable
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.secagg.bfv import BFVKeyHolder, add_all, encrypt_ints
from privaudit.mechanisms.secagg.config import SecureAggregationConfig
from privaudit.mechanisms.secagg.masking import (
    ClientMaskKey,
    add_self_mask,
    dequantize,
    mask,
    pair_seed,
    quantization_error_bound,
    quantize,
    remove_self_mask,
    unmask_dropped,
)
from privaudit.mechanisms.secagg.measure import max_abs_error, plaintext_weighted_mean
from privaudit.mechanisms.secagg.packing import flatten, unflatten
from privaudit.mechanisms.secagg.results import Rejection
from privaudit.mechanisms.secagg.shares import KeyShare, combine_key, split_key
from privaudit.mechanisms.secagg.signing import (
    Admission,
    ClientIdentity,
    key_message,
    new_nonce,
    update_message,
    verifies,
)

__all__ = ["Agreement", "MaskedUpdate", "PairwiseMasking"]


@dataclass(frozen=True)
class MaskedUpdate:
    """What one client sends the server: its id, round, weight and BFV ciphertexts."""

    client_id: str
    round: int
    weight: float
    ciphertexts: tuple[bytes, ...]
    nonce: bytes = b""
    signature: bytes = b""  # the client's Ed25519 signature of update_message(...)

    def message(self) -> bytes:
        """What the signature covers (:func:`~privaudit.mechanisms.secagg.signing.
        update_message`)."""
        return update_message(self.client_id, self.round, self.nonce, self.weight,
                              self.ciphertexts)

    @property
    def ciphertext_bytes(self) -> int:
        return sum(len(c) for c in self.ciphertexts)


#: What arrives at the server for one client's masked update: the update (default), nothing
#: (the client dropped after the masks were agreed) or something else (tests).
MaskedChannel = Callable[[MaskedUpdate], Sequence[MaskedUpdate]]


def _deliver(update: MaskedUpdate) -> Sequence[MaskedUpdate]:
    return (update,)


@dataclass(frozen=True)
class Agreement:
    """One round's step 1, as the simulation holds it: each client's masking public key, its
    pair seeds, its self-mask seed, and the threshold shares of its key and self-mask seed
    (share j held by the j-th client of the round, in id order)."""

    public: dict[str, bytes]
    seeds: dict[str, dict[str, bytes]]
    self_seeds: dict[str, bytes]
    key_shares: dict[str, list[KeyShare]]
    self_shares: dict[str, list[KeyShare]]


def _private_bytes(key: ClientMaskKey) -> bytes:
    return key.private_key.private_bytes_raw()


class PairwiseMasking(Strategy):
    """``inner``'s weighted mean under pairwise masks and BFV (module docstring)."""

    def __init__(self, inner: Strategy, cfg: SecureAggregationConfig, *,
                 channel: MaskedChannel | None = None, verify: bool = True,
                 seed: int = 0) -> None:
        check_wrappable(inner)
        self.inner, self.cfg, self.verify = inner, cfg, verify
        self.channel: MaskedChannel = channel if channel is not None else _deliver
        self.name = f"{inner.name}+masked-bfv"
        self.key_holder = BFVKeyHolder.generate(cfg.plain_modulus_bits)
        self.modulus = self.key_holder.modulus
        self._public = self.key_holder.public_context()
        self._rng = np.random.default_rng(seed)  # stochastic rounding only, not the masks
        self._identities: dict[str, ClientIdentity] = {}
        self.admission = Admission(registry={})  # the server's, kept across rounds

    def identity(self, client_id: str) -> ClientIdentity:
        """The client's Ed25519 key, made and registered with the server on first use (a
        deployment provisions it before training)."""
        if client_id not in self._identities:
            self._identities[client_id] = ClientIdentity.generate()
            self.admission.registry[client_id] = self._identities[client_id].public_key
        return self._identities[client_id]

    def weights(self, updates: Sequence[ClientUpdate]) -> list[float]:
        return self.inner.weights(updates)

    def select(self, round_index: int, client_ids: Sequence[str]) -> list[str]:
        return self.inner.select(round_index, client_ids)

    def _agree(self, ids: Sequence[str], round_index: int) -> Agreement:
        """Step 1: each client's signed masking key, its pair seeds, its self-mask seed, and
        threshold shares of both secrets."""
        keys = {c: ClientMaskKey.generate() for c in ids}
        public = {c: k.public_bytes() for c, k in keys.items()}
        signed = {c: self.identity(c).sign(key_message(c, round_index, public[c])) for c in ids}
        for c in ids:  # each peer checks the key it is given before deriving a seed from it
            if not verifies(self.admission.registry[c], signed[c],
                            key_message(c, round_index, public[c])):
                raise SecureAggregationError(f"round {round_index}: {c}'s masking key is not "
                                             "signed by its registered identity")
        seeds = {c: {p: pair_seed(keys[c], c, p, public[p], round=round_index)
                     for p in ids if p != c} for c in ids}
        threshold = min(self.cfg.min_clients, len(ids))
        self_seeds = {c: os.urandom(32) for c in ids}
        return Agreement(
            public=public, seeds=seeds, self_seeds=self_seeds,
            key_shares={c: split_key(_private_bytes(keys[c]), threshold=threshold, n=len(ids))
                        for c in ids},
            self_shares={c: split_key(self_seeds[c], threshold=threshold, n=len(ids))
                         for c in ids})

    def client_update(self, delta: AdapterState, *, weight: float, client_id: str,
                      round_index: int, seeds: dict[str, bytes],
                      self_seed: bytes) -> MaskedUpdate:
        """Step 2 for one client: quantize ``weight``·delta, add the pair masks and the
        self-mask, encrypt (public key), sign."""
        vector, _ = flatten(delta)
        q = quantize(vector * weight, scale_bits=self.cfg.quantization_bits,
                     modulus=self.modulus, rng=self._rng)
        masked = add_self_mask(mask(q, own_id=client_id, seeds=seeds, modulus=self.modulus),
                               self_seed, self.modulus)
        ciphertexts, nonce = encrypt_ints(self._public, masked), new_nonce()
        signature = self.identity(client_id).sign(
            update_message(client_id, round_index, nonce, weight, ciphertexts))
        return MaskedUpdate(client_id=client_id, round=round_index, weight=weight,
                            ciphertexts=ciphertexts, nonce=nonce, signature=signature)

    def _admit(self, sent: Sequence[MaskedUpdate], ids: Sequence[str], round_index: int
               ) -> tuple[dict[str, MaskedUpdate], list[Rejection]]:
        """Step 3's admission: what the channel delivers, each update checked
        (:class:`~privaudit.mechanisms.secagg.signing.Admission`)."""
        admitted: dict[str, MaskedUpdate] = {}
        rejections: list[Rejection] = []
        for update in sent:
            for got in self.channel(update):
                refused = self.admission.check(
                    client_id=got.client_id, round=got.round, nonce=got.nonce,
                    signature=got.signature, message=got.message(),
                    expected_round=round_index, participants=ids, admitted=admitted)
                if refused is None:
                    admitted[got.client_id] = got
                else:
                    rejections.append(refused)
        return admitted, rejections

    def _recover(self, dropped: Sequence[str], survivors: Sequence[str], ids: Sequence[str],
                 agreed: Agreement, round_index: int
                 ) -> tuple[dict[str, dict[str, bytes]], dict[str, bytes]]:
        """Step 3's recovery, from the survivors' shares (at least the threshold, else the
        round fails): each dropped client's pair seeds with the survivors (from shares of its
        masking key) and each survivor's self-mask seed. An honest survivor releases, for each
        peer, a share of one of the two secrets only — of the key for a dropped peer, of the
        self-mask for a surviving one — so no peer is ever unmasked both ways."""
        threshold = min(self.cfg.min_clients, len(ids))
        if len(survivors) < threshold:
            raise SecureAggregationError(
                f"round {round_index}: {len(survivors)} client(s) delivered, "
                f"secure_aggregation.min_clients is {self.cfg.min_clients}; the masks of the "
                f"dropped ({', '.join(dropped)}) cannot be removed and the round fails")
        position = {c: i for i, c in enumerate(ids)}

        def from_survivors(shares: list[KeyShare]) -> bytes:
            return combine_key([shares[position[s]] for s in survivors][:threshold])

        pair: dict[str, dict[str, bytes]] = {}
        for d in dropped:
            key = ClientMaskKey(X25519PrivateKey.from_private_bytes(
                from_survivors(agreed.key_shares[d])))
            pair[d] = {s: pair_seed(key, d, s, agreed.public[s], round=round_index)
                       for s in survivors}
        own = {s: from_survivors(agreed.self_shares[s]) for s in survivors}
        return pair, own

    def weighted_mean(self, global_state: AdapterState, updates: Sequence[ClientUpdate],
                      weights: Sequence[float], *, round_index: int) -> WeightedMean:
        total = float(sum(weights))
        ids = sorted(u.client_id for u in updates)
        t0 = time.perf_counter()
        agreed = self._agree(ids, round_index)
        sent = [self.client_update(u.delta, weight=w / total, client_id=u.client_id,
                                   round_index=round_index, seeds=agreed.seeds[u.client_id],
                                   self_seed=agreed.self_seeds[u.client_id])
                for u, w in zip(updates, weights, strict=True)]
        t1 = time.perf_counter()
        arrived, rejections = self._admit(sent, ids, round_index)
        survivors = sorted(arrived)
        dropped = [c for c in ids if c not in arrived]
        recovered, self_seeds = self._recover(dropped, survivors, ids, agreed, round_index)
        summed = add_all(self._public, [arrived[c].ciphertexts for c in survivors])
        t2 = time.perf_counter()
        _, layout = flatten(global_state)
        plain = self.key_holder.decrypt(summed, layout.n_values)
        for seed in self_seeds.values():
            plain = remove_self_mask(plain, seed, self.modulus)
        for d, with_survivors in recovered.items():
            plain = unmask_dropped(plain, dropped_id=d, survivor_seeds=with_survivors,
                                   modulus=self.modulus)
        share = sum(arrived[c].weight for c in survivors)
        mean_vec = dequantize(plain, scale_bits=self.cfg.quantization_bits,
                              modulus=self.modulus) / share
        t3 = time.perf_counter()
        mean = {k: torch.from_numpy(np.asarray(v, dtype=np.float32))
                for k, v in unflatten(mean_vec, layout).items()}
        return WeightedMean(mean=mean, total_weight=share * total, clients=survivors,
                            log=self._log(updates, weights, sent, survivors, dropped, mean,
                                          share, round_index, (t0, t1, t2, t3), rejections))

    def _log(self, updates: Sequence[ClientUpdate], weights: Sequence[float],
             sent: Sequence[MaskedUpdate], survivors: list[str], dropped: list[str],
             mean: AdapterState, share: float, round_index: int,
             times: tuple[float, ...], rejections: list[Rejection]) -> SecureRoundLog:
        raw = {u.client_id: (u, w) for u, w in zip(updates, weights, strict=True)}
        error = None
        if self.verify:
            want = plaintext_weighted_mean([raw[c][0].delta for c in survivors],
                                           [raw[c][1] for c in survivors])
            error = max_abs_error({k: v.numpy() for k, v in mean.items()}, want)
        fp32 = [4 * flatten(u.delta)[1].n_values for u in updates]
        t0, t1, t2, t3 = times
        return SecureRoundLog(
            round=round_index, accepted=survivors, dropped=dropped, rejections=rejections,
            max_abs_error=error,
            quantization_error_bound=quantization_error_bound(  # on the sum; the mean: / share
                scale_bits=self.cfg.quantization_bits, n_clients=len(survivors)) / share,
            expansion_ratio=max(s.ciphertext_bytes / f for s, f in zip(sent, fp32,
                                                                        strict=True)),
            ciphertext_bytes=sum(s.ciphertext_bytes for s in sent), fp32_bytes=sum(fp32),
            encrypt_seconds=t1 - t0, aggregate_seconds=t2 - t1, decrypt_seconds=t3 - t2)
