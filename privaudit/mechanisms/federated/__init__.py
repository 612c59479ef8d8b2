"""Federated training: the client update, server strategies and engines."""

from privaudit.mechanisms.federated.client import ClientState, ClientUpdate, client_update
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
from privaudit.mechanisms.federated.strategy import FedAvg, Strategy

__all__ = [
    "ClientState",
    "ClientUpdate",
    "Engine",
    "FedAvg",
    "InProcessEngine",
    "RoundRecord",
    "Strategy",
    "TrainingJob",
    "TrainingResult",
    "available_engines",
    "client_update",
    "get_engine",
    "register_engine",
]
