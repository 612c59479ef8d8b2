"""The ``privacy.dp`` section of the config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DPConfig(BaseModel):
    """Differential privacy for the federation.

    ``mode``: ``none`` (no DP), ``record`` (every client trains with Opacus DP-SGD; one
    accountant per client for the whole run) or ``client`` (DP-FedAvg: clipped client deltas,
    Gaussian noise on the sum).
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["none", "record", "client"] = "none"
    noise_multiplier: float | None = Field(default=None, description="sigma; or give target_epsilon")
    target_epsilon: float | None = Field(default=None, gt=0)
    delta: float | None = Field(default=None, gt=0, lt=1)
    max_grad_norm: float = Field(default=1.0, description="per-example clip norm (record mode)")
    accountant: Literal["prv", "rdp", "gdp"] = "prv"
    grad_sample_mode: Literal["hooks", "functorch", "ghost"] = "hooks"
    clip_norm: float = Field(default=1.0, description="client-delta clip norm S (client mode)")
    client_sample_rate: float = Field(default=1.0, description="q, clients per round / clients")
