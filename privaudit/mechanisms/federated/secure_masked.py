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
   masks, encrypted with the key holder's *public* BFV key, and signed with the client's own
   Ed25519 key (round, nonce, weight, ciphertext digests; its masking key is signed too).
3. **Server.** Admits only signed, fresh updates of the round's participants
   (:mod:`privaudit.mechanisms.secagg.signing`: unsigned, altered, replayed, stale or
   duplicated ones are refused and listed in the round log, their sender then counting as
   dropped) and adds their ciphertexts (it holds no secret key). When clients
   dropped after step 1, it collects the survivors' shares of each dropped client's key —
   fewer than the threshold and the round fails (exit 4, like ``min_clients``) —, recovers
   the key and the pair seeds, and removes those masks after decryption.
4. **Key holder.** Decrypts the sum only (exact: BFV), and the server unmasks and divides by
   the survivors' share of the weight.

Decrypting one client's ciphertext (the key holder colluding with the server) gives values
uniform on Z_t; the sum is exact up to the quantization error, < K·2^-quantization_bits per
value for K clients (:func:`~privaudit.mechanisms.secagg.masking.quantization_error_bound`).
In-process, all roles run here; the plaintext mean computed for ``max_abs_error`` is the
simulation's audit check, which a real server cannot compute.
"""

from __future__ import annotations

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
    dequantize,
    mask,
    pair_seed,
    quantization_error_bound,
    quantize,
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

__all__ = ["MaskedUpdate", "PairwiseMasking"]


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

    def _agree(self, ids: Sequence[str], round_index: int
               ) -> tuple[dict[str, ClientMaskKey], dict[str, dict[str, bytes]],
                          dict[str, list[KeyShare]]]:
        """Step 1: each client's key, its pair seeds, and the shares of its private key."""
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
        shares = {c: split_key(_private_bytes(keys[c]), threshold=threshold, n=len(ids))
                  for c in ids}
        return keys, seeds, shares

    def client_update(self, delta: AdapterState, *, weight: float, client_id: str,
                      round_index: int, seeds: dict[str, bytes]) -> MaskedUpdate:
        """Step 2 for one client: quantize ``weight``·delta, mask, encrypt (public key)."""
        vector, _ = flatten(delta)
        q = quantize(vector * weight, scale_bits=self.cfg.quantization_bits,
                     modulus=self.modulus, rng=self._rng)
        masked = mask(q, own_id=client_id, seeds=seeds, modulus=self.modulus)
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
                 shares: dict[str, list[KeyShare]], public: dict[str, bytes],
                 round_index: int) -> dict[str, dict[str, bytes]]:
        """Step 3's recovery: each dropped client's seeds with the survivors, from the
        survivors' shares of its key (at least the threshold, else the round fails)."""
        threshold = min(self.cfg.min_clients, len(ids))
        if len(survivors) < threshold:
            raise SecureAggregationError(
                f"round {round_index}: {len(survivors)} client(s) delivered, "
                f"secure_aggregation.min_clients is {self.cfg.min_clients}; the masks of the "
                f"dropped ({', '.join(dropped)}) cannot be removed and the round fails")
        position = {c: i for i, c in enumerate(ids)}
        out: dict[str, dict[str, bytes]] = {}
        for d in dropped:
            held = [shares[d][position[s]] for s in survivors][:threshold]
            key = ClientMaskKey(X25519PrivateKey.from_private_bytes(combine_key(held)))
            out[d] = {s: pair_seed(key, d, s, public[s], round=round_index)
                      for s in survivors}
        return out

    def weighted_mean(self, global_state: AdapterState, updates: Sequence[ClientUpdate],
                      weights: Sequence[float], *, round_index: int) -> WeightedMean:
        total = float(sum(weights))
        ids = sorted(u.client_id for u in updates)
        t0 = time.perf_counter()
        keys, seeds, shares = self._agree(ids, round_index)
        public = {c: k.public_bytes() for c, k in keys.items()}
        sent = [self.client_update(u.delta, weight=w / total, client_id=u.client_id,
                                   round_index=round_index, seeds=seeds[u.client_id])
                for u, w in zip(updates, weights, strict=True)]
        t1 = time.perf_counter()
        arrived, rejections = self._admit(sent, ids, round_index)
        survivors = sorted(arrived)
        dropped = [c for c in ids if c not in arrived]
        recovered = self._recover(dropped, survivors, ids, shares, public, round_index)
        summed = add_all(self._public, [arrived[c].ciphertexts for c in survivors])
        t2 = time.perf_counter()
        _, layout = flatten(global_state)
        plain = self.key_holder.decrypt(summed, layout.n_values)
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
