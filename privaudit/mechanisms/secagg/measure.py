"""Measurements for the report: ciphertext expansion and decryption error.

Pair :func:`plaintext_weighted_mean` (a test-only or audit-only computation on plaintext
deltas: never run it on the server) with :func:`max_abs_error` to measure what CKKS cost in
precision on a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.secagg.manifest import EncryptedUpdate
from privaudit.mechanisms.secagg.packing import ArrayLike, TensorLayout, flatten, unflatten

FP32_BYTES = 4


def expansion_ratio(update: EncryptedUpdate) -> float:
    """Serialized ciphertext bytes / the bytes of the same delta in fp32 (manifest excluded).

    One full CKKS ciphertext at the data level is 2 polynomials x N 64-bit words for N/2
    values, so the floor is 8.0; a partly filled last ciphertext and framing add to it.
    """
    n = update.manifest.n_values
    if n == 0:
        raise SecureAggregationError("expansion_ratio: the update has no values")
    return update.ciphertext_bytes / (FP32_BYTES * n)


def plaintext_weighted_mean(
    deltas: Sequence[Mapping[str, ArrayLike]], weights: Sequence[float]
) -> dict[str, np.ndarray]:
    """Σ_k w_k·delta_k / Σ_k w_k in float64: the FedAvg the encrypted path must reproduce."""
    if not deltas or len(deltas) != len(weights):
        raise SecureAggregationError(
            f"plaintext_weighted_mean: needs one weight per delta (got {len(deltas)} deltas, "
            f"{len(weights)} weights)"
        )
    total = np.zeros(0)
    layout: TensorLayout | None = None
    for delta, weight in zip(deltas, weights, strict=True):
        vector, this = flatten(delta)
        if layout is None:
            layout, total = this, np.zeros_like(vector)
        elif this != layout:
            raise SecureAggregationError("plaintext_weighted_mean: deltas have different layouts")
        total += float(weight) * vector
    if layout is None:
        raise SecureAggregationError("plaintext_weighted_mean: no deltas")
    return unflatten(total / float(sum(weights)), layout)


def max_abs_error(got: Mapping[str, ArrayLike], want: Mapping[str, ArrayLike]) -> float:
    """max |got - want| over every value of every tensor; the names must match."""
    if sorted(got) != sorted(want):
        raise SecureAggregationError(
            f"max_abs_error: tensor names differ ({sorted(set(got) ^ set(want))[:5]})"
        )
    a, layout_a = flatten(got)
    b, layout_b = flatten(want)
    if layout_a != layout_b:
        raise SecureAggregationError("max_abs_error: tensor shapes differ")
    return float(np.max(np.abs(a - b))) if a.size else 0.0

