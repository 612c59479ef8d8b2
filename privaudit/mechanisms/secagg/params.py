"""CKKS parameter checks: the HomomorphicEncryption.org security table, scale and headroom.

The security tables are those of the Homomorphic Encryption Standard (Albrecht et al.,
HomomorphicEncryption.org, 2018) for a uniform ternary secret, as Microsoft SEAL ships
them (``hestdparms.h``): for each ring degree N, the largest total coefficient-modulus
size (in bits) that still gives 128-, 192- or 256-bit classical security.

>>> security_bits(8192, [60, 40])
256
>>> security_bits(8192, [60, 40, 40, 60])
128
>>> security_bits(4096, [60, 40, 40])
0
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.secagg.config import SecureAggregationConfig

#: Largest total coefficient-modulus bits per N for 128-bit security (HE standard, table 1).
MAX_COEFF_BITS_128: dict[int, int] = {
    1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881,
}
#: The same bound for 192-bit security.
MAX_COEFF_BITS_192: dict[int, int] = {
    1024: 19, 2048: 37, 4096: 75, 8192: 152, 16384: 305, 32768: 611,
}
#: The same bound for 256-bit security.
MAX_COEFF_BITS_256: dict[int, int] = {
    1024: 14, 2048: 29, 4096: 58, 8192: 118, 16384: 237, 32768: 476,
}
#: SEAL accepts primes of 2 to 60 bits.
PRIME_BITS_RANGE = (2, 60)
#: Fewer accepted clients than this and one participant can subtract its own update from the
#: decrypted sum and read another's (REFERENCE.md, threat model).
SAFE_MIN_CLIENTS = 3


class InsecureParametersWarning(UserWarning):
    """A weakened guarantee was allowed by ``secure_aggregation.allow_insecure: true``."""


@dataclass(frozen=True)
class ParamsVerdict:
    """What :func:`validate_params` concluded. ``insecure`` marks the report."""

    security_bits: int
    insecure: bool
    insecure_reasons: tuple[str, ...]


def security_bits(poly_modulus_degree: int, coeff_mod_bit_sizes: Sequence[int]) -> int:
    """The highest HE-standard tier (256, 192 or 128) the parameters meet, else 0.

    0 means "no claim": the total modulus is above the 128-bit bound, or N is not in the
    standard's table. privaudit never extrapolates a number below 128 bits.
    """
    total = sum(coeff_mod_bit_sizes)
    for bits, table in ((256, MAX_COEFF_BITS_256), (192, MAX_COEFF_BITS_192),
                        (128, MAX_COEFF_BITS_128)):
        bound = table.get(poly_modulus_degree)
        if bound is not None and total <= bound:
            return bits
    return 0


def value_bound(cfg: SecureAggregationConfig) -> float:
    """Largest |value| of the *summed* weighted update that still decrypts correctly.

    The add-only circuit never rescales, so the sum lives at the data level modulo the first
    prime q0 and is encoded at scale 2^scale_bits: values must stay below
    2^(bits(q0) - scale_bits - 1), or they wrap around silently.

    >>> value_bound(SecureAggregationConfig())
    524288.0
    """
    return float(2.0 ** (cfg.coeff_mod_bit_sizes[0] - cfg.scale_bits - 1))


def _security_problems(cfg: SecureAggregationConfig) -> list[str]:
    """The settings that weaken a guarantee (refused unless ``allow_insecure``)."""
    problems: list[str] = []
    n, bits = cfg.poly_modulus_degree, cfg.coeff_mod_bit_sizes
    bound = MAX_COEFF_BITS_128.get(n)
    if bound is not None and bits and security_bits(n, bits) < 128:
        problems.append(
            f"secure_aggregation.coeff_mod_bit_sizes: total {sum(bits)} bits exceeds the "
            f"128-bit security bound of {bound} bits for poly_modulus_degree {n} "
            f"(HomomorphicEncryption.org standard) (got {bits})"
        )
    if cfg.min_clients < SAFE_MIN_CLIENTS:
        problems.append(
            f"secure_aggregation.min_clients: must be >= {SAFE_MIN_CLIENTS}, otherwise a "
            f"client can subtract its own update from the decrypted sum and read another's "
            f"(got {cfg.min_clients})"
        )
    return problems


def _shape_problems(cfg: SecureAggregationConfig) -> list[str]:
    """Settings that cannot work at all (always refused)."""
    problems: list[str] = []
    n, bits, scale = cfg.poly_modulus_degree, cfg.coeff_mod_bit_sizes, cfg.scale_bits
    if n not in MAX_COEFF_BITS_128:
        problems.append(
            "secure_aggregation.poly_modulus_degree: must be a power of two among "
            f"{sorted(MAX_COEFF_BITS_128)} (got {n})"
        )
    if len(bits) < 2:
        problems.append(
            "secure_aggregation.coeff_mod_bit_sizes: needs at least 2 primes, a data prime "
            f"and the special prime SEAL keeps for key generation (got {bits})"
        )
    low, high = PRIME_BITS_RANGE
    bad = [b for b in bits if not low <= b <= high]
    if bad:
        problems.append(
            f"secure_aggregation.coeff_mod_bit_sizes: every prime must have {low} to {high} "
            f"bits; {bad} do not (got {bits})"
        )
    middle = bits[1:-1]
    if any(b != scale for b in middle):
        problems.append(
            f"secure_aggregation.scale_bits: must equal every middle prime {middle} so that a "
            f"rescale keeps the scale (got {scale})"
        )
    if bits and scale >= bits[0]:
        problems.append(
            f"secure_aggregation.scale_bits: must be below the first prime ({bits[0]} bits) to "
            f"leave integer headroom for the summed values (got {scale})"
        )
    if scale < 1:
        problems.append(f"secure_aggregation.scale_bits: must be >= 1 (got {scale})")
    return problems


def check_params(cfg: SecureAggregationConfig) -> list[str]:
    """Every problem with ``cfg``, as ``secure_aggregation.<field>: reason (got VALUE)``.

    Pure: no warning, no exception. Security findings are left out when
    ``allow_insecure`` is true; :func:`validate_params` then warns about them instead.
    """
    problems = _shape_problems(cfg)
    if not cfg.allow_insecure:
        problems.extend(_security_problems(cfg))
    return problems


def validate_params(cfg: SecureAggregationConfig) -> ParamsVerdict:
    """Refuse bad parameters (:class:`SecureAggregationError` listing every problem).

    Allowed insecure settings emit an :class:`InsecureParametersWarning` and come back with
    ``insecure=True`` so that the report can be marked.
    """
    problems = check_params(cfg)
    if problems:
        raise SecureAggregationError(
            f"secure_aggregation has {len(problems)} problem(s): " + "; ".join(problems),
            problems,
        )
    weakened = tuple(_security_problems(cfg))
    for reason in weakened:
        warnings.warn(f"allow_insecure: {reason}", InsecureParametersWarning, stacklevel=2)
    return ParamsVerdict(
        security_bits=security_bits(cfg.poly_modulus_degree, cfg.coeff_mod_bit_sizes),
        insecure=bool(weakened),
        insecure_reasons=weakened,
    )
