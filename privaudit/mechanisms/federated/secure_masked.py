"""Pairwise-masked secure aggregation: the weighted mean with masks that cancel in the sum,
under BFV encryption (``secure_aggregation.masking: pairwise``).

One round, with the roles of :mod:`privaudit.mechanisms.federated.secure` and each holding
only what it may:

1. **Mask agreement.** Every client makes a fresh X25519 key pair and publishes the public
   half through the server; each pair of clients derives a shared seed
   (:func:`~privaudit.mechanisms.secagg.masking.pair_seed`), and each client hands Shamir
   shares of its private key to the others, sealed to each (:mod:`privaudit.mechanisms.
   secagg.shares`; threshold ``secure_aggregation.min_clients``).
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
In-process (:class:`PairwiseMasking`), all roles run here and the plaintext mean computed for
``max_abs_error`` is the simulation's audit check, which a real server cannot compute; over
Flower, the clients' steps run on their nodes (:mod:`privaudit.mechanisms.federated.flower.
masked`) and the server's half (:class:`MaskedAggregation`) is the same code. The protocol
itself is :mod:`privaudit.mechanisms.secagg.party`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.logs import SecureRoundLog
from privaudit.mechanisms.federated.strategy import Strategy, WeightedMean, check_wrappable
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.secagg.bfv import BFVKeyHolder, add_all, plain_modulus
from privaudit.mechanisms.secagg.config import SecureAggregationConfig
from privaudit.mechanisms.secagg.masking import dequantize, quantization_error_bound
from privaudit.mechanisms.secagg.measure import max_abs_error, plaintext_weighted_mean
from privaudit.mechanisms.secagg.packing import flatten, unflatten
from privaudit.mechanisms.secagg.party import (
    Advert,
    MaskedUpdate,
    MaskingParty,
    Release,
    check_survivors,
    recover_seeds,
    unmask_sum,
)
from privaudit.mechanisms.secagg.results import Rejection
from privaudit.mechanisms.secagg.signing import Admission, ClientIdentity

__all__ = ["MaskedAggregation", "MaskedUpdate", "PairwiseMasking", "Releaser"]


#: What arrives at the server for one client's masked update: the update (default), nothing
#: (the client dropped after the masks were agreed) or something else (tests).
MaskedChannel = Callable[[MaskedUpdate], Sequence[MaskedUpdate]]
#: Step 4 as the server asks it: (survivors, dropped) -> the survivors' releases.
Releaser = Callable[[Sequence[str], Sequence[str]], list[Release]]
#: The key holder: (ciphertexts of the sum, number of values) -> the sum's residues mod t.
Decryptor = Callable[[tuple[bytes, ...], int], np.ndarray]
#: The round's decryption error given the survivors and the mean (None: not measurable).
ErrorCheck = Callable[[list[str], AdapterState], float | None]


def _deliver(update: MaskedUpdate) -> Sequence[MaskedUpdate]:
    return (update,)


class MaskedAggregation(Strategy):
    """The server's half of a masked round, whichever engine runs the clients: admission of
    signed updates, recovery of masks from the survivors' releases, the add-only sum, and
    the unmasked mean from the key holder's decryption of that sum."""

    def __init__(self, inner: Strategy, cfg: SecureAggregationConfig, *, public_context: bytes,
                 channel: MaskedChannel | None = None) -> None:
        check_wrappable(inner)
        self.inner, self.cfg = inner, cfg
        self.channel: MaskedChannel = channel if channel is not None else _deliver
        self.name = f"{inner.name}+masked-bfv"
        self.modulus = plain_modulus(cfg.plain_modulus_bits)
        self.public_context = public_context
        self.admission = Admission(registry={})  # the server's, kept across rounds

    def weights(self, updates: Sequence[ClientUpdate]) -> list[float]:
        return self.inner.weights(updates)

    def select(self, round_index: int, client_ids: Sequence[str]) -> list[str]:
        return self.inner.select(round_index, client_ids)

    def _admit(self, sent: Sequence[MaskedUpdate], ids: Sequence[str], round_index: int
               ) -> tuple[dict[str, MaskedUpdate], list[Rejection]]:
        """What the channel delivers, each update checked
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

    def aggregate_masked(self, global_state: AdapterState, sent: Sequence[MaskedUpdate],
                         adverts: Mapping[str, Advert], *, total: float, round_index: int,
                         release: Releaser, decrypt: Decryptor, error: ErrorCheck,
                         encrypt_seconds: float) -> WeightedMean:
        """Steps 3–4 on the server (module docstring): admit, fail under the threshold, ask
        the survivors' releases, add, have the sum decrypted, unmask, divide."""
        ids = sorted(adverts)
        t1 = time.perf_counter()
        arrived, rejections = self._admit(sent, ids, round_index)
        survivors = sorted(arrived)
        dropped = [c for c in ids if c not in arrived]
        threshold = check_survivors(survivors, dropped, min_clients=self.cfg.min_clients,
                                    n_clients=len(ids), round=round_index)
        pair, own = recover_seeds(release(survivors, dropped), adverts, survivors=survivors,
                                  dropped=dropped, threshold=threshold, round=round_index)
        summed = add_all(self.public_context, [arrived[c].ciphertexts for c in survivors])
        t2 = time.perf_counter()
        _, layout = flatten(global_state)
        plain = unmask_sum(decrypt(summed, layout.n_values), pair, own, self.modulus)
        share = sum(arrived[c].weight for c in survivors)
        mean_vec = dequantize(plain, scale_bits=self.cfg.quantization_bits,
                              modulus=self.modulus) / share
        t3 = time.perf_counter()
        mean = {k: torch.from_numpy(np.asarray(v, dtype=np.float32))
                for k, v in unflatten(mean_vec, layout).items()}
        fp32 = 4 * layout.n_values
        log = SecureRoundLog(
            round=round_index, accepted=survivors, dropped=dropped, rejections=rejections,
            max_abs_error=error(survivors, mean),
            quantization_error_bound=quantization_error_bound(  # on the sum; the mean: / share
                scale_bits=self.cfg.quantization_bits, n_clients=len(survivors)) / share,
            expansion_ratio=max(s.ciphertext_bytes / fp32 for s in sent),
            ciphertext_bytes=sum(s.ciphertext_bytes for s in sent), fp32_bytes=fp32 * len(sent),
            encrypt_seconds=encrypt_seconds, aggregate_seconds=t2 - t1, decrypt_seconds=t3 - t2)
        return WeightedMean(mean=mean, total_weight=share * total, clients=survivors, log=log)


class PairwiseMasking(MaskedAggregation):
    """``inner``'s weighted mean under pairwise masks and BFV, every party in this process
    (module docstring): the server's half, plus the clients and the key holder simulated."""

    def __init__(self, inner: Strategy, cfg: SecureAggregationConfig, *,
                 channel: MaskedChannel | None = None, verify: bool = True,
                 seed: int = 0) -> None:
        self.key_holder = BFVKeyHolder.generate(cfg.plain_modulus_bits)
        super().__init__(inner, cfg, public_context=self.key_holder.public_context(),
                         channel=channel)
        self.verify = verify
        self._rng = np.random.default_rng(seed)  # stochastic rounding only, not the masks
        self._identities: dict[str, ClientIdentity] = {}

    def identity(self, client_id: str) -> ClientIdentity:
        """The client's Ed25519 key, made and registered with the server on first use (a
        deployment provisions it before training)."""
        if client_id not in self._identities:
            self._identities[client_id] = ClientIdentity.generate()
            self.admission.registry[client_id] = self._identities[client_id].public_key
        return self._identities[client_id]

    def agree(self, ids: Sequence[str], round_index: int) -> dict[str, MaskingParty]:
        """Steps 1–2 for every client: adverts, dealt and opened shares."""
        parties = {c: MaskingParty(c, round_index, self.identity(c)) for c in ids}
        adverts = [p.advert() for p in parties.values()]
        threshold = min(self.cfg.min_clients, len(ids))
        sealed = [s for p in parties.values()
                  for s in p.deal(adverts, self.admission.registry, threshold=threshold)]
        for c, p in parties.items():
            p.receive([s for s in sealed if s.holder == c])
        return parties

    def client_update(self, party: MaskingParty, delta: AdapterState, *,
                      weight: float) -> MaskedUpdate:
        """Step 3 for one client: quantize ``weight``·delta, mask, encrypt, sign."""
        vector, _ = flatten(delta)
        update, _ = party.masked_update(vector * weight, weight=weight,
                                        scale_bits=self.cfg.quantization_bits,
                                        modulus=self.modulus,
                                        public_context=self.public_context, rng=self._rng)
        return update

    def weighted_mean(self, global_state: AdapterState, updates: Sequence[ClientUpdate],
                      weights: Sequence[float], *, round_index: int) -> WeightedMean:
        total = float(sum(weights))
        t0 = time.perf_counter()
        parties = self.agree(sorted(u.client_id for u in updates), round_index)
        sent = [self.client_update(parties[u.client_id], u.delta, weight=w / total)
                for u, w in zip(updates, weights, strict=True)]
        encrypt_seconds = time.perf_counter() - t0
        raw = {u.client_id: (u, w) for u, w in zip(updates, weights, strict=True)}

        def error(survivors: list[str], mean: AdapterState) -> float | None:
            if not self.verify:
                return None
            want = plaintext_weighted_mean([raw[c][0].delta for c in survivors],
                                           [raw[c][1] for c in survivors])
            return max_abs_error({k: v.numpy() for k, v in mean.items()}, want)

        return self.aggregate_masked(
            global_state, sent, {c: p.adverts[c] for c, p in parties.items()}, total=total,
            round_index=round_index,
            release=lambda alive, gone: [parties[s].release(survivors=alive, dropped=gone)
                                         for s in alive],
            decrypt=self.key_holder.decrypt, error=error, encrypt_seconds=encrypt_seconds)
