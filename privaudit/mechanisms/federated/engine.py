"""Engines run the rounds: they move adapters and updates, and hold no privacy logic.

``register_engine(name, cls)`` / ``get_engine(name)`` is the registry the config and the CLI
(``--engine``) name engines through. The in-process engine is the default and what tests use.

Client failure (:func:`run_client`): a client whose update raises, or whose round takes longer
than ``federation.client_timeout`` seconds, is dropped from that round and listed in
:attr:`RoundRecord.dropouts`; the round goes on when at least ``TrainingJob.min_clients`` of
the selected clients delivered an update, else :class:`EvidenceIncomplete` (exit 4) names
the dropouts. A dropped client's accountant keeps the DP steps it really took: a client that
raised mid-round keeps the noisy steps it completed before the failure (Opacus had already
released them to the local model: counting them is the conservative choice), a client that
timed out keeps all of its steps although its update is discarded. In-process, clients run
one after another in this thread, so a slow client cannot be pre-empted: its wall time is
measured and it is dropped AFTER it returns. The Flower engine has its own deadline
(``round_timeout`` of ``Grid.send_and_receive``) and aggregates the replies that arrived
within it; it does not list dropouts (train_federation warns when these settings are set).
A :class:`~privaudit.core.errors.ConfigError` raised by a client is a settings problem that
every client shares, and an :class:`~privaudit.core.errors.InternalError` a broken invariant
(e.g. DP-SGD steps not matching the loop's): neither is a client failure, both stop the run
(exit 2, exit 3).
"""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from torch import nn

from privaudit.core.errors import ConfigError, EvidenceIncomplete, InternalError
from privaudit.core.registry import Registry
from privaudit.mechanisms.federated.client import (
    ClientFn,
    ClientState,
    ClientUpdate,
    client_update,
    local_seed,
)
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.federated.strategy import AggregationLog, Strategy
from privaudit.mechanisms.models import AdapterState, set_adapter_state, state_sha256
from privaudit.mechanisms.tasks import EncodedSet, evaluate_utility

if TYPE_CHECKING:
    from privaudit.mechanisms.federated.privacy import PrivacyOutcome


@dataclass
class ClientDropout:
    """A client dropped from one round: it raised, or it took longer than the timeout.
    ``steps``: the DP steps its accountant recorded in this round (None without one)."""

    client_id: str
    round: int
    reason: Literal["raised", "timeout"]
    detail: str
    seconds: float
    steps: int | None = None

    def describe(self) -> str:
        return f"{self.client_id} ({self.detail})"


@dataclass
class RoundRecord:
    round: int
    global_sha256: str
    utility_metric: str
    utility: float
    seconds: float
    clients: list[str]
    client_metrics: dict[str, dict[str, float]]
    #: the states of the clients that took part, after the round (accountants included);
    #: dropped clients are in it too: their accountants keep the steps they took
    client_states: dict[str, ClientState] = field(default_factory=dict)
    aggregation: AggregationLog | None = None
    #: the federation's DP ε after this round (set by train_federation when DP is on)
    epsilon: float | None = None
    #: the run's privacy outcome so far (live; set by train_federation): persist a snapshot
    privacy: PrivacyOutcome | None = None
    #: clients dropped from this round (raised or timed out); not in ``clients``
    dropouts: list[ClientDropout] = field(default_factory=list)


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
    checkpoint (``initial_state`` is then that checkpoint). ``min_clients``: updates a round
    needs after dropouts (of the clients selected, when fewer were); ``min_clients_field``
    names the config field it comes from, for the error.
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
    min_clients: int = 1
    min_clients_field: str = "federation.min_clients"


class Engine(ABC):
    name: str = ""

    @abstractmethod
    def run(self, job: TrainingJob) -> TrainingResult:
        """Train ``job.federation.rounds`` rounds and return the final global adapter."""


def _accounted_steps(state: ClientState) -> int | None:
    return state.accountant.total_steps if state.accountant is not None else None


def run_client(
    job: TrainingJob,
    global_state: AdapterState,
    client: str,
    state: ClientState,
    *,
    round_index: int,
    seed: int,
) -> tuple[ClientUpdate | None, ClientState, ClientDropout | None]:
    """One client's round: (update, its state after the round, None), or (None, its state,
    the dropout) when it raised or overran ``federation.client_timeout`` (module docstring)."""
    before = _accounted_steps(state)
    started = time.perf_counter()
    try:
        update, new_state = job.client_fn(
            job.model,
            global_state,
            job.clients[client],
            job.federation,
            state,
            task=job.task,
            round_index=round_index,
            seed=seed,
        )
    except (ConfigError, InternalError):
        raise  # a settings problem or a broken invariant of privaudit, not a client failure
    except Exception as exc:  # any other failure of one client drops it from the round
        after = _accounted_steps(state)  # Opacus recorded the steps it completed, in place
        return None, state, ClientDropout(
            client_id=client,
            round=round_index,
            reason="raised",
            detail=f"raised {type(exc).__name__}: {exc}",
            seconds=time.perf_counter() - started,
            steps=None if after is None or before is None else after - before,
        )
    seconds = time.perf_counter() - started
    limit = job.federation.client_timeout
    if limit is not None and seconds > limit:
        after = _accounted_steps(new_state)
        return None, new_state, ClientDropout(
            client_id=client,
            round=round_index,
            reason="timeout",
            detail=f"took {seconds:.3g} s > federation.client_timeout {limit:g} s",
            seconds=seconds,
            steps=None if after is None or before is None else after - before,
        )
    return update, new_state, None


def check_quorum(
    job: TrainingJob, round_index: int, selected: int, dropouts: list[ClientDropout]
) -> None:
    """Raise :class:`EvidenceIncomplete` when dropouts leave fewer updates than the round
    needs (``job.min_clients``, or every selected client when fewer were selected)."""
    needed = min(job.min_clients, selected)
    delivered = selected - len(dropouts)
    if delivered >= needed:
        return
    named = "; ".join(d.describe() for d in dropouts)
    raise EvidenceIncomplete(
        f"round {round_index}: {delivered} of {selected} client(s) delivered an update, "
        f"{job.min_clients_field} is {job.min_clients}; training stopped (dropped: {named})"
    )


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
            dropouts: list[ClientDropout] = []
            chosen = set(job.strategy.select(r, list(job.clients)))
            for index, client in enumerate(job.clients):
                if client not in chosen:
                    continue
                update, states[client], dropout = run_client(
                    job,
                    global_state,
                    client,
                    states[client],
                    round_index=r,
                    seed=local_seed(job.seed, r, index),
                )
                if dropout is not None:
                    dropouts.append(dropout)
                if update is None:
                    continue
                updates.append(update)
                seen.update(update.seen_ids)
            check_quorum(job, r, len(chosen), dropouts)
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
                client_states={
                    c: states[c] for c in [*(u.client_id for u in updates),
                                           *(d.client_id for d in dropouts)]
                },
                aggregation=log,
                dropouts=dropouts,
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


#: Engines outside this module, imported on the first lookup: the Flower engine registers
#: itself when its module loads (it imports Flower only when it runs: an optional extra).
_BUILTIN = ("privaudit.mechanisms.federated.flower.engine",)


def _load_builtin() -> None:
    for module in _BUILTIN:
        importlib.import_module(module)


#: The training engines, by name (:class:`~privaudit.core.registry.Registry`).
ENGINES: Registry[type[Engine]] = Registry("engine", where="--engine", load=_load_builtin)


def register_engine(name: str, cls: type[Engine]) -> None:
    ENGINES.register(name, cls)


def get_engine(name: str) -> Engine:
    return ENGINES.get(name)()


def available_engines() -> list[str]:
    return ENGINES.names()


register_engine(InProcessEngine.name, InProcessEngine)
