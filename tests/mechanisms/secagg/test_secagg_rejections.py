"""The server rejects bad updates by name, keeps the round going, and fails it under min_clients."""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import weakref

import numpy as np
import pytest

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.secagg import (
    EncryptedSum,
    EncryptedUpdate,
    KeyHolder,
    SecureAggregationConfig,
    SecureAggregator,
    encrypt_update,
    flatten,
    max_abs_error,
    plaintext_weighted_mean,
)


def _with_manifest(update: EncryptedUpdate, **changes: object) -> EncryptedUpdate:
    return dataclasses.replace(update, manifest=update.manifest.model_copy(update=changes))


def _with_chunk(
    update: EncryptedUpdate, index: int, blob: bytes, *, rehash: bool
) -> EncryptedUpdate:
    chunks = list(update.ciphertexts)
    chunks[index] = blob
    out = dataclasses.replace(update, ciphertexts=tuple(chunks))
    if rehash:
        digests = list(update.manifest.ciphertext_sha256)
        digests[index] = hashlib.sha256(blob).hexdigest()
        out = _with_manifest(out, ciphertext_sha256=tuple(digests))
    return out


def _flip(blob: bytes, pos: int) -> bytes:
    raw = bytearray(blob)
    raw[pos] ^= 0xFF
    return bytes(raw)


@pytest.fixture
def agg(holder, expected) -> SecureAggregator:
    return SecureAggregator(holder.server_context(), expected=expected, min_clients=3)


def _only_rejection(agg: SecureAggregator, client_id: str, reason: str) -> str:
    assert [(r.client_id, r.reason) for r in agg.rejections] == [(client_id, reason)]
    return agg.rejections[0].detail


def test_tampered_ciphertext_bytes_are_rejected_and_the_sum_is_untouched(
    agg, holder, updates, deltas, weights
):
    bad = _with_chunk(updates["client-d"], 4, _flip(updates["client-d"].ciphertexts[4], 5000),
                      rehash=False)
    assert not agg.add(bad)
    _only_rejection(agg, "client-d", "ciphertext_digest_mismatch")
    for cid in ("client-a", "client-b", "client-c"):
        assert agg.add(updates[cid])
    mean = holder.decrypt_mean(agg.finish())
    good = [c for c in weights if c != "client-d"]
    want = plaintext_weighted_mean([deltas[c] for c in good], [weights[c] for c in good])
    assert max_abs_error(mean, want) <= 1e-6 * float(np.max(np.abs(flatten(want)[0])))


@pytest.mark.parametrize("mangle", ["truncated", "garbage", "header_flip"])
def test_undecodable_ciphertext_with_a_matching_digest_is_rejected(agg, updates, mangle):
    blob = updates["client-b"].ciphertexts[0]
    mangled = {
        "truncated": blob[: len(blob) // 2],
        "garbage": np.random.default_rng(0).bytes(len(blob)),
        "header_flip": _flip(blob, 5),
    }[mangle]
    assert not agg.add(_with_chunk(updates["client-b"], 0, mangled, rehash=True))
    _only_rejection(agg, "client-b", "undecodable_ciphertext")
    assert agg.accepted == ()


def test_manifest_with_a_wrong_shape_is_rejected_naming_the_field(agg, updates):
    shapes = list(updates["client-a"].manifest.shapes)
    shapes[0] = (shapes[0][1], shapes[0][0])
    assert not agg.add(_with_manifest(updates["client-a"], shapes=tuple(shapes)))
    detail = _only_rejection(agg, "client-a", "layout_mismatch")
    assert "shapes" in detail and "item 0" in detail


def test_stale_round_is_rejected(agg, updates, round_number):
    assert not agg.add(_with_manifest(updates["client-a"], round=round_number - 1))
    assert f"expected {round_number}" in _only_rejection(agg, "client-a", "stale_round")


def test_wrong_adapter_config_hash_is_rejected(agg, updates):
    assert not agg.add(_with_manifest(updates["client-a"], adapter_config_hash="sha256:other"))
    _only_rejection(agg, "client-a", "config_hash_mismatch")


def test_duplicate_client_is_rejected_and_its_weight_counted_once(agg, updates, weights):
    for cid in ("client-a", "client-b", "client-c"):
        assert agg.add(updates[cid])
    assert not agg.add(updates["client-a"])
    _only_rejection(agg, "client-a", "duplicate_client")
    total = agg.finish()
    assert total.total_weight == weights["client-a"] + weights["client-b"] + weights["client-c"]
    assert total.client_ids == ("client-a", "client-b", "client-c")


def test_missing_ciphertext_is_rejected(agg, updates):
    full = updates["client-a"]
    short = dataclasses.replace(full, ciphertexts=full.ciphertexts[:-1])
    assert not agg.add(short)
    _only_rejection(agg, "client-a", "ciphertext_count_mismatch")


def test_non_positive_weight_smuggled_past_validation_is_rejected(agg, updates):
    manifest = updates["client-a"].manifest.model_construct(
        **{**updates["client-a"].manifest.model_dump(), "weight": -1.0}
    )
    assert not agg.add(dataclasses.replace(updates["client-a"], manifest=manifest))
    _only_rejection(agg, "client-a", "invalid_weight")


def test_ciphertext_at_another_scale_is_rejected_as_invalid(agg, updates, deltas, expected):
    other = KeyHolder.generate(SecureAggregationConfig(scale_bits=30))
    foreign = encrypt_update(deltas["client-c"], weight=1.0, round=expected.round,
                             client_id="client-c", adapter_config_hash=expected.adapter_config_hash,
                             context_bytes=other.client_context())
    assert not agg.add(foreign)
    assert "scale" in _only_rejection(agg, "client-c", "invalid_ciphertext")


def test_fewer_than_min_clients_fails_the_round_naming_the_rejections(agg, updates, round_number):
    agg.add(updates["client-a"])
    agg.add(_with_manifest(updates["client-b"], round=round_number + 1))
    with pytest.raises(SecureAggregationError) as info:
        agg.finish()
    message = str(info.value)
    assert "1 update(s) accepted, min_clients is 3" in message
    assert "client-b: stale_round" in message
    assert info.value.exit_code == 2


def test_add_after_finish_raises(agg, updates):
    for cid in ("client-a", "client-b", "client-c"):
        agg.add(updates[cid])
    agg.finish()
    with pytest.raises(SecureAggregationError, match="already finished"):
        agg.add(updates["client-d"])


def test_key_holder_refuses_to_decrypt_a_sum_of_fewer_than_min_clients(holder, updates, expected):
    single = EncryptedSum(
        round=expected.round, adapter_config_hash=expected.adapter_config_hash,
        layout=expected.layout, ciphertexts=updates["client-a"].ciphertexts,
        total_weight=1.0, client_ids=("client-a",),
    )
    with pytest.raises(SecureAggregationError, match="could reveal one client's update"):
        holder.decrypt_mean(single)


def test_aggregator_streams_and_keeps_no_reference_to_added_updates(
    agg, holder, deltas, expected
):
    update = encrypt_update(deltas["client-a"], weight=1.0, round=expected.round,
                            client_id="client-a", adapter_config_hash=expected.adapter_config_hash,
                            context_bytes=holder.client_context())
    ref = weakref.ref(update)
    assert agg.add(update)
    del update
    gc.collect()
    assert ref() is None
