"""A Flower node's side of a pairwise-masked round (:mod:`privaudit.mechanisms.secagg.party`).

The node's secrets never leave it: its Ed25519 identity (made on the first ``describe``, its
public half registered by the server) and each round's :class:`~privaudit.mechanisms.secagg.
party.MaskingParty` (mask key, share key, self-mask seed, the shares peers sealed to it) live
in the node's Flower ``Context.state``, between these messages:

- ``query`` / ``mask_advertise``: a fresh party for the round; reply its signed advert;
- ``query`` / ``mask_deal``: check the peers' adverts against the registry the server
  forwards, derive the pair seeds, reply the shares sealed to each peer;
- ``train`` (:func:`masked_update`): open the shares sealed to this node, reply the quantized,
  masked, BFV-encrypted, signed ``w·delta``, and its own quantization error;
- ``query`` / ``mask_release``: per peer, the share of its key (dropped) or of its self-mask
  (delivered), once per round;
- ``query`` / ``decrypt_masked``: as key holder (the node with the BFV secret key), decrypt
  the ciphertext sum and reply its residues mod t, still masked by the survivors' self-masks.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flwr.app import ConfigRecord, Context, Message, RecordDict

from privaudit.core.errors import InternalError, SecureAggregationError
from privaudit.mechanisms.federated.flower.masked_codec import (
    adverts_from_record,
    adverts_to_record,
    masked_to_record,
    release_to_record,
    sealed_from_record,
    sealed_to_record,
)
from privaudit.mechanisms.federated.flower.workload import ClientSide, MaskedCrypto
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.secagg.bfv import BFVKeyHolder, plain_modulus
from privaudit.mechanisms.secagg.masking import dequantize
from privaudit.mechanisms.secagg.packing import flatten
from privaudit.mechanisms.secagg.party import MaskingParty
from privaudit.mechanisms.secagg.signing import ClientIdentity

__all__ = ["IDENTITY_KEY", "PARTY_KEY", "advertise", "deal", "decrypt_masked",
           "masked_update", "node_identity", "release"]

#: Context.state keys: the node's identity keys, and its clients' parties of the round
IDENTITY_KEY = "privaudit.identity"
PARTY_KEY = "privaudit.masking"


def _crypto(side: ClientSide) -> MaskedCrypto:
    if side.masked is None:
        raise SecureAggregationError("flower node: asked for a masked round, but holds no "
                                     "pairwise-masking material")
    return side.masked


def node_identity(context: Context, client: str) -> ClientIdentity:
    """The client's Ed25519 identity, made once and kept in the node's state."""
    kept = context.state.get(IDENTITY_KEY)
    record = kept if isinstance(kept, ConfigRecord) else ConfigRecord()
    raw = record.get(client)
    if isinstance(raw, bytes):
        return ClientIdentity.from_private_bytes(raw)
    identity = ClientIdentity.generate()
    record[client] = identity.private_bytes()
    context.state[IDENTITY_KEY] = record
    return identity


def _load(context: Context, client: str, round_index: int) -> MaskingParty:
    kept = context.state.get(PARTY_KEY)
    text = kept.get(client) if isinstance(kept, ConfigRecord) else None
    if not isinstance(text, str):
        raise SecureAggregationError(f"flower node {client}: no mask agreement for round "
                                     f"{round_index}")
    party = MaskingParty.from_json(text, node_identity(context, client))
    if party.round != round_index:
        raise SecureAggregationError(f"flower node {client}: its masks are for round "
                                     f"{party.round}, asked for round {round_index}")
    return party


def _save(context: Context, party: MaskingParty) -> None:
    kept = context.state.get(PARTY_KEY)
    record = kept if isinstance(kept, ConfigRecord) else ConfigRecord()
    record[party.client_id] = party.to_json()
    context.state[PARTY_KEY] = record


def _round(msg: Message) -> int:
    value = msg.content.config_records["mask"].get("round")
    if not isinstance(value, int):
        raise InternalError(f"flower masked query: no round (got {value!r})")
    return value


def advertise(side: ClientSide, msg: Message, context: Context, client: str) -> Message:
    _crypto(side)
    party = MaskingParty(client, _round(msg), node_identity(context, client))
    _save(context, party)
    return Message(RecordDict({"advert": adverts_to_record([party.advert()])}), reply_to=msg)


def deal(side: ClientSide, msg: Message, context: Context, client: str) -> Message:
    _crypto(side)
    party = _load(context, client, _round(msg))
    config = msg.content.config_records["mask"]
    ids, keys, threshold = config.get("registry_ids"), config.get("registry_keys"), \
        config.get("threshold")
    if not isinstance(ids, list) or not isinstance(keys, list) or not isinstance(threshold, int):
        raise InternalError("flower mask_deal: registry_ids, registry_keys and threshold needed")
    registry = {str(c): Ed25519PublicKey.from_public_bytes(k)
                for c, k in zip(ids, keys, strict=True) if isinstance(k, bytes)}
    sealed = party.deal(adverts_from_record(msg.content.config_records["adverts"]), registry,
                        threshold=threshold)
    _save(context, party)
    return Message(RecordDict({"sealed": sealed_to_record(sealed)}), reply_to=msg)


def masked_update(side: ClientSide, context: Context, client: str, msg: Message, *,
                  delta: AdapterState, weight: float, round_index: int, seed: int
                  ) -> tuple[ConfigRecord, float]:
    """The train reply's masked update, and the client's own quantization error
    max |dequantize(q) − w·delta| (the server's bound on the sum's error is their sum)."""
    crypto = _crypto(side)
    party = _load(context, client, round_index)
    party.receive(sealed_from_record(msg.content.config_records["sealed"]))
    vector, _ = flatten(delta)
    weighted = vector * weight
    modulus = plain_modulus(crypto.config.plain_modulus_bits)
    update, q = party.masked_update(weighted, weight=weight,
                                    scale_bits=crypto.config.quantization_bits,
                                    modulus=modulus, public_context=crypto.public_context,
                                    rng=np.random.default_rng(seed))
    _save(context, party)
    back = dequantize(q, scale_bits=crypto.config.quantization_bits, modulus=modulus)
    return masked_to_record(update), float(np.max(np.abs(back - weighted), initial=0.0))


def release(side: ClientSide, msg: Message, context: Context, client: str) -> Message:
    _crypto(side)
    party = _load(context, client, _round(msg))
    config = msg.content.config_records["mask"]
    survivors, dropped = config.get("survivors"), config.get("dropped")
    if not isinstance(survivors, list) or not isinstance(dropped, list):
        raise InternalError("flower mask_release: survivors and dropped lists needed")
    out = party.release(survivors=[str(c) for c in survivors],
                        dropped=[str(c) for c in dropped])
    _save(context, party)
    return Message(RecordDict({"release": release_to_record(out)}), reply_to=msg)


def decrypt_masked(side: ClientSide, msg: Message) -> Message:
    crypto = _crypto(side)
    if crypto.secret_context is None:
        raise SecureAggregationError("flower node: asked to decrypt, but holds no BFV secret "
                                     "key (not the key holder)")
    config = msg.content.config_records["sum"]
    blobs, n_values = config.get("ciphertexts"), config.get("n_values")
    if not isinstance(blobs, list) or not isinstance(n_values, int):
        raise InternalError("flower decrypt_masked: ciphertexts and n_values needed")
    holder = BFVKeyHolder.from_secret_context(crypto.secret_context,
                                              crypto.config.plain_modulus_bits)
    residues = holder.decrypt([bytes(b) for b in blobs], n_values)  # type: ignore[arg-type]
    return Message(RecordDict({"sum": ConfigRecord(
        {"residues": np.asarray(residues, dtype="<i8").tobytes()})}), reply_to=msg)
