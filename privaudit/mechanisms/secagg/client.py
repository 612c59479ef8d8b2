"""Client side: weight, pack and encrypt one adapter delta.

Pair with a clip *before* this call (DP-SGD or DP-FedAvg clipping happens on the plaintext
delta; encryption adds no privacy of its own) and with
:class:`~privaudit.mechanisms.secagg.server.SecureAggregator` on the server, which only adds.
The context must come from :meth:`KeyHolder.client_context
<privaudit.mechanisms.secagg.keys.KeyHolder.client_context>` (secret key included: clients
encrypt symmetrically).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import numpy as np
import tenseal as ts

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.secagg.context import load_context, slots_per_ciphertext
from privaudit.mechanisms.secagg.manifest import EncryptedUpdate, UpdateManifest
from privaudit.mechanisms.secagg.packing import ArrayLike, chunk_bounds, flatten


def encrypt_update(
    delta: Mapping[str, ArrayLike],
    *,
    weight: float,
    round: int,
    client_id: str,
    adapter_config_hash: str,
    context_bytes: bytes,
    max_abs_value: float | None = None,
) -> EncryptedUpdate:
    """Encrypt ``weight * delta`` as CKKS ciphertexts of at most N/2 values each.

    The weight is applied *before* encryption so that the server only adds; it also travels
    in the manifest so that the key holder can divide the sum by the total weight.
    ``max_abs_value`` (optional) refuses a weighted update that could overflow the sum:
    pass ``value_bound(cfg) / n_clients`` (:func:`privaudit.mechanisms.secagg.params.value_bound`).
    Raises :class:`SecureAggregationError` on a bad weight, a non-finite value or an overflow.
    """
    if not (isinstance(weight, int | float | np.floating) and math.isfinite(weight) and weight > 0):
        raise SecureAggregationError(
            f"encrypt_update.weight: must be finite and > 0 (got {weight!r})"
        )
    if not client_id or round < 0:
        raise SecureAggregationError(
            f"encrypt_update: client_id must be non-empty and round >= 0 "
            f"(got client_id={client_id!r}, round={round!r})"
        )
    ctx = load_context(context_bytes, role="client")
    slots = slots_per_ciphertext(ctx)
    vector, layout = flatten(delta)
    weighted = vector * float(weight)
    if not np.all(np.isfinite(weighted)):
        bad = [n for n, s, o in zip(layout.names, layout.sizes, layout.offsets, strict=True)
               if not np.all(np.isfinite(weighted[o:o + s]))]
        raise SecureAggregationError(
            f"encrypt_update.delta: non-finite values would corrupt the whole sum (in {bad[:3]})"
        )
    peak = float(np.max(np.abs(weighted))) if weighted.size else 0.0
    if max_abs_value is not None and peak > max_abs_value:
        raise SecureAggregationError(
            f"encrypt_update.delta: max |weight * delta| = {peak:.4g} exceeds max_abs_value "
            f"{max_abs_value:.4g}; the CKKS sum would wrap around (lower the weight or scale_bits)"
        )
    ciphertexts = tuple(
        ts.ckks_vector(ctx, weighted[start:stop].tolist()).serialize()
        for start, stop in chunk_bounds(layout.n_values, slots)
    )
    manifest = UpdateManifest(
        client_id=client_id,
        round=round,
        adapter_config_hash=adapter_config_hash,
        weight=float(weight),
        names=layout.names,
        shapes=layout.shapes,
        offsets=layout.offsets,
        n_values=layout.n_values,
        slots_per_ciphertext=slots,
        n_ciphertexts=len(ciphertexts),
        ciphertext_sha256=tuple(hashlib.sha256(c).hexdigest() for c in ciphertexts),
    )
    return EncryptedUpdate(manifest=manifest, ciphertexts=ciphertexts)
