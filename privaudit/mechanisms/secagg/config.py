"""The ``secure_aggregation`` section of the config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from privaudit.core.params import ConfigSection


class SecureAggregationConfig(ConfigSection):
    """Homomorphic secure aggregation of client updates (TenSEAL CKKS, add-only circuit; or
    pairwise masks under BFV, ``masking: pairwise``)."""

    enabled: bool = False
    scheme: Literal["ckks"] = "ckks"
    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: list[int] = Field(default_factory=lambda: [60, 40])
    scale_bits: int = 40
    min_clients: int = Field(
        default=3, ge=1, description="accepted updates a round needs; with pairwise masking "
        "also the Shamir threshold: survivors needed to remove a dropped client's masks")
    allow_insecure: bool = False
    masking: Literal["none", "pairwise"] = Field(
        default="pairwise", description="pairwise: X25519-agreed masks that cancel in the sum, "
        "over a fixed-point grid, under BFV with the key holder's public key (no client holds "
        "the secret key; one client's ciphertext decrypts to uniform values); none: the CKKS "
        "path, every client holding the secret key")
    quantization_bits: int = Field(
        default=24, ge=8, le=32, description="pairwise masking: fraction bits of the "
        "fixed-point grid (error < K·2^-bits per value for K clients)")
    plain_modulus_bits: int = Field(
        default=40, ge=30, le=40, description="pairwise masking: BFV plain modulus t (a "
        "prime of this many bits); |weighted value| must stay below t / 2^(bits+1)")
