"""Pairwise-masked secure aggregation primitives (Bonawitz et al. 2017; Bell et al. 2020).

Pure functions over numpy vectors of residues mod ``modulus`` (uint64, ``2 <= modulus < 2**62``);
every primitive is the ``cryptography`` package's (X25519, HKDF-SHA256, ChaCha20). One round:

1. each client u makes a fresh X25519 key pair (:class:`ClientMaskKey`) and publishes it;
2. each pair {u, v} derives one seed s_uv bound to round, pair and context (:func:`pair_seed`);
3. u sends y_u = q_u + Σ_{v>u} PRG(s_uv) − Σ_{v<u} PRG(s_uv) mod m, q_u = quantize(x_u);
4. the server adds (:func:`sum_mod`): Σ_u y_u = Σ_u q_u mod m, the pair masks cancel;
5. a dropped d's seeds s_sd are recovered and removed (:func:`unmask_dropped`), then dequantize.

Guarantees: both ends of a pair derive the same seed, another round, pair or context another;
:func:`prg_uniform` is exactly uniform on Z_m if ChaCha20 is a PRF (rejection sampling), so one
masked vector is uniform to anyone missing one of its seeds; masks cancel exactly; dequantizing
the sum errs by < :func:`quantization_error_bound`. Double masking: :func:`add_self_mask` adds
PRG(b_u) for a client's own secret seed b_u, which the server removes
(:func:`remove_self_mask`) only for survivors, so recovering a client's pair seeds (because it
was declared dropped) leaves its vector masked if it arrived after all. Elsewhere: Shamir
sharing (``shares.py``), signed keys and updates (``signing.py``). Not here: the SecAgg+
neighbour graph (``seeds`` may be any symmetric subset of peers). References: K. Bonawitz et
al., "Practical Secure Aggregation for Privacy-Preserving Machine Learning", CCS 2017; J. Bell
et al., "Secure Single-Server Aggregation with (Poly)Logarithmic Overhead", CCS 2020.

>>> a, b = ClientMaskKey.generate(), ClientMaskKey.generate()
>>> s_ab = pair_seed(a, "a", "b", b.public_bytes(), round=0)
>>> s_ab == pair_seed(b, "b", "a", a.public_bytes(), round=0)
True
>>> m, rng = 2**20 + 7, np.random.default_rng(0)
>>> qa = quantize(np.array([0.5, -0.25]), scale_bits=8, modulus=m, rng=rng)
>>> qb = quantize(np.array([0.25, 0.125]), scale_bits=8, modulus=m, rng=rng)
>>> ya = mask(qa, own_id="a", seeds={"b": s_ab}, modulus=m)
>>> yb = mask(qb, own_id="b", seeds={"a": s_ab}, modulus=m)
>>> dequantize(sum_mod([ya, yb], m), scale_bits=8, modulus=m).tolist()
[0.75, -0.125]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from numpy.typing import NDArray

__all__ = [
    "MAX_MODULUS", "ClientMaskKey", "add_self_mask", "dequantize", "mask", "pair_seed",
    "prg_uniform", "quantization_error_bound", "quantize", "remove_self_mask", "sum_mod",
    "unmask_dropped",
]

MAX_MODULUS = 2**62  # exclusive: a + b of two residues stays below 2**63 in uint64
_INFO_LABEL = b"privaudit/secagg/pair-mask/v1"
_NONCE = bytes(16)  # fixed: every seed keys one stream only (one round, one pair)


@dataclass(frozen=True)
class ClientMaskKey:
    """A client's X25519 key pair for one round (never reuse it in another round)."""

    private_key: X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> ClientMaskKey:
        """A fresh random key pair."""
        return cls(X25519PrivateKey.generate())

    def public_bytes(self) -> bytes:
        """The raw 32-byte public key to publish."""
        return self.private_key.public_key().public_bytes_raw()


def pair_seed(
    own: ClientMaskKey, own_id: str, peer_id: str, peer_public: bytes, *, round: int,
    context: bytes = b"",
) -> bytes:
    """The 32-byte mask seed that ``own_id`` and ``peer_id`` share for ``round``.

    HKDF-SHA256 of the X25519 secret; ``info`` binds the round, the ordered pair (min id,
    max id) and ``context`` (length-prefixed), so both ends derive the same seed and another
    round, pair or context gives another one. Raises ValueError on ``own_id == peer_id``, an
    empty id, a negative round or a malformed public key.
    """
    if own_id == peer_id:
        raise ValueError(f"pair_seed: a client cannot pair with itself (id {own_id!r})")
    if not own_id or not peer_id or round < 0:
        raise ValueError(f"pair_seed: ids must be non-empty, round >= 0 (got round={round!r})")
    shared = own.private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    parts = (*(i.encode() for i in sorted((own_id, peer_id))), bytes(context))
    info = _INFO_LABEL + round.to_bytes(8, "big")
    info += b"".join(len(p).to_bytes(4, "big") + p for p in parts)  # unambiguous framing
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def prg_uniform(seed: bytes, n: int, modulus: int) -> NDArray[np.uint64]:
    """``n`` values uniform on [0, modulus), expanded from a 32-byte seed (deterministic).

    ChaCha20 keystream (fixed zero nonce) read as little-endian 64-bit words, each cut to
    ``bit_length(modulus - 1)`` bits and rejected if >= ``modulus``: no bias at all beyond
    ChaCha20's distance from random (unlike ``word % modulus``, whose bias is up to
    modulus / 2**64). Each word is accepted with probability > 1/2.
    """
    _check_modulus(modulus)
    if len(seed) != 32 or n < 0:
        raise ValueError(f"prg_uniform: seed must be 32 bytes, n >= 0 (got {len(seed)}, {n})")
    keep = np.uint64((1 << (modulus - 1).bit_length()) - 1)
    stream = Cipher(algorithms.ChaCha20(bytes(seed), _NONCE), mode=None).encryptor()
    parts: list[NDArray[np.uint64]] = [np.zeros(0, dtype=np.uint64)]
    while (have := sum(p.size for p in parts)) < n:  # a word is kept with probability > 1/2
        words = np.frombuffer(stream.update(bytes(16 * (n - have) + 512)), "<u8") & keep
        parts.append(words[words < np.uint64(modulus)][: n - have].astype(np.uint64))
    return np.concatenate(parts)


def quantize(
    x: NDArray[np.floating], *, scale_bits: int, modulus: int, rng: np.random.Generator
) -> NDArray[np.uint64]:
    """``round_stochastic(x * 2**scale_bits) mod modulus`` (negative values wrap).

    Stochastic rounding floor(y) + (u < y - floor(y)), u ~ U[0, 1) from ``rng``, is unbiased
    and errs by < 1, i.e. < 2**-scale_bits in units of x. Raises ValueError on a non-finite
    value or if max |x| * 2**scale_bits exceeds (modulus - 1) // 2, the largest magnitude
    :func:`dequantize` lifts back. A SUM of n clients must also fit: keep each client's
    max |x| * 2**scale_bits <= ((modulus - 1) // 2) / n - 1.
    """
    _check_modulus(modulus)
    _check_scale_bits(scale_bits)
    values = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("quantize.x: non-finite values cannot be quantized")
    y = values * float(2**scale_bits)
    limit = (modulus - 1) // 2
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > limit:
        raise ValueError(
            f"quantize.x: max |x| * 2**scale_bits = {peak:.6g} exceeds the limit "
            f"(modulus - 1) // 2 = {limit} (max |x| = {peak / 2**scale_bits:.6g} > "
            f"{limit / 2**scale_bits:.6g}); the value would wrap around (lower scale_bits)"
        )
    low = np.floor(y)
    rounded = low.astype(np.int64) + (rng.random(y.shape) < (y - low))
    return np.mod(rounded, np.int64(modulus)).astype(np.uint64)


def dequantize(v: NDArray[np.integer], *, scale_bits: int, modulus: int) -> NDArray[np.float64]:
    """Centred lift of residues (values >= modulus / 2 are negative), divided by 2**scale_bits.

    Exact (float64) while the lifted integers are below 2**53 in magnitude. Raises ValueError
    on non-integer values or values outside [0, modulus).
    """
    _check_modulus(modulus)
    _check_scale_bits(scale_bits)
    residues = _residues(v, modulus, "dequantize.v").astype(np.int64)
    signed = np.where(residues >= (modulus + 1) // 2, residues - modulus, residues)
    return signed.astype(np.float64) / float(2**scale_bits)


def mask(
    q: NDArray[np.integer], *, own_id: str, seeds: Mapping[str, bytes], modulus: int
) -> NDArray[np.uint64]:
    """``q + Σ_{peer > own_id} PRG(seed) − Σ_{peer < own_id} PRG(seed) mod modulus``.

    ``seeds`` maps each peer id to the seed shared with it (:func:`pair_seed`); ids compare
    as Python strings. If the pairing is symmetric, the masks of all clients cancel exactly
    in :func:`sum_mod`. Raises ValueError if ``own_id`` is among the peers or ``q`` is not a
    vector of residues.
    """
    _check_modulus(modulus)
    return _add_masks(_residues(q, modulus, "mask.q"), own_id, seeds, modulus)


def unmask_dropped(
    sum_mod: NDArray[np.integer], *, dropped_id: str, survivor_seeds: Mapping[str, bytes],
    modulus: int,
) -> NDArray[np.uint64]:
    """Remove from the survivors' masked sum the masks they applied toward ``dropped_id``.

    Survivor s added +PRG(s_sd) if ``dropped_id > s`` and −PRG(s_sd) if ``dropped_id < s``;
    this adds the opposite, which is exactly the mask ``dropped_id`` itself would have
    applied. ``survivor_seeds`` maps each survivor to the seed it shared with the dropped
    client. With every survivor's seed given, the result is Σ_survivors q_s mod modulus;
    call once per dropped client.
    """
    _check_modulus(modulus)
    total = _residues(sum_mod, modulus, "unmask_dropped.sum_mod")
    return _add_masks(total, dropped_id, survivor_seeds, modulus)


def add_self_mask(v: NDArray[np.integer], seed: bytes, modulus: int) -> NDArray[np.uint64]:
    """``v`` + PRG(seed) mod modulus: a client's self-mask (Bonawitz et al.'s b_u)."""
    _check_modulus(modulus)
    vec = _residues(v, modulus, "add_self_mask.v")
    return (vec + prg_uniform(seed, vec.size, modulus).reshape(vec.shape)) % np.uint64(modulus)


def remove_self_mask(v: NDArray[np.integer], seed: bytes, modulus: int) -> NDArray[np.uint64]:
    """``v`` − PRG(seed) mod modulus: the server removing a survivor's recovered self-mask.

    >>> m = 2**20 + 7
    >>> x = np.array([5, 6], dtype=np.uint64)
    >>> remove_self_mask(add_self_mask(x, b"s" * 32, m), b"s" * 32, m).tolist()
    [5, 6]
    """
    _check_modulus(modulus)
    vec = _residues(v, modulus, "remove_self_mask.v")
    m = np.uint64(modulus)
    return (vec + (m - prg_uniform(seed, vec.size, modulus).reshape(vec.shape))) % m


def quantization_error_bound(*, scale_bits: int, n_clients: int) -> float:
    """Max |dequantize(Σ_k q_k) − Σ_k x_k|: each stochastic rounding errs by < 2**-scale_bits
    and masking adds no error, so a sum of n_clients errs by < n_clients * 2**-scale_bits
    (if the sum does not wrap, see :func:`quantize`; float64 rounding of Σ x_k aside)."""
    _check_scale_bits(scale_bits)
    if n_clients < 1:
        raise ValueError(f"quantization_error_bound: n_clients must be >= 1 (got {n_clients})")
    return float(n_clients) * 2.0**-scale_bits


def sum_mod(vectors: Sequence[NDArray[np.integer]], modulus: int) -> NDArray[np.uint64]:
    """The exact element-wise sum mod ``modulus`` of residue vectors of one shape."""
    _check_modulus(modulus)
    if not vectors:
        raise ValueError("sum_mod: no vectors to add")
    arrays = [_residues(v, modulus, f"sum_mod.vectors[{i}]") for i, v in enumerate(vectors)]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError(f"sum_mod: shapes differ {sorted({a.shape for a in arrays})}")
    total = arrays[0].copy()
    for a in arrays[1:]:
        total = (total + a) % np.uint64(modulus)
    return total


def _add_masks(
    vec: NDArray[np.uint64], own_id: str, seeds: Mapping[str, bytes], modulus: int
) -> NDArray[np.uint64]:
    """``vec`` plus own_id's signed pair masks toward every peer in ``seeds``, mod modulus."""
    m = np.uint64(modulus)
    out = vec.reshape(-1).copy()
    for peer_id, seed in sorted(seeds.items()):
        if peer_id == own_id:
            raise ValueError(f"mask: {own_id!r} cannot hold a seed shared with itself")
        r = prg_uniform(seed, out.size, modulus)
        out = (out + (r if peer_id > own_id else m - r)) % m  # m - r in (0, m]: no underflow
    return out.reshape(vec.shape)


def _residues(v: NDArray[np.integer], modulus: int, where: str) -> NDArray[np.uint64]:
    """``v`` as uint64 after checking it holds integers in [0, modulus)."""
    arr = np.asarray(v)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{where}: integer residues expected (got dtype {arr.dtype})")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= modulus):
        raise ValueError(f"{where}: values must lie in [0, {modulus})")
    return arr.astype(np.uint64)


def _check_modulus(modulus: int) -> None:
    if isinstance(modulus, bool) or not isinstance(modulus, int):
        raise ValueError(f"modulus must be an int (got {type(modulus).__name__})")
    if not 2 <= modulus < MAX_MODULUS:
        raise ValueError(f"modulus must satisfy 2 <= modulus < 2**62 (got {modulus})")


def _check_scale_bits(scale_bits: int) -> None:
    if isinstance(scale_bits, bool) or not isinstance(scale_bits, int) or scale_bits < 0:
        raise ValueError(f"scale_bits must be an int >= 0 (got {scale_bits!r})")
