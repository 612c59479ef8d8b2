"""Pairwise-masked secure aggregation primitives: seeds agree, masks cancel, masked is uniform."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from privaudit.mechanisms.secagg.masking import (
    ClientMaskKey,
    dequantize,
    mask,
    pair_seed,
    prg_uniform,
    quantization_error_bound,
    quantize,
    sum_mod,
    unmask_dropped,
)

IDS = ("client-a", "client-b", "client-c", "client-d")
PRIME = 2**20 + 7  # prime, not a power of two: exercises the rejection sampling
ROUND = 5


def agree_seeds(ids: tuple[str, ...] = IDS, round: int = ROUND) -> dict[str, dict[str, bytes]]:
    """Each client derives, from its own key and the peers' public keys, its seed per peer."""
    keys = {cid: ClientMaskKey.generate() for cid in ids}
    return {
        cid: {
            peer: pair_seed(keys[cid], cid, peer, keys[peer].public_bytes(), round=round)
            for peer in ids if peer != cid
        }
        for cid in ids
    }


def fixed_seed(label: str) -> bytes:
    """A deterministic 32-byte seed, so that the statistical tests are reproducible."""
    return hashlib.sha256(label.encode()).digest()


def uniformity_p(values: np.ndarray, modulus: int, bins: int = 64) -> float:
    """Chi-square p-value of ``values`` binned into ``bins`` equal slices of [0, modulus)."""
    counts = np.bincount([int(v) * bins // modulus for v in values], minlength=bins)
    edges = [-(-k * modulus // bins) for k in range(bins + 1)]  # bin k: [ceil(k m/b), ...)
    return float(stats.chisquare(counts, f_exp=np.diff(edges) / modulus * len(values)).pvalue)


def test_both_clients_of_a_pair_derive_the_same_seed() -> None:
    a, b = ClientMaskKey.generate(), ClientMaskKey.generate()
    seed_ab = pair_seed(a, "alice", "bob", b.public_bytes(), round=3, context=b"run-1")
    seed_ba = pair_seed(b, "bob", "alice", a.public_bytes(), round=3, context=b"run-1")
    assert seed_ab == seed_ba
    assert len(seed_ab) == 32


def test_another_round_pair_or_context_gives_another_seed() -> None:
    a, b, c = (ClientMaskKey.generate() for _ in range(3))
    base = pair_seed(a, "alice", "bob", b.public_bytes(), round=3)
    others = [
        pair_seed(a, "alice", "bob", b.public_bytes(), round=4),
        pair_seed(a, "alice", "carol", c.public_bytes(), round=3),
        pair_seed(a, "alice", "bob", b.public_bytes(), round=3, context=b"other-run"),
        pair_seed(a, "alice", "bobby", b.public_bytes(), round=3),  # same keys, other ids
    ]
    assert len({base, *others}) == 1 + len(others)


def test_pair_seed_refuses_a_client_paired_with_itself() -> None:
    a = ClientMaskKey.generate()
    with pytest.raises(ValueError, match="itself"):
        pair_seed(a, "alice", "alice", a.public_bytes(), round=0)


def test_prg_is_deterministic_in_range_and_depends_on_the_seed() -> None:
    first = prg_uniform(fixed_seed("s"), 5000, PRIME)
    assert np.array_equal(first, prg_uniform(fixed_seed("s"), 5000, PRIME))
    assert np.array_equal(first[:100], prg_uniform(fixed_seed("s"), 100, PRIME))
    assert first.dtype == np.uint64 and int(first.min()) >= 0 and int(first.max()) < PRIME
    assert not np.array_equal(first, prg_uniform(fixed_seed("t"), 5000, PRIME))


def test_prg_is_uniform_for_a_large_modulus_where_word_mod_m_would_be_biased() -> None:
    modulus = 3 * 2**60  # 2**64 % modulus is large: reducing 64-bit words mod m fails this test
    values = prg_uniform(fixed_seed("prg-large-modulus"), 40_000, modulus)
    assert uniformity_p(values, modulus) > 1e-3
    words = np.frombuffer(np.random.default_rng(1).bytes(8 * 40_000), dtype=np.uint64)
    assert uniformity_p(words % np.uint64(modulus), modulus) < 1e-10


def test_masks_of_four_clients_cancel_exactly_in_the_sum() -> None:
    seeds = agree_seeds()
    rng = np.random.default_rng(0)
    quantized = {cid: rng.integers(0, PRIME, size=2000, dtype=np.uint64) for cid in IDS}
    masked = [mask(quantized[c], own_id=c, seeds=seeds[c], modulus=PRIME) for c in IDS]
    assert all(not np.array_equal(m, quantized[c]) for m, c in zip(masked, IDS, strict=True))
    assert np.array_equal(sum_mod(masked, PRIME), sum_mod(list(quantized.values()), PRIME))


@pytest.mark.parametrize("seed", range(5))
def test_dequantized_masked_sum_is_within_the_error_bound_of_the_float_sum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    modulus, scale_bits = 2**40 + 15, 16
    updates = {cid: rng.normal(0.0, 1.0, size=1000) for cid in IDS}
    seeds = agree_seeds()
    masked = [
        mask(quantize(updates[c], scale_bits=scale_bits, modulus=modulus, rng=rng),
             own_id=c, seeds=seeds[c], modulus=modulus)
        for c in IDS
    ]
    total = dequantize(sum_mod(masked, modulus), scale_bits=scale_bits, modulus=modulus)
    error = np.max(np.abs(total - np.sum(list(updates.values()), axis=0)))
    assert 0 < error < quantization_error_bound(scale_bits=scale_bits, n_clients=len(IDS))


def test_stochastic_rounding_is_unbiased() -> None:
    x = np.array([0.3, -0.7, 1 / 3, -2.9, 0.01, 5.55])
    scale_bits, draws = 2, 20_000  # step 0.25: round-to-nearest would be off by up to 0.125
    rng = np.random.default_rng(7)
    q = quantize(np.tile(x, (draws, 1)), scale_bits=scale_bits, modulus=PRIME, rng=rng)
    mean = dequantize(q, scale_bits=scale_bits, modulus=PRIME).mean(axis=0)
    frac = x * 2**scale_bits - np.floor(x * 2**scale_bits)
    standard_error = np.sqrt(frac * (1 - frac)) / 2**scale_bits / np.sqrt(draws)
    assert np.all(np.abs(mean - x) < 5 * standard_error)
    nearest = np.round(x * 2**scale_bits) / 2**scale_bits
    assert np.all(np.abs(nearest - x) > 5 * standard_error)  # so the check above can fail


def test_masked_vector_is_uniform_and_uncorrelated_with_the_update() -> None:
    rng = np.random.default_rng(3)
    update = rng.normal(0.0, 0.1, size=32_768)
    q = quantize(update, scale_bits=16, modulus=PRIME, rng=rng)
    seeds = {"client-a": fixed_seed("a-b"), "client-c": fixed_seed("b-c")}
    masked = mask(q, own_id="client-b", seeds=seeds, modulus=PRIME)
    assert uniformity_p(masked, PRIME) > 1e-3
    assert stats.pearsonr(update, masked.astype(np.float64)).pvalue > 1e-3


def test_the_same_tests_reject_the_unmasked_quantized_vector() -> None:
    rng = np.random.default_rng(3)
    update = rng.normal(0.0, 0.1, size=32_768)
    q = quantize(update, scale_bits=16, modulus=PRIME, rng=rng)
    assert uniformity_p(q, PRIME) < 1e-10
    assert stats.pearsonr(update, q.astype(np.float64)).pvalue < 1e-10


@pytest.mark.parametrize("dropped", IDS)
def test_unmask_dropped_recovers_the_survivors_sum_exactly(dropped: str) -> None:
    seeds = agree_seeds()  # all pairs agreed before ``dropped`` went away
    rng = np.random.default_rng(11)
    survivors = [c for c in IDS if c != dropped]
    quantized = {c: rng.integers(0, PRIME, size=1500, dtype=np.uint64) for c in survivors}
    masked = [mask(quantized[c], own_id=c, seeds=seeds[c], modulus=PRIME) for c in survivors]
    expected = sum_mod(list(quantized.values()), PRIME)
    leftover = sum_mod(masked, PRIME)
    assert not np.array_equal(leftover, expected)  # the dropped client's pair masks remain
    recovered = {s: seeds[s][dropped] for s in survivors}  # e.g. from Shamir shares
    unmasked = unmask_dropped(leftover, dropped_id=dropped, survivor_seeds=recovered,
                              modulus=PRIME)
    assert np.array_equal(unmasked, expected)


def test_quantize_overflow_raises_naming_the_limit() -> None:
    limit = (PRIME - 1) // 2
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=rf"exceeds the limit .* = {limit}"):
        quantize(np.array([0.0, 1000.0]), scale_bits=16, modulus=PRIME, rng=rng)
    edge = np.array([-limit, limit]) / 2**16  # exactly at the limit: accepted and lifted back
    q = quantize(edge, scale_bits=16, modulus=PRIME, rng=rng)
    assert np.array_equal(dequantize(q, scale_bits=16, modulus=PRIME), edge)


def test_negative_values_wrap_to_the_upper_half_and_lift_back() -> None:
    rng = np.random.default_rng(0)
    q = quantize(np.array([-1.0, 0.0, 1.0]), scale_bits=3, modulus=101, rng=rng)
    assert q.tolist() == [101 - 8, 0, 8]
    assert dequantize(q, scale_bits=3, modulus=101).tolist() == [-1.0, 0.0, 1.0]


def test_quantization_error_bound_is_n_clients_times_the_step() -> None:
    assert quantization_error_bound(scale_bits=10, n_clients=4) == 4 / 1024


@pytest.mark.parametrize(
    "call",
    [
        lambda: prg_uniform(fixed_seed("s"), 10, 2**62),
        lambda: prg_uniform(b"short", 10, PRIME),
        lambda: mask(np.array([PRIME]), own_id="a", seeds={}, modulus=PRIME),
        lambda: mask(np.array([1]), own_id="a", seeds={"a": fixed_seed("s")}, modulus=PRIME),
        lambda: dequantize(np.array([0.5]), scale_bits=2, modulus=PRIME),
        lambda: sum_mod([np.zeros(2, np.uint64), np.zeros(3, np.uint64)], PRIME),
        lambda: quantize(np.array([np.nan]), scale_bits=2, modulus=PRIME,
                         rng=np.random.default_rng(0)),
    ],
)
def test_bad_inputs_raise_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()
