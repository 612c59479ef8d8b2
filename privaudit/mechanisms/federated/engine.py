"""Engines run the rounds: they move adapters and updates, and hold no privacy logic.

``register_engine(name, cls)`` / ``get_engine(name)`` is the registry the config and the CLI
(``--engine``) name engines through. The in-process engine is the default and what tests use.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import nn

from privaudit.audit.config import FederationConfig
from privaudit.audit.errors import ConfigError
from privaudit.mechanisms.federated.client import (
    ClientFn,
    ClientState,
    ClientUpdate,
    client_update,
    local_seed,
)
from privaudit.mechanisms.federated.strategy import AggregationLog, Strategy
from privaudit.mechanisms.models import AdapterState, set_adapter_state, state_sha256
from privaudit.mechanisms.tasks import EncodedSet, evaluate_utility

if TYPE_CHECKING:
    from privaudit.mechanisms.federated.privacy import PrivacyOutcome


@dataclass
class RoundRecord:
    round: int
    global_sha256: str
    utility_metric: str
    utility: float
    seconds: float
    clients: list[str]
    client_metrics: dict[str, dict[str, float]]
    #: the states of the clients that took part, after the round (accountants included)
    client_states: dict[str, ClientState] = field(default_factory=dict)
    aggregation: AggregationLog | None = None
    #: the federation's DP ε after this round (set by train_federation when DP is on)
    epsilon: float | None = None
    #: the run's privacy outcome so far (live; set by train_federation): persist a snapshot
    privacy: PrivacyOutcome | None = None


@dataclass
class TrainingResult:
    initial_state: AdapterState
    final_state: AdapterState
    rounds: list[RoundRecord]
    client_states: dict[str, ClientState]
    seen_ids: set[str] = field(default_factory=set)
    privacy: PrivacyOutcome | None = None  # DP accountants and secure-aggregation logs

    @property
    def final_sha256(self) -> str:
        return state_sha256(self.final_state)


@dataclass
class TrainingJob:
    """Everything an engine needs; ``on_round`` persists checkpoints (the pipeline's job).

    ``client_fn`` is the client update (plain, or wrapped by a privacy mechanism);
    ``start_round`` and ``client_states`` continue an interrupted run from its last
    checkpoint (``initial_state`` is then that checkpoint).
    """

    model: nn.Module
    task: str
    initial_state: AdapterState
    clients: dict[str, EncodedSet]
    test: EncodedSet
    federation: FederationConfig
    seed: int
    strategy: Strategy
    on_round: Callable[[int, AdapterState, list[ClientUpdate], RoundRecord], None] | None = None
    client_fn: ClientFn = client_update
    start_round: int = 1
    client_states: dict[str, ClientState] | None = None


class Engine(ABC):
    name: str = ""

    @abstractmethod
    def run(self, job: TrainingJob) -> TrainingResult:
        """Train ``job.federation.rounds`` rounds and return the final global adapter."""


class InProcessEngine(Engine):
    """All clients in this process, one after another, sharing one model instance."""

    name = "inprocess"

    def run(self, job: TrainingJob) -> TrainingResult:
        states = {c: ClientState(client_id=c) for c in job.clients}
        states |= {c: s for c, s in (job.client_states or {}).items() if c in states}
        global_state = {n: t.clone() for n, t in job.initial_state.items()}
        rounds: list[RoundRecord] = []
        seen: set[str] = set()
        for r in range(job.start_round, job.federation.rounds + 1):
            started = time.perf_counter()
            updates: list[ClientUpdate] = []
            chosen = set(job.strategy.select(r, list(job.clients)))
            for index, (client, data) in enumerate(job.clients.items()):
                if client not in chosen:
                    continue
                update, states[client] = job.client_fn(
                    job.model,
                    global_state,
                    data,
                    job.federation,
                    states[client],
                    task=job.task,
                    round_index=r,
                    seed=local_seed(job.seed, r, index),
                )
                updates.append(update)
                seen.update(update.seen_ids)
            global_state, log = job.strategy.aggregate_round(global_state, updates, round_index=r)
            set_adapter_state(job.model, global_state)
            metric, value = evaluate_utility(job.model, job.test, job.task)
            record = RoundRecord(
                round=r,
                global_sha256=state_sha256(global_state),
                utility_metric=metric,
                utility=value,
                seconds=time.perf_counter() - started,
                clients=[u.client_id for u in updates],
                client_metrics={u.client_id: u.metrics for u in updates},
                client_states={u.client_id: states[u.client_id] for u in updates},
                aggregation=log,
            )
            rounds.append(record)
            if job.on_round is not None:
                job.on_round(r, global_state, updates, record)
        return TrainingResult(
            initial_state=job.initial_state,
            final_state=global_state,
            rounds=rounds,
            client_states=states,
            seen_ids=seen,
        )


_ENGINES: dict[str, type[Engine]] = {}


def register_engine(name: str, cls: type[Engine]) -> None:
    if name in _ENGINES:
        raise ValueError(f"engine {name!r} is already registered")
    _ENGINES[name] = cls


def get_engine(name: str) -> Engine:
    if name not in _ENGINES:
        raise ConfigError(
            f"--engine: must be one of {', '.join(sorted(_ENGINES))} (got {name!r})"
        )
    return _ENGINES[name]()


def available_engines() -> list[str]:
    return sorted(_ENGINES)


register_engine(InProcessEngine.name, InProcessEngine)

# the Flower engine (imports Flower only when it runs; the `flower` extra is optional)
from privaudit.mechanisms.federated.flower.engine import FlowerEngine  # noqa: E402

register_engine("flower", FlowerEngine)
