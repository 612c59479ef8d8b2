"""The key holder: creates the CKKS context, hands out role-specific bytes, decrypts only sums.

The key holder is the clients' side (or a separate key authority). It must be paired with a
:class:`~privaudit.mechanisms.secagg.server.SecureAggregator` that gets
:meth:`KeyHolder.server_context` only, and with clients that encrypt with
:meth:`KeyHolder.client_context`. The circuit is add-only: no Galois keys are generated and no
relinearisation key leaves the key holder.
"""

from __future__ import annotations

import numpy as np
import tenseal as ts

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.secagg.config import SecureAggregationConfig
from privaudit.mechanisms.secagg.context import slots_per_ciphertext
from privaudit.mechanisms.secagg.manifest import EncryptedSum
from privaudit.mechanisms.secagg.packing import chunk_bounds, unflatten
from privaudit.mechanisms.secagg.params import ParamsVerdict, validate_params


class KeyHolder:
    """Holds the secret-key CKKS context of one run. Build it with :meth:`generate`."""

    def __init__(
        self, cfg: SecureAggregationConfig, context: ts.Context, verdict: ParamsVerdict
    ) -> None:
        self.cfg = cfg
        self.verdict = verdict
        self._ctx = context

    @classmethod
    def generate(cls, cfg: SecureAggregationConfig) -> KeyHolder:
        """Validate ``cfg`` (:func:`validate_params`), then create a fresh secret key.

        Symmetric CKKS encryption: the clients hold the secret key anyway (REFERENCE.md threat
        model) and it gives less noise than public-key encryption. Raises
        :class:`SecureAggregationError` when the parameters are refused, by privaudit or by SEAL
        (SEAL enforces the 128-bit bound itself and TenSEAL cannot lower it, so
        ``allow_insecure`` cannot enable a modulus above that bound).
        """
        verdict = validate_params(cfg)
        try:
            ctx = ts.context(
                ts.SCHEME_TYPE.CKKS,
                poly_modulus_degree=cfg.poly_modulus_degree,
                coeff_mod_bit_sizes=list(cfg.coeff_mod_bit_sizes),
                encryption_type=ts.ENCRYPTION_TYPE.SYMMETRIC,
            )
        except (ValueError, RuntimeError) as exc:
            raise SecureAggregationError(
                "secure_aggregation.coeff_mod_bit_sizes: SEAL refuses poly_modulus_degree "
                f"{cfg.poly_modulus_degree} with these primes: {exc} "
                f"(got {cfg.coeff_mod_bit_sizes})"
            ) from exc
        ctx.global_scale = float(2**cfg.scale_bits)
        return cls(cfg, ctx, verdict)

    @property
    def slots(self) -> int:
        """Values per ciphertext (N/2)."""
        return slots_per_ciphertext(self._ctx)

    def client_context(self) -> bytes:
        """The context *with* the secret key, for clients only (no relinearisation/Galois keys)."""
        return bytes(self._ctx.serialize(
            save_secret_key=True, save_galois_keys=False, save_relin_keys=False
        ))

    def server_context(self) -> bytes:
        """The context *without* the secret key (``save_secret_key=False``).

        With it the server can load and add ciphertexts, and cannot decrypt them.
        """
        return bytes(self._ctx.serialize(
            save_secret_key=False, save_galois_keys=False, save_relin_keys=False
        ))

    def decrypt_mean(self, encrypted_sum: EncryptedSum) -> dict[str, np.ndarray]:
        """Decrypt Σ w_k·delta_k, divide by Σ w_k; float64 arrays by tensor name.

        Decrypts only sums that claim at least ``cfg.min_clients`` contributors (the claim is
        the server's: nothing here can prove it). Never hand the *ciphertext* back with this
        result to a party that lacks the key (Li & Micciancio 2021); see the threat model.
        """
        n_clients = len(encrypted_sum.client_ids)
        if n_clients < self.cfg.min_clients:
            raise SecureAggregationError(
                f"decrypt_mean: the sum has {n_clients} contributor(s), min_clients is "
                f"{self.cfg.min_clients}; decrypting it could reveal one client's update"
            )
        weight = encrypted_sum.total_weight
        if not (np.isfinite(weight) and weight > 0):
            raise SecureAggregationError(
                f"decrypt_mean: total_weight must be finite and > 0 (got {weight})"
            )
        layout = encrypted_sum.layout
        bounds = chunk_bounds(layout.n_values, self.slots)
        if len(bounds) != len(encrypted_sum.ciphertexts):
            raise SecureAggregationError(
                f"decrypt_mean: {len(encrypted_sum.ciphertexts)} ciphertexts, "
                f"layout needs {len(bounds)}"
            )
        parts: list[np.ndarray] = []
        blobs = encrypted_sum.ciphertexts
        for i, (blob, (start, stop)) in enumerate(zip(blobs, bounds, strict=True)):
            try:
                decrypted = ts.ckks_vector_from(self._ctx, blob).decrypt()
            except (ValueError, RuntimeError, TypeError) as exc:
                raise SecureAggregationError(
                    f"decrypt_mean: ciphertext {i} is undecodable ({exc})"
                ) from exc
            values = np.asarray(decrypted, dtype=np.float64)
            if values.shape != (stop - start,):
                raise SecureAggregationError(
                    f"decrypt_mean: ciphertext {i} holds {values.size} values, "
                    f"expected {stop - start}"
                )
            parts.append(values)
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)
        return unflatten(flat / weight, layout)
