"""What an aggregation round logs besides the new adapter: the secure-aggregation round and
the DP-FedAvg round (result types only, so the strategy, its wrappers and the report share
them without importing each other)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from privaudit.mechanisms.secagg.results import Rejection


class ClientLevelRoundLog(BaseModel):
    """One DP-FedAvg round: who was sampled, the fixed denominator, the noise std on the sum."""

    model_config = ConfigDict(extra="forbid")

    sampled: list[str]
    expected_clients: float
    noise_std: float
    clip_norm: float


class SecureRoundLog(BaseModel):
    """One round of secure aggregation: who is in the sum, who was refused and why, what the
    encryption cost in bytes, precision and time."""

    model_config = ConfigDict(extra="forbid")

    round: int
    accepted: list[str]
    rejections: list[Rejection] = Field(default_factory=list)
    max_abs_error: float | None = Field(
        default=None, description="max |decrypted mean - plaintext mean| (audit check)"
    )
    dropped: list[str] = Field(
        default_factory=list, description="pairwise masking: clients that agreed masks but "
        "sent nothing; their masks were removed from the survivors' threshold shares")
    quantization_error_bound: float | None = Field(
        default=None, description="pairwise masking: bound on |decrypted mean - exact mean| "
        "from the fixed-point grid, K·2^-quantization_bits / the survivors' weight share")
    expansion_ratio: float = Field(description="largest ciphertext/fp32 bytes of an update")
    ciphertext_bytes: int
    fp32_bytes: int
    encrypt_seconds: float
    aggregate_seconds: float
    decrypt_seconds: float
