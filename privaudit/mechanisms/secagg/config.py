"""The ``secure_aggregation`` section of the config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from privaudit.core.params import ConfigSection


class SecureAggregationConfig(ConfigSection):
    """Homomorphic secure aggregation of client updates (TenSEAL CKKS, add-only circuit)."""

    enabled: bool = False
    scheme: Literal["ckks"] = "ckks"
    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: list[int] = Field(default_factory=lambda: [60, 40])
    scale_bits: int = 40
    min_clients: int = Field(default=3, ge=1)
    allow_insecure: bool = False
