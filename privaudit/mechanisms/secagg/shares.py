"""Threshold shares of a client's masking key, so that survivors can remove a dropped client's
masks (Bonawitz et al., CCS 2017, §4: the "double masking" recovery, single-mask variant).

A client's X25519 private key (32 bytes) is split with Shamir's scheme from pycryptodome
(``Crypto.Protocol.SecretSharing.Shamir``, over GF(2^128), so in two 16-byte halves): any
``threshold`` of the ``n`` shares give the key back, fewer give nothing about it. Each client
hands one share to every other client of the round (in a deployment encrypted to that client;
in-process, held by the simulation). When a client drops after the masks were agreed, the
survivors send their shares of *its* key to the server, which recovers it, re-derives the
pair seeds between it and each survivor, and removes those masks from the decrypted sum. With
fewer than ``threshold`` survivors the key stays hidden and the round fails.

>>> key = bytes(range(32))
>>> parts = split_key(key, threshold=3, n=5)
>>> combine_key(parts[1:4]) == key, len(parts)
(True, 5)
"""

from __future__ import annotations

from collections.abc import Sequence

from Crypto.Protocol.SecretSharing import Shamir

from privaudit.core.errors import SecureAggregationError

__all__ = ["KeyShare", "combine_key", "split_key"]

#: (share index 1..n, first half's share, second half's share)
KeyShare = tuple[int, bytes, bytes]


def split_key(key: bytes, *, threshold: int, n: int) -> list[KeyShare]:
    """``n`` shares of the 32-byte ``key``, any ``threshold`` of which recover it."""
    if len(key) != 32:
        raise SecureAggregationError(f"split_key: a 32-byte key is shared (got {len(key)})")
    if not 1 <= threshold <= n:
        raise SecureAggregationError(f"split_key: need 1 <= threshold <= n (got threshold "
                                     f"{threshold}, n {n})")
    if threshold == 1:  # Shamir needs k >= 2; one share is the key itself
        return [(i, key[:16], key[16:]) for i in range(1, n + 1)]
    first = Shamir.split(threshold, n, key[:16], ssss=False)
    second = Shamir.split(threshold, n, key[16:], ssss=False)
    return [(i, a, b) for (i, a), (_, b) in zip(first, second, strict=True)]


def combine_key(shares: Sequence[KeyShare]) -> bytes:
    """The key from at least ``threshold`` distinct shares (fewer give a wrong key)."""
    if not shares:
        raise SecureAggregationError("combine_key: no share given")
    if len(shares) == 1:
        return shares[0][1] + shares[0][2]
    first = Shamir.combine([(i, a) for i, a, _ in shares], ssss=False)
    second = Shamir.combine([(i, b) for i, _, b in shares], ssss=False)
    return bytes(first) + bytes(second)
