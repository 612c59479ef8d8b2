"""Differential privacy for the federation: record-level DP-SGD per client (Opacus) with one
accountant per client for the whole run, client-level DP-FedAvg, calibration, checks run
before training, and the DP card of the report."""

from privaudit.mechanisms.dp.accounting import (
    ACCOUNTANTS,
    ClientAccountant,
    RoundEntry,
    federation_epsilon,
    federation_epsilon_per_round,
    group_privacy,
)
from privaudit.mechanisms.dp.calibration import (
    calibrate_noise,
    client_noise_multiplier,
    poisson_schedule,
    record_noise_multipliers,
)
from privaudit.mechanisms.dp.card import ClientDP, DeltaVsN, DPCard, build_dp_card
from privaudit.mechanisms.dp.client_level import (
    add_noise_to_sum,
    clip_delta,
    global_norm,
    noisy_uniform_aggregate,
    sample_clients,
)
from privaudit.mechanisms.dp.config import DPConfig
from privaudit.mechanisms.dp.record_level import (
    GRAD_SAMPLE_MODES,
    PrivateTraining,
    make_private,
    unwrap,
)
from privaudit.mechanisms.dp.validate import check_dp_config, check_model_for_opacus

__all__ = [
    "ACCOUNTANTS",
    "GRAD_SAMPLE_MODES",
    "ClientAccountant",
    "ClientDP",
    "DPCard",
    "DPConfig",
    "DeltaVsN",
    "PrivateTraining",
    "RoundEntry",
    "add_noise_to_sum",
    "build_dp_card",
    "calibrate_noise",
    "check_dp_config",
    "check_model_for_opacus",
    "client_noise_multiplier",
    "clip_delta",
    "federation_epsilon",
    "federation_epsilon_per_round",
    "global_norm",
    "group_privacy",
    "make_private",
    "noisy_uniform_aggregate",
    "poisson_schedule",
    "record_noise_multipliers",
    "sample_clients",
    "unwrap",
]
