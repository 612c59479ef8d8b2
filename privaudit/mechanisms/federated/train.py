"""One entry point for federated training with a run's recipe, used by every caller.

The pipeline (the target model), reference models (attacks), oracles and retraining
(unlearning) all train through :func:`train_federation`, so they share the same recipe —
federation settings, privacy wrappers (``privacy.dp``, ``secure_aggregation``), engine —
unless a caller overrides it on purpose. It has no run-directory side effects of its own;
``on_round`` persists what a caller wants (each round's record carries the clients' states,
the aggregation log and the federation's ε so far).
"""

from __future__ import annotations

from collections.abc import Callable

from privaudit.audit.config import AuditConfig
from privaudit.mechanisms.federated.client import ClientState, ClientUpdate
from privaudit.mechanisms.federated.engine import (
    RoundRecord,
    TrainingJob,
    TrainingResult,
    get_engine,
)
from privaudit.mechanisms.federated.privacy import (
    FEDERATION,
    PrivacyOutcome,
    build_recipe,
    client_sizes_of,
    training_federation,
)
from privaudit.mechanisms.federated.secure import Channel
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
    start_round: int = 1,
    resume: PrivacyOutcome | None = None,
    channel: Channel | None = None,
) -> TrainingResult:
    """Train rounds ``start_round`` … ``cfg.federation.rounds`` from ``initial_state``.

    DP and secure-aggregation settings are checked (and the noise calibrated for the whole
    schedule) before the first step; a problem raises PrivacyBudgetError /
    SecureAggregationError naming the field. ``start_round`` > 1 continues an interrupted
    run: ``initial_state`` is its last checkpoint and ``resume`` its persisted privacy
    outcome (the accountants go on with their history). ``channel`` carries encrypted updates
    to the server (tests use it to drop, replay or tamper with them).
    """
    sizes = client_sizes_of(clients)
    recipe = build_recipe(
        cfg,
        client_sizes=sizes,
        adapter_config_hash=bundle.adapter_config_sha256,
        seed=seed,
        model=bundle.model,
        resume=resume,
        channel=channel,
    )
    outcome = recipe.outcome
    record_level = cfg.privacy.dp.mode == "record"
    states = {
        c: ClientState(
            client_id=c,
            rounds_taken=start_round - 1,
            accountant=outcome.accountants[c] if record_level else None,
        )
        for c in clients
    }

    def round_done(
        r: int, state: AdapterState, updates: list[ClientUpdate], record: RoundRecord
    ) -> None:
        for c, client_state in record.client_states.items():
            if record_level and client_state.accountant is not None:
                outcome.accountants[c] = client_state.accountant
        log = record.aggregation
        if log is not None and log.secure_aggregation is not None:
            outcome.secure_rounds.append(log.secure_aggregation)
        record.epsilon = outcome.epsilon()
        record.privacy = outcome
        if on_round is not None:
            on_round(r, state, updates, record)

    job = TrainingJob(
        model=bundle.model,
        task=cfg.model.task,
        initial_state=initial_state,
        clients=clients,
        test=test,
        federation=training_federation(cfg),
        seed=seed,
        strategy=recipe.strategy,
        on_round=round_done,
        client_fn=recipe.client_fn,
        start_round=start_round,
        client_states=states,
    )
    result = get_engine(engine).run(job)
    result.privacy = outcome
    return result


__all__ = ["FEDERATION", "OnRound", "train_federation"]
