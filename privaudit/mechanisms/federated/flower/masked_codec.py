"""What travels in Flower records for a pairwise-masked round: adverts, sealed shares, masked
updates and releases (:mod:`privaudit.mechanisms.secagg.party`), as values.

Pure conversions, like :mod:`.codec`: keys and ciphertexts as bytes, ids as str, one
``ConfigRecord`` per message part, parallel lists where a message carries many.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from flwr.app import ConfigRecord

from privaudit.core.errors import InternalError
from privaudit.mechanisms.secagg.party import Advert, MaskedUpdate, Release, SealedShare
from privaudit.mechanisms.secagg.shares import KeyShare

__all__ = ["adverts_from_record", "adverts_to_record", "masked_from_record",
           "masked_to_record", "release_from_record", "release_to_record",
           "sealed_from_record", "sealed_to_record"]


def _list(record: ConfigRecord, key: str, kind: type) -> list:  # type: ignore[type-arg]
    value = record.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        raise InternalError(f"flower record: {key!r} must be a list of {kind.__name__}")
    return value


def _int(record: ConfigRecord, key: str) -> int:
    value = record.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InternalError(f"flower record: {key!r} must be an int (got {value!r})")
    return value


def adverts_to_record(adverts: Sequence[Advert]) -> ConfigRecord:
    return ConfigRecord({
        "ids": [a.client_id for a in adverts], "rounds": [a.round for a in adverts],
        "share_publics": [a.share_public for a in adverts],
        "mask_publics": [a.mask_public for a in adverts],
        "signatures": [a.signature for a in adverts]})


def adverts_from_record(record: ConfigRecord) -> list[Advert]:
    parts = [_list(record, "ids", str), _list(record, "rounds", int),
             _list(record, "share_publics", bytes), _list(record, "mask_publics", bytes),
             _list(record, "signatures", bytes)]
    return [Advert(*row) for row in zip(*parts, strict=True)]


def sealed_to_record(sealed: Sequence[SealedShare]) -> ConfigRecord:
    return ConfigRecord({
        "dealers": [s.dealer for s in sealed], "holders": [s.holder for s in sealed],
        "rounds": [s.round for s in sealed], "nonces": [s.nonce for s in sealed],
        "blobs": [s.blob for s in sealed]})


def sealed_from_record(record: ConfigRecord) -> list[SealedShare]:
    parts = [_list(record, "dealers", str), _list(record, "holders", str),
             _list(record, "rounds", int), _list(record, "nonces", bytes),
             _list(record, "blobs", bytes)]
    return [SealedShare(*row) for row in zip(*parts, strict=True)]


def masked_to_record(update: MaskedUpdate) -> ConfigRecord:
    return ConfigRecord({
        "client_id": update.client_id, "round": update.round, "weight": float(update.weight),
        "ciphertexts": list(update.ciphertexts), "nonce": update.nonce,
        "signature": update.signature})


def masked_from_record(record: ConfigRecord) -> MaskedUpdate:
    client, weight = record.get("client_id"), record.get("weight")
    nonce, signature = record.get("nonce"), record.get("signature")
    if not isinstance(client, str) or not isinstance(weight, float) \
            or not isinstance(nonce, bytes) or not isinstance(signature, bytes):
        raise InternalError("flower record: a masked update needs client_id (str), weight "
                            "(float), nonce and signature (bytes)")
    return MaskedUpdate(client_id=client, round=_int(record, "round"), weight=weight,
                        ciphertexts=tuple(_list(record, "ciphertexts", bytes)), nonce=nonce,
                        signature=signature)


def _shares_json(shares: dict[str, KeyShare]) -> str:
    return json.dumps({c: [i, a.hex(), b.hex()] for c, (i, a, b) in shares.items()})


def _shares_from(text: object) -> dict[str, KeyShare]:
    if not isinstance(text, str):
        raise InternalError("flower record: a release's shares must be a JSON str")
    return {c: (int(i), bytes.fromhex(a), bytes.fromhex(b))
            for c, (i, a, b) in json.loads(text).items()}


def release_to_record(release: Release) -> ConfigRecord:
    return ConfigRecord({"holder": release.holder, "round": release.round,
                         "key_shares": _shares_json(release.key_shares),
                         "self_shares": _shares_json(release.self_shares)})


def release_from_record(record: ConfigRecord) -> Release:
    holder = record.get("holder")
    if not isinstance(holder, str):
        raise InternalError("flower record: a release needs its holder (str)")
    return Release(holder=holder, round=_int(record, "round"),
                   key_shares=_shares_from(record.get("key_shares")),
                   self_shares=_shares_from(record.get("self_shares")))
