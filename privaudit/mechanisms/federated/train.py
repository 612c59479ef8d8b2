"""One entry point for federated training with a run's recipe, used by every caller.

The pipeline (the target model), reference models (attacks), oracles and retraining
(unlearning) all train through :func:`train_federation`, so they share the same recipe —
federation settings, privacy wrappers, engine — unless a caller overrides it on purpose.
It has no run-directory side effects of its own; ``on_round`` persists what a caller wants.
"""

from __future__ import annotations

from collections.abc import Callable

from privaudit.audit.config import AuditConfig
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.engine import (
    RoundRecord,
    TrainingJob,
    TrainingResult,
    get_engine,
)
from privaudit.mechanisms.federated.strategy import FedAvg
from privaudit.mechanisms.models import AdapterState, ModelBundle
from privaudit.mechanisms.tasks import EncodedSet

OnRound = Callable[[int, AdapterState, list[ClientUpdate], RoundRecord], None]


def train_federation(
    cfg: AuditConfig,
    bundle: ModelBundle,
    clients: dict[str, EncodedSet],
    test: EncodedSet,
    *,
    initial_state: AdapterState,
    seed: int,
    engine: str = "inprocess",
    on_round: OnRound | None = None,
) -> TrainingResult:
    """Train ``cfg.federation.rounds`` rounds from ``initial_state`` on ``clients``."""
    job = TrainingJob(
        model=bundle.model,
        task=cfg.model.task,
        initial_state=initial_state,
        clients=clients,
        test=test,
        federation=cfg.federation,
        seed=seed,
        strategy=FedAvg(weighting=cfg.federation.weighting),
        on_round=on_round,
    )
    return get_engine(engine).run(job)
