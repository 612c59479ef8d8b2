"""Signed updates for pairwise-masked secure aggregation: each client signs what it sends with
its own Ed25519 key (the ``cryptography`` package), and the server admits an update only
when its signature, round, nonce and sender check out.

- **Identity**: one Ed25519 key pair per client (:class:`ClientIdentity`), its public half
  registered with the server before training (a deployment provisions it; in-process the
  simulation does). A client's masking public key is signed too (:func:`key_message`), so the
  server cannot substitute its own key in the agreement and learn a pair's masks.
- **Update message** (:func:`update_message`): a fixed label, the client id, the round, a
  fresh 16-byte nonce, the weight and the sha256 of every ciphertext — so a changed byte of
  any ciphertext, another round or another weight breaks the signature.
- **Admission** (:class:`Admission`, one per training, kept across rounds): refuses an update
  that is unsigned, whose signature does not verify under its sender's registered key, from a
  sender not in the round's mask agreement, for another round, with a nonce seen before (a
  replay, in this round or an earlier one), or from a sender already admitted this round. A
  refused update is a :class:`~privaudit.mechanisms.secagg.results.Rejection` in the round
  log, and its sender counts as dropped (its masks are removed from the survivors' shares).
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from privaudit.mechanisms.secagg.results import Rejection

__all__ = ["Admission", "ClientIdentity", "key_message", "new_nonce", "update_message",
           "verifies"]

_UPDATE = b"privaudit/secagg/masked-update/v1"
_KEY = b"privaudit/secagg/mask-key/v1"


def _field(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def update_message(client_id: str, round: int, nonce: bytes, weight: float,
                   ciphertexts: Sequence[bytes]) -> bytes:
    """The bytes a client signs for one update (length-prefixed, unambiguous)."""
    digests = b"".join(hashlib.sha256(c).digest() for c in ciphertexts)
    return b"".join((_field(_UPDATE), _field(client_id.encode()), struct.pack(">q", round),
                     _field(nonce), struct.pack(">d", weight), _field(digests)))


def key_message(client_id: str, round: int, mask_public: bytes) -> bytes:
    """The bytes a client signs for its masking public key of one round."""
    return b"".join((_field(_KEY), _field(client_id.encode()), struct.pack(">q", round),
                     _field(mask_public)))


def new_nonce() -> bytes:
    return os.urandom(16)


@dataclass(frozen=True)
class ClientIdentity:
    """A client's Ed25519 signing key (its public half is what the server registers)."""

    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> ClientIdentity:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key (kept on the client's side only)."""
        return self.private_key.private_bytes_raw()

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> ClientIdentity:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def public_bytes(self) -> bytes:
        """The raw 32-byte public key the server registers."""
        return self.public_key.public_bytes_raw()


def verifies(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``public``'s over ``message``."""
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass
class Admission:
    """The server's check of each arriving update (module docstring); one per training."""

    registry: dict[str, Ed25519PublicKey]
    seen_nonces: set[bytes] = field(default_factory=set)

    def check(self, *, client_id: str, round: int, nonce: bytes, signature: bytes,
              message: bytes, expected_round: int, participants: Collection[str],
              admitted: Collection[str]) -> Rejection | None:
        """None to admit the update, else the rejection naming why."""
        def refuse(reason: str, detail: str) -> Rejection:
            return Rejection(client_id=client_id, round=round, reason=reason,  # type: ignore[arg-type]
                             detail=detail)

        if client_id not in participants or client_id not in self.registry:
            return refuse("unknown_client", f"{client_id!r} did not take part in round "
                          f"{expected_round}'s mask agreement")
        if not signature:
            return refuse("unsigned", "the update carries no signature")
        if not verifies(self.registry[client_id], signature, message):
            return refuse("bad_signature", f"the signature does not verify under "
                          f"{client_id!r}'s registered key (altered, or not its sender)")
        if round != expected_round:
            return refuse("stale_round", f"signed for round {round}, this is round "
                          f"{expected_round}")
        if nonce in self.seen_nonces:
            return refuse("replayed", "its nonce was seen before: a replayed update")
        if client_id in admitted:
            return refuse("duplicate_client", f"{client_id!r} already has an update in the sum")
        self.seen_nonces.add(nonce)
        return None
