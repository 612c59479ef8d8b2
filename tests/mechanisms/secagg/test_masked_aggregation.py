"""Pairwise-masked secure aggregation under BFV (``secure_aggregation.masking: pairwise``):
what the key holder sees of one client, the exact sum, dropouts, and who holds which key."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pytest
import tenseal as ts
import torch
from scipy.stats import chisquare, pearsonr

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.secure_masked import MaskedUpdate, PairwiseMasking
from privaudit.mechanisms.federated.strategy import FedAvg
from privaudit.mechanisms.secagg import SecureAggregationConfig, plaintext_weighted_mean
from privaudit.mechanisms.secagg.bfv import BFVKeyHolder, encrypt_ints
from privaudit.mechanisms.secagg.masking import dequantize, mask, quantize, remove_self_mask
from privaudit.mechanisms.secagg.packing import flatten
from tests.mechanisms.secagg.conftest import WEIGHTS, random_delta

CFG = SecureAggregationConfig(enabled=True, masking="pairwise")
IDS = sorted(WEIGHTS)


def _updates() -> list[ClientUpdate]:
    return [ClientUpdate(client_id=c, round=1, n_examples=int(WEIGHTS[c]), metrics={},
                         delta={k: torch.from_numpy(v) for k, v in random_delta(i).items()})
            for i, c in enumerate(IDS)]


def _mean(strategy: PairwiseMasking, updates: Sequence[ClientUpdate]):  # type: ignore[no-untyped-def]
    weights = [WEIGHTS[u.client_id] for u in updates]
    global_state = {k: torch.zeros_like(v) for k, v in updates[0].delta.items()}
    return strategy.weighted_mean(global_state, updates, weights, round_index=1)


def _max_error(got: dict[str, torch.Tensor], updates: Sequence[ClientUpdate]) -> float:
    want = plaintext_weighted_mean([{k: v.numpy() for k, v in u.delta.items()} for u in updates],
                                   [WEIGHTS[u.client_id] for u in updates])
    return max(float(np.max(np.abs(got[k].numpy() - want[k]))) for k in want)


def test_the_masked_mean_equals_the_plaintext_weighted_mean_within_the_quantization_bound(
) -> None:
    updates = _updates()
    result = _mean(PairwiseMasking(FedAvg(), CFG), updates)
    log = result.log
    assert log is not None and log.quantization_error_bound is not None
    assert result.clients == IDS and log.dropped == []
    error = _max_error(result.mean, updates)
    assert error <= log.quantization_error_bound < 1e-6
    assert log.max_abs_error == pytest.approx(error, abs=1e-9)
    assert log.expansion_ratio <= 8.0  # BFV: about 4x the fp32 bytes


def test_one_client_s_ciphertext_decrypts_to_uniform_values_uncorrelated_with_its_update(
) -> None:
    strategy = PairwiseMasking(FedAvg(), CFG)
    parties = strategy.agree(IDS, 1)
    delta = {k: torch.from_numpy(v) for k, v in random_delta(7).items()}
    sent = strategy.client_update(parties[IDS[0]], delta, weight=0.25)
    vector, layout = flatten(delta)
    seen = strategy.key_holder.decrypt(sent.ciphertexts, layout.n_values)
    t = strategy.modulus
    bins = np.bincount((seen.astype(np.float64) / t * 64).astype(int), minlength=64)
    assert chisquare(bins).pvalue > 0.001  # uniform on Z_t
    assert pearsonr(seen.astype(np.float64), vector).pvalue > 0.001  # unrelated to the update
    # the test can fail: the same client's quantized update without its masks is not uniform
    plain = quantize(vector * 0.25, scale_bits=CFG.quantization_bits, modulus=t,
                     rng=np.random.default_rng(0))
    plain_bins = np.bincount((plain.astype(np.float64) / t * 64).astype(int), minlength=64)
    assert chisquare(plain_bins).pvalue < 1e-6


def test_a_client_dropping_after_mask_agreement_leaves_the_mean_of_the_three_survivors(
) -> None:
    def drop_client_c(update: MaskedUpdate) -> Sequence[MaskedUpdate]:
        return () if update.client_id == IDS[2] else (update,)

    updates = _updates()
    result = _mean(PairwiseMasking(FedAvg(), CFG, channel=drop_client_c), updates)
    survivors = [u for u in updates if u.client_id != IDS[2]]
    assert result.clients == [u.client_id for u in survivors]
    assert result.log is not None and result.log.dropped == [IDS[2]]
    assert result.log.quantization_error_bound is not None
    assert _max_error(result.mean, survivors) <= result.log.quantization_error_bound


def test_fewer_survivors_than_min_clients_fail_the_round_naming_the_dropped(
) -> None:
    def drop_two(update: MaskedUpdate) -> Sequence[MaskedUpdate]:
        return () if update.client_id in IDS[:2] else (update,)

    with pytest.raises(SecureAggregationError, match="min_clients is 3") as err:
        _mean(PairwiseMasking(FedAvg(), CFG, channel=drop_two), _updates())
    assert IDS[0] in str(err.value) and IDS[1] in str(err.value)


def test_clients_and_the_server_get_a_context_without_the_secret_key() -> None:
    holder = BFVKeyHolder.generate(CFG.plain_modulus_bits)
    public = ts.context_from(holder.public_context())
    assert public.is_public() and not public.has_secret_key()
    secret = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=8192,
                        plain_modulus=holder.modulus, coeff_mod_bit_sizes=[60, 60])
    with pytest.raises(SecureAggregationError, match="holds the secret key"):
        encrypt_ints(secret.serialize(save_secret_key=True), np.zeros(4, dtype=np.int64))


def test_a_replayed_update_is_refused_and_named_and_the_round_keeps_one_copy() -> None:
    def twice(update: MaskedUpdate) -> Sequence[MaskedUpdate]:
        return (update, update) if update.client_id == IDS[1] else (update,)

    updates = _updates()
    result = _mean(PairwiseMasking(FedAvg(), CFG, channel=twice), updates)
    assert result.log is not None and result.clients == IDS
    assert [(r.client_id, r.reason) for r in result.log.rejections] == [(IDS[1], "replayed")]
    assert _max_error(result.mean, updates) <= result.log.quantization_error_bound  # type: ignore[operator]


def test_an_update_replayed_from_an_earlier_round_is_refused() -> None:
    kept: list[MaskedUpdate] = []

    def replay_round_1(update: MaskedUpdate) -> Sequence[MaskedUpdate]:
        if update.round == 1:
            kept.append(update)
            return (update,)
        return (update, kept[0]) if update.client_id == IDS[0] else (update,)

    strategy = PairwiseMasking(FedAvg(), CFG, channel=replay_round_1)
    updates = _updates()
    weights = [WEIGHTS[u.client_id] for u in updates]
    zero = {k: torch.zeros_like(v) for k, v in updates[0].delta.items()}
    strategy.weighted_mean(zero, updates, weights, round_index=1)
    second = strategy.weighted_mean(zero, updates, weights, round_index=2)
    assert second.log is not None
    assert [(r.client_id, r.reason) for r in second.log.rejections] == [(IDS[0], "stale_round")]


def _flip_last_byte(blob: bytes) -> bytes:
    return blob[:-1] + bytes([blob[-1] ^ 1])


@pytest.mark.parametrize(("tamper", "reason"), [
    (lambda u: replace(u, signature=b""), "unsigned"),
    (lambda u: replace(u, ciphertexts=(_flip_last_byte(u.ciphertexts[0]), *u.ciphertexts[1:])),
     "bad_signature"),
    (lambda u: replace(u, weight=u.weight * 2), "bad_signature"),
    (lambda u: replace(u, client_id="intruder"), "unknown_client"),
])
def test_an_unsigned_or_altered_update_is_refused_and_its_sender_counts_as_dropped(
        tamper: Callable[[MaskedUpdate], MaskedUpdate], reason: str) -> None:
    def alter_client_d(update: MaskedUpdate) -> Sequence[MaskedUpdate]:
        return (tamper(update),) if update.client_id == IDS[3] else (update,)

    updates = _updates()
    result = _mean(PairwiseMasking(FedAvg(), CFG, channel=alter_client_d), updates)
    assert result.log is not None and [r.reason for r in result.log.rejections] == [reason]
    assert result.log.dropped == [IDS[3]] and result.clients == IDS[:3]
    assert _max_error(result.mean, updates[:3]) <= result.log.quantization_error_bound  # type: ignore[operator]


def test_a_server_that_declares_a_live_client_dropped_still_cannot_read_its_update() -> None:
    """Double masking: with the client's pair seeds recovered (as for a dropout), its
    decrypted ciphertext is still masked by its self-mask, whose shares survivors release only
    for clients that delivered."""
    strategy = PairwiseMasking(FedAvg(), CFG)
    parties = strategy.agree(IDS, 1)
    delta = {k: torch.from_numpy(v) for k, v in random_delta(3).items()}
    victim = IDS[1]
    sent = strategy.client_update(parties[victim], delta, weight=0.25)
    vector, layout = flatten(delta)
    t = strategy.modulus
    seen = strategy.key_holder.decrypt(sent.ciphertexts, layout.n_values).astype(np.uint64)
    # the coalition strips every pair mask of the victim (its seeds, as a "dropout" gives)
    pair_masks = mask(np.zeros(layout.n_values, dtype=np.uint64), own_id=victim,
                      seeds=parties[victim].seeds, modulus=t)
    stripped = (seen + (np.uint64(t) - pair_masks)) % np.uint64(t)
    bins = np.bincount((stripped.astype(np.float64) / t * 64).astype(int), minlength=64)
    assert chisquare(bins).pvalue > 0.001  # still uniform: the self-mask hides it
    # and the test could fail: removing the self-mask too gives the quantized update back
    exposed = remove_self_mask(stripped, parties[victim].self_seed, t)
    assert np.max(np.abs(dequantize(exposed, scale_bits=CFG.quantization_bits, modulus=t)
                         - vector * 0.25)) < 2.0**-CFG.quantization_bits
