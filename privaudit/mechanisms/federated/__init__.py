"""Federated training: the client update, server strategies, privacy wrappers and engines.

Privacy composes around the plain pieces (STYLE 4): :class:`RecordLevelDP` and
:class:`ClippedClient` wrap the client update; :class:`SecureAggregation` and
:class:`DPFedAvg` wrap the strategy. :func:`build_recipe` composes them from the config and
:func:`~privaudit.mechanisms.federated.train.train_federation` trains with the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privaudit.core.lazy import lazy_exports

if TYPE_CHECKING:
    from privaudit.mechanisms.federated.client import (
        ClientFn,
        ClientState,
        ClientUpdate,
        client_update,
    )
    from privaudit.mechanisms.federated.client_dp import (
        ClientLevelRoundLog,
        ClippedClient,
        DPFedAvg,
    )
    from privaudit.mechanisms.federated.engine import (
        Engine,
        InProcessEngine,
        RoundRecord,
        TrainingJob,
        TrainingResult,
        available_engines,
        get_engine,
        register_engine,
    )
    from privaudit.mechanisms.federated.privacy import (
        FEDERATION,
        PrivacyOutcome,
        PrivacyRecipe,
        build_recipe,
        check_privacy,
        privacy_problems,
    )
    from privaudit.mechanisms.federated.record_dp import ExampleLoss, RecordLevelDP
    from privaudit.mechanisms.federated.secure import SecureAggregation, SecureRoundLog
    from privaudit.mechanisms.federated.strategy import (
        AggregationLog,
        FedAvg,
        Strategy,
        WeightedMean,
    )

_EXPORTS = {
    "AggregationLog": "privaudit.mechanisms.federated.strategy",
    "ClientFn": "privaudit.mechanisms.federated.client",
    "ClientLevelRoundLog": "privaudit.mechanisms.federated.client_dp",
    "ClientState": "privaudit.mechanisms.federated.client",
    "ClientUpdate": "privaudit.mechanisms.federated.client",
    "ClippedClient": "privaudit.mechanisms.federated.client_dp",
    "DPFedAvg": "privaudit.mechanisms.federated.client_dp",
    "Engine": "privaudit.mechanisms.federated.engine",
    "ExampleLoss": "privaudit.mechanisms.federated.record_dp",
    "FEDERATION": "privaudit.mechanisms.federated.privacy",
    "FedAvg": "privaudit.mechanisms.federated.strategy",
    "InProcessEngine": "privaudit.mechanisms.federated.engine",
    "PrivacyOutcome": "privaudit.mechanisms.federated.privacy",
    "PrivacyRecipe": "privaudit.mechanisms.federated.privacy",
    "RecordLevelDP": "privaudit.mechanisms.federated.record_dp",
    "RoundRecord": "privaudit.mechanisms.federated.engine",
    "SecureAggregation": "privaudit.mechanisms.federated.secure",
    "SecureRoundLog": "privaudit.mechanisms.federated.secure",
    "Strategy": "privaudit.mechanisms.federated.strategy",
    "TrainingJob": "privaudit.mechanisms.federated.engine",
    "TrainingResult": "privaudit.mechanisms.federated.engine",
    "WeightedMean": "privaudit.mechanisms.federated.strategy",
    "available_engines": "privaudit.mechanisms.federated.engine",
    "build_recipe": "privaudit.mechanisms.federated.privacy",
    "check_privacy": "privaudit.mechanisms.federated.privacy",
    "client_update": "privaudit.mechanisms.federated.client",
    "get_engine": "privaudit.mechanisms.federated.engine",
    "privacy_problems": "privaudit.mechanisms.federated.privacy",
    "register_engine": "privaudit.mechanisms.federated.engine",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "FEDERATION",
    "AggregationLog",
    "ClientFn",
    "ClientLevelRoundLog",
    "ClientState",
    "ClientUpdate",
    "ClippedClient",
    "DPFedAvg",
    "Engine",
    "ExampleLoss",
    "FedAvg",
    "InProcessEngine",
    "PrivacyOutcome",
    "PrivacyRecipe",
    "RecordLevelDP",
    "RoundRecord",
    "SecureAggregation",
    "SecureRoundLog",
    "Strategy",
    "TrainingJob",
    "TrainingResult",
    "WeightedMean",
    "available_engines",
    "build_recipe",
    "check_privacy",
    "client_update",
    "get_engine",
    "privacy_problems",
    "register_engine",
]
