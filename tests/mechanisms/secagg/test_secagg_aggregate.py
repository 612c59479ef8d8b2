"""The encrypted path reproduces plaintext weighted FedAvg, and costs what we say it costs."""

from __future__ import annotations

import math

import numpy as np
import tenseal as ts
import torch

from privaudit.mechanisms.secagg import (
    EncryptedUpdate,
    ExpectedRound,
    KeyHolder,
    SecureAggregator,
    encrypt_update,
    expansion_ratio,
    flatten,
    max_abs_error,
    plaintext_weighted_mean,
)


def _aggregate(holder: KeyHolder, expected: ExpectedRound, updates: list[EncryptedUpdate]):  # type: ignore[no-untyped-def]
    agg = SecureAggregator(holder.server_context(), expected=expected, min_clients=3)
    for update in updates:
        assert agg.add(update), agg.rejections
    return agg.finish()


def test_decrypted_mean_equals_plaintext_weighted_fedavg_within_1e_6_of_update_scale(
    holder, expected, updates, deltas, weights
):
    mean = holder.decrypt_mean(_aggregate(holder, expected, list(updates.values())))
    want = plaintext_weighted_mean(list(deltas.values()), list(weights.values()))
    scale = float(np.max(np.abs(flatten(want)[0])))
    err = max_abs_error(mean, want)
    assert flatten(want)[0].size == 74_498
    assert err <= 1e-6 * scale, (err, scale)
    # the unweighted mean is far off: a broken implementation that ignored weights fails here
    unweighted = plaintext_weighted_mean(list(deltas.values()), [1.0] * len(deltas))
    assert max_abs_error(unweighted, want) > 1e-3 * scale
    assert {k: v.shape for k, v in mean.items()} == {k: v.shape for k, v in want.items()}


def test_sum_carries_the_plaintext_total_weight_and_the_accepted_clients(
    holder, expected, updates, weights
):
    total = _aggregate(holder, expected, list(updates.values()))
    assert math.isclose(total.total_weight, sum(weights.values()))
    assert total.client_ids == tuple(updates)
    assert len(total.ciphertexts) == math.ceil(74_498 / holder.slots)


def test_torch_tensor_deltas_aggregate_like_numpy_ones(holder, weights, config_hash, make_delta):
    deltas = [make_delta(10 + i, with_head=False) for i in range(3)]
    torch_deltas = [{k: torch.from_numpy(v) for k, v in d.items()} for d in deltas]
    w = [3.0, 1.0, 2.0]
    expected = ExpectedRound.from_state(torch_deltas[0], adapter_config_hash=config_hash, round=0)
    ups = [
        encrypt_update(d, weight=wk, round=0, client_id=f"c{i}", adapter_config_hash=config_hash,
                       context_bytes=holder.client_context())
        for i, (d, wk) in enumerate(zip(torch_deltas, w, strict=True))
    ]
    mean = holder.decrypt_mean(_aggregate(holder, expected, ups))
    want = plaintext_weighted_mean(deltas, w)
    assert max_abs_error(mean, want) <= 1e-6 * float(np.max(np.abs(flatten(want)[0])))


def test_weight_is_multiplied_in_before_encryption(holder, updates, deltas, weights):
    # test-only: open client-a's first ciphertext with the secret key
    ctx = ts.context_from(holder.client_context())
    first = np.asarray(ts.ckks_vector_from(ctx, updates["client-a"].ciphertexts[0]).decrypt())
    plain = flatten(deltas["client-a"])[0][: holder.slots]
    np.testing.assert_allclose(first, weights["client-a"] * plain, atol=1e-6)


def test_every_ciphertext_packs_at_most_half_n_values(holder, updates):
    manifest = updates["client-a"].manifest
    ctx = ts.context_from(holder.server_context())
    sizes = [ts.ckks_vector_from(ctx, c).size() for c in updates["client-a"].ciphertexts]
    assert manifest.slots_per_ciphertext == 8192 // 2 == holder.slots
    assert max(sizes) <= 4096 and sum(sizes) == manifest.n_values == 74_498
    assert manifest.n_ciphertexts == len(sizes) == 19


def test_expansion_ratio_for_n8192_60_40_is_8x_per_full_ciphertext(holder, make_delta):
    # 73,728 values (the adapter without its head) fill exactly 18 ciphertexts
    full = encrypt_update(make_delta(5, with_head=False), weight=1.0, round=0, client_id="x",
                          adapter_config_hash="h", context_bytes=holder.client_context())
    assert full.manifest.n_values == 18 * 4096
    assert 8.0 <= expansion_ratio(full) <= 8.02


def test_expansion_ratio_on_the_75k_value_adapter_is_under_8_4(updates):
    # 74,498 values need 19 ciphertexts: the partly filled last one costs 8 * 19*4096/74,498 = 8.36
    ratio = expansion_ratio(updates["client-a"])
    padded = 8.0 * 19 * 4096 / 74_498
    assert padded <= ratio <= padded + 0.02, ratio
    assert ratio <= 8.4
