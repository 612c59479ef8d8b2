"""Differential privacy for the federation: record-level DP-SGD per client (Opacus) with one
accountant per client for the whole run, client-level DP-FedAvg, calibration, checks run
before training, and the DP card of the report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from privaudit.core.lazy import lazy_exports

if TYPE_CHECKING:
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
    from privaudit.mechanisms.dp.card import build_dp_card
    from privaudit.mechanisms.dp.client_level import (
        add_noise_to_sum,
        clip_delta,
        global_norm,
        noisy_uniform_aggregate,
        sample_clients,
    )
    from privaudit.mechanisms.dp.config import DPConfig, PrivacyConfig
    from privaudit.mechanisms.dp.record_level import (
        GRAD_SAMPLE_MODES,
        PrivateTraining,
        make_private,
        unwrap,
    )
    from privaudit.mechanisms.dp.results import ClientDP, DeltaVsN, DPCard
    from privaudit.mechanisms.dp.validate import check_dp_config, check_model_for_opacus

_EXPORTS = {
    "ACCOUNTANTS": "privaudit.mechanisms.dp.accounting",
    "ClientAccountant": "privaudit.mechanisms.dp.accounting",
    "ClientDP": "privaudit.mechanisms.dp.results",
    "DPCard": "privaudit.mechanisms.dp.results",
    "DPConfig": "privaudit.mechanisms.dp.config",
    "DeltaVsN": "privaudit.mechanisms.dp.results",
    "PrivacyConfig": "privaudit.mechanisms.dp.config",
    "GRAD_SAMPLE_MODES": "privaudit.mechanisms.dp.record_level",
    "PrivateTraining": "privaudit.mechanisms.dp.record_level",
    "RoundEntry": "privaudit.mechanisms.dp.accounting",
    "add_noise_to_sum": "privaudit.mechanisms.dp.client_level",
    "build_dp_card": "privaudit.mechanisms.dp.card",
    "calibrate_noise": "privaudit.mechanisms.dp.calibration",
    "check_dp_config": "privaudit.mechanisms.dp.validate",
    "check_model_for_opacus": "privaudit.mechanisms.dp.validate",
    "client_noise_multiplier": "privaudit.mechanisms.dp.calibration",
    "clip_delta": "privaudit.mechanisms.dp.client_level",
    "federation_epsilon": "privaudit.mechanisms.dp.accounting",
    "federation_epsilon_per_round": "privaudit.mechanisms.dp.accounting",
    "global_norm": "privaudit.mechanisms.dp.client_level",
    "group_privacy": "privaudit.mechanisms.dp.accounting",
    "make_private": "privaudit.mechanisms.dp.record_level",
    "noisy_uniform_aggregate": "privaudit.mechanisms.dp.client_level",
    "poisson_schedule": "privaudit.mechanisms.dp.calibration",
    "record_noise_multipliers": "privaudit.mechanisms.dp.calibration",
    "sample_clients": "privaudit.mechanisms.dp.client_level",
    "unwrap": "privaudit.mechanisms.dp.record_level",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ACCOUNTANTS",
    "GRAD_SAMPLE_MODES",
    "ClientAccountant",
    "ClientDP",
    "DPCard",
    "DPConfig",
    "DeltaVsN",
    "PrivacyConfig",
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
