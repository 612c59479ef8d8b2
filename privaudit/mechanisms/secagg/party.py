"""One client's side of a pairwise-masked round, and the server's recovery of masks: the
protocol both engines run (in-process: every party in one process; Flower: each on its node).

A round, following Bonawitz et al. (CCS 2017, §4) with the double masking of its dropout
recovery:

1. **Advertise** (:meth:`MaskingParty.advert`): two fresh X25519 public keys — one to seal
   shares to the client, one to derive pair masks — signed with the client's Ed25519 identity.
2. **Deal** (:meth:`MaskingParty.deal`): each client checks every peer's advert against the
   identity registry, derives its pair seeds, and splits its mask key and a fresh self-mask
   seed b into Shamir shares (threshold t), one per peer, each *sealed* to that peer
   (ChaCha20-Poly1305 under an HKDF key of the share-key exchange; the server routes
   sealed shares and can read none). :meth:`~MaskingParty.receive` opens the ones it holds.
3. **Send** (:meth:`MaskingParty.masked_update`): the weighted, quantized update plus pair
   masks and PRG(b) in Z_t, encrypted with the key holder's public BFV key, signed.
4. **Release** (:meth:`MaskingParty.release`): told who delivered, a survivor hands the server,
   per peer, its share of the peer's mask key (peer dropped) or of its b (peer delivered),
   never both, and only for one such split per round; :func:`recover_seeds` rebuilds the
   seeds from t releases and :func:`unmask_sum` takes them off the decrypted sum.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.secagg.bfv import encrypt_ints
from privaudit.mechanisms.secagg.masking import (
    ClientMaskKey,
    add_self_mask,
    mask,
    pair_seed,
    quantize,
    remove_self_mask,
    unmask_dropped,
)
from privaudit.mechanisms.secagg.shares import KeyShare, combine_key, split_key
from privaudit.mechanisms.secagg.signing import (
    ClientIdentity,
    key_message,
    new_nonce,
    update_message,
    verifies,
)

__all__ = ["Advert", "MaskedUpdate", "MaskingParty", "Release", "SealedShare",
           "check_survivors", "recover_seeds", "unmask_sum"]

_SEAL = b"privaudit/secagg/share-seal/v1"


@dataclass(frozen=True)
class Advert:
    """Step 1: a client's two public keys for one round, signed with its identity."""

    client_id: str
    round: int
    share_public: bytes
    mask_public: bytes
    signature: bytes = b""

    def message(self) -> bytes:
        return key_message(self.client_id, self.round, self.share_public + self.mask_public)


@dataclass(frozen=True)
class SealedShare:
    """Step 2: the dealer's shares (of its mask key and of b) for one holder, sealed to it."""

    dealer: str
    holder: str
    round: int
    nonce: bytes
    blob: bytes


@dataclass(frozen=True)
class MaskedUpdate:
    """Step 3: what one client sends the server: its id, round, weight and BFV ciphertexts."""

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


@dataclass(frozen=True)
class Release:
    """Step 4: one survivor's shares for the server — of the dropped peers' mask keys and of
    the delivered peers' self-mask seeds (itself included)."""

    holder: str
    round: int
    key_shares: dict[str, KeyShare] = field(default_factory=dict)
    self_shares: dict[str, KeyShare] = field(default_factory=dict)


def _framed(*parts: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def _seal_context(dealer: str, holder: str, round: int) -> bytes:
    return _SEAL + struct.pack(">q", round) + _framed(dealer.encode(), holder.encode())


def _seal_key(own: X25519PrivateKey, peer_public: bytes, context: bytes) -> bytes:
    shared = own.exchange(X25519PublicKey.from_public_bytes(peer_public))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=context).derive(shared)


def _pack(key_share: KeyShare, self_share: KeyShare) -> bytes:
    return struct.pack(">H", key_share[0]) + key_share[1] + key_share[2] + self_share[1] + \
        self_share[2]


def _unpack(raw: bytes) -> tuple[KeyShare, KeyShare]:
    if len(raw) != 66:
        raise SecureAggregationError(f"a sealed share opens to {len(raw)} bytes, not 66")
    (index,) = struct.unpack(">H", raw[:2])
    return (index, raw[2:18], raw[18:34]), (index, raw[34:50], raw[50:66])


class MaskingParty:
    """One client's secrets and duties for one round (module docstring)."""

    def __init__(self, client_id: str, round: int, identity: ClientIdentity, *,
                 share_key: X25519PrivateKey | None = None,
                 mask_key: X25519PrivateKey | None = None,
                 self_seed: bytes | None = None) -> None:
        self.client_id, self.round, self.identity = client_id, round, identity
        self.share_key = share_key or X25519PrivateKey.generate()
        self.mask_key = ClientMaskKey(mask_key or X25519PrivateKey.generate())
        self.self_seed = self_seed or os.urandom(32)
        self.adverts: dict[str, Advert] = {}
        self.seeds: dict[str, bytes] = {}
        self.held: dict[str, tuple[KeyShare, KeyShare]] = {}
        self.released: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def advert(self) -> Advert:
        unsigned = Advert(self.client_id, self.round,
                          self.share_key.public_key().public_bytes_raw(),
                          self.mask_key.public_bytes())
        return replace(unsigned, signature=self.identity.sign(unsigned.message()))

    def deal(self, adverts: Sequence[Advert], registry: Mapping[str, Ed25519PublicKey], *,
             threshold: int) -> list[SealedShare]:
        """Check every advert, derive the pair seeds, and seal one share pair per peer."""
        ids = sorted(a.client_id for a in adverts)
        if len(set(ids)) != len(ids) or self.client_id not in ids:
            raise SecureAggregationError(f"round {self.round}: the adverts sent to "
                                         f"{self.client_id} list {ids}")
        for a in adverts:
            known = registry.get(a.client_id)
            if a.round != self.round or known is None or not verifies(known, a.signature,
                                                                      a.message()):
                raise SecureAggregationError(
                    f"round {self.round}: {a.client_id}'s masking keys are not signed by its "
                    "registered identity for this round; the mask agreement stops")
        self.adverts = {a.client_id: a for a in adverts}
        self.seeds = {p: pair_seed(self.mask_key, self.client_id, p, a.mask_public,
                                   round=self.round)
                      for p, a in self.adverts.items() if p != self.client_id}
        keys = split_key(self.mask_key.private_key.private_bytes_raw(), threshold=threshold,
                         n=len(ids))
        bees = split_key(self.self_seed, threshold=threshold, n=len(ids))
        sealed = []
        for holder, key_share, self_share in zip(ids, keys, bees, strict=True):
            if holder == self.client_id:
                self.held[holder] = (key_share, self_share)
                continue
            context = _seal_context(self.client_id, holder, self.round)
            box = ChaCha20Poly1305(_seal_key(self.share_key, self.adverts[holder].share_public,
                                             context))
            nonce = os.urandom(12)
            sealed.append(SealedShare(self.client_id, holder, self.round, nonce,
                                      box.encrypt(nonce, _pack(key_share, self_share), context)))
        return sealed

    def receive(self, sealed: Sequence[SealedShare]) -> None:
        """Open the shares the peers dealt to this client (refusing any that do not open)."""
        for s in sealed:
            dealer = self.adverts.get(s.dealer)
            if s.holder != self.client_id or s.round != self.round or dealer is None:
                raise SecureAggregationError(f"round {self.round}: {self.client_id} was handed "
                                             f"a share from {s.dealer} for {s.holder}, round "
                                             f"{s.round}")
            context = _seal_context(s.dealer, self.client_id, self.round)
            box = ChaCha20Poly1305(_seal_key(self.share_key, dealer.share_public, context))
            try:
                self.held[s.dealer] = _unpack(box.decrypt(s.nonce, s.blob, context))
            except InvalidTag as exc:
                raise SecureAggregationError(f"round {self.round}: the share {s.dealer} sealed "
                                             f"to {self.client_id} does not open (altered in "
                                             "transit)") from exc

    def masked_update(self, weighted: np.ndarray, *, weight: float, scale_bits: int,
                      modulus: int, public_context: bytes,
                      rng: np.random.Generator) -> tuple[MaskedUpdate, np.ndarray]:
        """The signed, encrypted update of the already weighted vector, and its quantized
        values (the client's own record of what it sent, for its quantization error)."""
        q = quantize(weighted, scale_bits=scale_bits, modulus=modulus, rng=rng)
        masked = add_self_mask(mask(q, own_id=self.client_id, seeds=self.seeds,
                                    modulus=modulus), self.self_seed, modulus)
        ciphertexts, nonce = encrypt_ints(public_context, masked), new_nonce()
        signature = self.identity.sign(
            update_message(self.client_id, self.round, nonce, weight, ciphertexts))
        return MaskedUpdate(self.client_id, self.round, weight, ciphertexts, nonce,
                            signature), q

    def release(self, *, survivors: Sequence[str], dropped: Sequence[str]) -> Release:
        """Per peer, the share of its mask key (dropped) or of its b (delivered), never both;
        asked again with another split of the round's clients, it refuses."""
        split = (tuple(sorted(survivors)), tuple(sorted(dropped)))
        if set(split[0]) & set(split[1]) or set(split[0]) | set(split[1]) != set(self.adverts) \
                or self.client_id not in split[0]:
            raise SecureAggregationError(
                f"round {self.round}: {self.client_id} refuses to release shares for "
                f"survivors {list(split[0])} and dropped {list(split[1])}: each client of the "
                "round must be exactly one of the two, itself a survivor")
        if self.released is not None and self.released != split:
            raise SecureAggregationError(
                f"round {self.round}: {self.client_id} already released shares for another "
                "split of survivors and dropped; releasing both would unmask a client")
        missing = [c for c in self.adverts if c not in self.held]
        if missing:
            raise SecureAggregationError(f"round {self.round}: {self.client_id} holds no share "
                                         f"from {', '.join(missing)}")
        self.released = split
        return Release(self.client_id, self.round,
                       key_shares={d: self.held[d][0] for d in split[1]},
                       self_shares={s: self.held[s][1] for s in split[0]})

    # -- persisting between messages (a Flower node's Context.state) -----------------------

    def to_json(self) -> str:
        def share(s: KeyShare) -> list[object]:
            return [s[0], s[1].hex(), s[2].hex()]

        return json.dumps({
            "client_id": self.client_id, "round": self.round,
            "share_key": self.share_key.private_bytes_raw().hex(),
            "mask_key": self.mask_key.private_key.private_bytes_raw().hex(),
            "self_seed": self.self_seed.hex(),
            "adverts": [[a.client_id, a.round, a.share_public.hex(), a.mask_public.hex(),
                         a.signature.hex()] for a in self.adverts.values()],
            "held": {c: [share(k), share(b)] for c, (k, b) in self.held.items()},
            "released": None if self.released is None else [list(x) for x in self.released],
        })

    @classmethod
    def from_json(cls, text: str, identity: ClientIdentity) -> MaskingParty:
        raw = json.loads(text)

        def share(v: list[object]) -> KeyShare:
            return (int(v[0]), bytes.fromhex(str(v[1])), bytes.fromhex(str(v[2])))  # type: ignore[call-overload]

        party = cls(raw["client_id"], int(raw["round"]), identity,
                    share_key=X25519PrivateKey.from_private_bytes(bytes.fromhex(raw["share_key"])),
                    mask_key=X25519PrivateKey.from_private_bytes(bytes.fromhex(raw["mask_key"])),
                    self_seed=bytes.fromhex(raw["self_seed"]))
        adverts = [Advert(c, int(r), bytes.fromhex(s), bytes.fromhex(m), bytes.fromhex(g))
                   for c, r, s, m, g in raw["adverts"]]
        party.adverts = {a.client_id: a for a in adverts}
        party.seeds = {p: pair_seed(party.mask_key, party.client_id, p, a.mask_public,
                                    round=party.round)
                       for p, a in party.adverts.items() if p != party.client_id}
        party.held = {c: (share(k), share(b)) for c, (k, b) in raw["held"].items()}
        if raw["released"] is not None:
            survivors, dropped = raw["released"]
            party.released = (tuple(survivors), tuple(dropped))
        return party


# -- the server's side of step 4 ------------------------------------------------------------


def check_survivors(survivors: Sequence[str], dropped: Sequence[str], *, min_clients: int,
                    n_clients: int, round: int) -> int:
    """The round's Shamir threshold; SecureAggregationError (exit 4) when fewer clients
    delivered, naming the dropped."""
    threshold = min(min_clients, n_clients)
    if len(survivors) < threshold:
        raise SecureAggregationError(
            f"round {round}: {len(survivors)} client(s) delivered, "
            f"secure_aggregation.min_clients is {min_clients}; the masks of the dropped "
            f"({', '.join(dropped)}) cannot be removed and the round fails")
    return threshold


def recover_seeds(releases: Sequence[Release], adverts: Mapping[str, Advert], *,
                  survivors: Sequence[str], dropped: Sequence[str], threshold: int,
                  round: int) -> tuple[dict[str, dict[str, bytes]], dict[str, bytes]]:
    """From ``threshold`` survivors' releases: each dropped client's pair seeds with the
    survivors (from its recovered mask key) and each survivor's self-mask seed."""
    usable = [r for r in releases if r.round == round and r.holder in survivors]
    if len(usable) < threshold:
        raise SecureAggregationError(
            f"round {round}: {len(usable)} survivor(s) released shares, the threshold is "
            f"{threshold}; the masks cannot be removed and the round fails")
    use = usable[:threshold]
    pair: dict[str, dict[str, bytes]] = {}
    for d in dropped:
        key = ClientMaskKey(X25519PrivateKey.from_private_bytes(
            combine_key([r.key_shares[d] for r in use])))
        pair[d] = {s: pair_seed(key, d, s, adverts[s].mask_public, round=round)
                   for s in survivors}
    own = {s: combine_key([r.self_shares[s] for r in use]) for s in survivors}
    return pair, own


def unmask_sum(plain: np.ndarray, pair: Mapping[str, Mapping[str, bytes]],
               own: Mapping[str, bytes], modulus: int) -> np.ndarray:
    """The decrypted masked sum with every survivor's self-mask and every dropped client's
    pair masks removed: the survivors' quantized sum in Z_t."""
    for seed in own.values():
        plain = remove_self_mask(plain, seed, modulus)
    for d, with_survivors in pair.items():
        plain = unmask_dropped(plain, dropped_id=d, survivor_seeds=dict(with_survivors),
                               modulus=modulus)
    return plain
