"""The ``privacy`` section of the config and its ``privacy.dp``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from privaudit.core.params import ConfigSection


class DPConfig(ConfigSection):
    """Differential privacy for the federation.

    ``mode``: ``none`` (no DP), ``record`` (every client trains with Opacus DP-SGD; one
    accountant per client for the whole run) or ``client`` (DP-FedAvg: clipped client deltas,
    Gaussian noise on the sum).

    Fields are declared here and checked before any work starts by
    :func:`~privaudit.mechanisms.dp.validate.check_dp_config`, which knows the client sizes
    and the schedule (δ against 1/N, sample rates, noise > 0).
    """

    mode: Literal["none", "record", "client"] = "none"
    noise_multiplier: float | None = Field(
        default=None, description="σ (record) or z (client); or give target_epsilon"
    )
    target_epsilon: float | None = Field(
        default=None, gt=0, description="ε for the whole run; the noise is calibrated to it"
    )
    delta: float | None = Field(
        default=None, gt=0, lt=1, description="δ; < 1/(smallest client size) or 1/clients"
    )
    max_grad_norm: float = Field(default=1.0, description="per-example clip norm C (record mode)")
    accountant: Literal["prv", "rdp", "gdp"] = Field(
        default="prv", description="prv (default) or rdp; gdp is approximate and warns"
    )
    grad_sample_mode: Literal["hooks", "functorch", "ghost"] = Field(
        default="hooks", description="how Opacus computes per-example gradients (record mode)"
    )
    batch_size: int | None = Field(
        default=None,
        ge=1,
        description="record mode: expected Poisson batch size of DP-SGD (sample rate = "
        "batch_size / client size); default federation.batch_size. DP-SGD wants larger "
        "batches than SGD: the noise on the mean gradient shrinks as 1/batch_size",
    )
    learning_rate: float | None = Field(
        default=None, gt=0, description="record mode: DP-SGD's learning rate; default "
        "federation.learning_rate",
    )
    clip_norm: float = Field(default=1.0, description="client-delta clip norm S (client mode)")
    client_sample_rate: float = Field(
        default=1.0, description="q, clients per round / clients (client mode: Poisson)"
    )


class PrivacyConfig(ConfigSection):
    dp: DPConfig = Field(default_factory=DPConfig)
