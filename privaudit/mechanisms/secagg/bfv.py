"""Exact integer sums under TenSEAL BFV, for pairwise-masked secure aggregation.

Masks cancel only in an exact sum, so the masked path (:mod:`privaudit.mechanisms.secagg.
masking`) encrypts integers mod a plain modulus t with BFV instead of reals with CKKS:

- **Parameters** (fixed, measured here): N = 8192 slots per ciphertext, coefficient modulus
  [60, 60] bits (120 bits, within SEAL's 128-bit-security bound of 218 for N = 8192), and t
  the largest prime of ``plain_modulus_bits`` bits with t ≡ 1 (mod 2N), as batching needs
  (found with sympy). With t ≈ 2^40, 32 public-key ciphertexts sum exactly; each is 4.0× the
  fp32 bytes of the 8192 values it holds.
- **Keys**: the key holder alone has the secret key. Clients and the server get the public
  context (:meth:`BFVKeyHolder.public_context`): clients encrypt with the public key, so —
  unlike the shared-secret-key CKKS path — a client cannot decrypt another's ciphertext.
- **Decryption is exact**: BFV decrypts to the plaintext polynomial itself, so the value the
  key holder releases carries no decryption noise that depends on the secret key; the
  Li–Micciancio key-recovery attack on CKKS's approximate decryption does not apply, and no
  flooding noise is needed (REFERENCE.md's pitfall is CKKS-specific).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import tenseal as ts

from privaudit.core.errors import SecureAggregationError

__all__ = ["BFV_COEFF_BITS", "BFV_SLOTS", "BFVKeyHolder", "add_all", "encrypt_ints",
           "plain_modulus"]

BFV_SLOTS = 8192
BFV_COEFF_BITS = (60, 60)


@lru_cache(maxsize=8)
def plain_modulus(bits: int, slots: int = BFV_SLOTS) -> int:
    """The largest prime t < 2^bits with t ≡ 1 (mod 2·slots).

    >>> t = plain_modulus(20)
    >>> t < 2**20, t % (2 * BFV_SLOTS)
    (True, 1)
    """
    from sympy import isprime

    k = (2**bits - 1) // (2 * slots)
    while k > 0:
        if isprime(k * 2 * slots + 1):
            return k * 2 * slots + 1
        k -= 1
    raise SecureAggregationError(f"secure_aggregation.plain_modulus_bits: no batching prime "
                                 f"below 2^{bits} (got {bits})")


class BFVKeyHolder:
    """The secret-key BFV context of one run; decrypts sums only."""

    def __init__(self, context: ts.Context, modulus: int) -> None:
        self._ctx = context
        self.modulus = modulus

    @classmethod
    def generate(cls, plain_modulus_bits: int) -> BFVKeyHolder:
        t = plain_modulus(plain_modulus_bits)
        ctx = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=BFV_SLOTS, plain_modulus=t,
                         coeff_mod_bit_sizes=list(BFV_COEFF_BITS))
        return cls(ctx, t)

    def public_context(self) -> bytes:
        """The context without the secret key: for clients (encrypt) and the server (add)."""
        return bytes(self._ctx.serialize(save_secret_key=False))

    def secret_context(self) -> bytes:
        """The context WITH the secret key: for the key holder's node only."""
        return bytes(self._ctx.serialize(save_secret_key=True))

    @classmethod
    def from_secret_context(cls, data: bytes, plain_modulus_bits: int) -> BFVKeyHolder:
        """The key holder back from :meth:`secret_context` (t from the same config)."""
        ctx = ts.context_from(data)
        if not ctx.has_secret_key():
            raise SecureAggregationError("BFVKeyHolder: the context holds no secret key")
        return cls(ctx, plain_modulus(plain_modulus_bits))

    def decrypt(self, ciphertexts: Sequence[bytes], n_values: int) -> np.ndarray:
        """The plaintext values mod t (int64 in [0, t)) of ``ciphertexts``, concatenated and
        cut to ``n_values``."""
        parts = [np.asarray(ts.bfv_vector_from(self._ctx, c).decrypt(), dtype=np.int64)
                 for c in ciphertexts]
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return np.mod(flat[:n_values], self.modulus)


def encrypt_ints(public_context: bytes, values: np.ndarray) -> tuple[bytes, ...]:
    """``values`` (integers in [0, t)) as BFV ciphertexts of at most ``BFV_SLOTS`` each."""
    ctx = ts.context_from(public_context)
    if not ctx.is_public():
        raise SecureAggregationError("encrypt_ints: the context holds the secret key; clients "
                                     "get the key holder's public context")
    flat = np.asarray(values, dtype=np.int64)
    return tuple(bytes(ts.bfv_vector(ctx, flat[i:i + BFV_SLOTS].tolist()).serialize())
                 for i in range(0, len(flat), BFV_SLOTS))


def add_all(public_context: bytes, updates: Sequence[Sequence[bytes]]) -> tuple[bytes, ...]:
    """The server's work: the chunk-wise sum of every update's ciphertexts (add-only)."""
    if not updates:
        raise SecureAggregationError("add_all: no update to add")
    ctx = ts.context_from(public_context)
    total = [ts.bfv_vector_from(ctx, c) for c in updates[0]]
    for update in updates[1:]:
        if len(update) != len(total):
            raise SecureAggregationError(f"add_all: an update has {len(update)} ciphertexts, "
                                         f"expected {len(total)}")
        total = [a + ts.bfv_vector_from(ctx, c) for a, c in zip(total, update, strict=True)]
    return tuple(bytes(v.serialize()) for v in total)
