"""Federated training: the client update, server strategies, privacy wrappers and engines.

Privacy composes around the plain pieces (STYLE 4): :class:`RecordLevelDP` and
:class:`ClippedClient` wrap the client update; :class:`SecureAggregation` and
:class:`DPFedAvg` wrap the strategy. :func:`build_recipe` composes them from the config and
:func:`~privaudit.mechanisms.federated.train.train_federation` trains with the result.
"""

from privaudit.mechanisms.federated.client import (
    ClientFn,
    ClientState,
    ClientUpdate,
    client_update,
)
from privaudit.mechanisms.federated.client_dp import ClientLevelRoundLog, ClippedClient, DPFedAvg
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
