"""Secure aggregation in the report (``report.json`` → ``secure_aggregation``): result types.

Here, apart from the server and the key holder, so that reading a report needs no TenSEAL.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RejectionReason = Literal[
    "stale_round",
    "config_hash_mismatch",
    "duplicate_client",
    "layout_mismatch",
    "invalid_weight",
    "ciphertext_count_mismatch",
    "ciphertext_digest_mismatch",
    "undecodable_ciphertext",
    "invalid_ciphertext",
]


class Rejection(BaseModel):
    """One refused update: who sent it, in which round, why (a code) and the detail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str
    round: int
    reason: RejectionReason
    detail: str


#: What homomorphic secure aggregation does and does not protect (REFERENCE.md), in words a
#: regulator can read. Every report carries this list.
THREAT_MODEL: tuple[str, ...] = (
    "The server receives only ciphertexts and a context without the secret key: it can add "
    "client updates but cannot decrypt any of them, nor the sum.",
    "All clients share one secret key: a client colluding with the server can decrypt any "
    "single client's update.",
    "The decrypted sum is revealed: with fewer than 3 clients in a round a participant could "
    "subtract its own update and read another's, so every round needs at least min_clients "
    "accepted updates.",
    "Homomorphic encryption gives no differential privacy: the aggregate and the trained model "
    "can still leak training data; updates are clipped (and noised under DP) on each client "
    "before encryption.",
    "The server can drop, replay or reorder ciphertexts: updates carry no integrity "
    "protection; manifest checks and ciphertext digests catch malformed or corrupted updates, "
    "not a malicious sender.",
    "Decrypted CKKS results must never go back to a party holding the matching ciphertexts "
    "(key-recovery attack, Li & Micciancio 2021); the released global model is such a result, "
    "and no noise flooding is applied against this.",
)


class SecureAggregationReport(BaseModel):
    """``report.json`` → ``secure_aggregation``. Fields other than ``enabled`` are None when off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    scheme: str | None = None
    poly_modulus_degree: int | None = None
    coeff_mod_bit_sizes: list[int] | None = None
    scale_bits: int | None = None
    security_bits: int | None = Field(
        default=None, description="HE-standard tier met (256/192/128); 0 = below 128, no claim"
    )
    expansion_ratio: float | None = Field(
        default=None, description="ciphertext bytes / fp32 bytes"
    )
    max_abs_error: float | None = Field(
        default=None, description="max |decrypted mean - plaintext weighted mean| on the run"
    )
    min_clients: int | None = None
    insecure: bool = Field(
        default=False, description="a weakened setting was allowed by allow_insecure"
    )
    threat_model: list[str] = Field(default_factory=list)
    rejections: list[Rejection] = Field(default_factory=list)
