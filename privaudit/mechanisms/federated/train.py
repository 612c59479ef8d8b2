"""One entry point for federated training with a run's recipe, used by every caller.

The pipeline (the target model), reference models (attacks), oracles and retraining
(unlearning) all train through :func:`train_federation`, so they share the same recipe —
federation settings, privacy wrappers (``privacy.dp``, ``secure_aggregation``), engine —
unless a caller overrides it on purpose. It has no run-directory side effects of its own;
``on_round`` persists what a caller wants (each round's record carries the clients' states,
the aggregation log and the federation's ε so far).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

from privaudit.mechanisms.dp.gradient_canaries import CanaryObserver
from privaudit.mechanisms.federated.client import ClientFn, ClientState, ClientUpdate
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
)
from privaudit.mechanisms.federated.recipe import TrainingRecipe
from privaudit.mechanisms.federated.secure import Channel
from privaudit.mechanisms.models import AdapterState, ModelBundle
from privaudit.mechanisms.tasks import EncodedSet

OnRound = Callable[[int, AdapterState, list[ClientUpdate], RoundRecord], None]


def _tracking_privacy(outcome: PrivacyOutcome, record_level: bool,
                      on_round: OnRound | None) -> OnRound:
    """The engine's per-round callback: the round's accountants and secure-aggregation log
    go into ``outcome``, the ε so far onto the round record, then ``on_round``."""

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

    return round_done


def train_federation(
    recipe: TrainingRecipe,
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
    noise: Mapping[str, float] | None = None,
    gradient_canaries: CanaryObserver | None = None,
    wrap_client: Callable[[ClientFn], ClientFn] | None = None,
) -> TrainingResult:
    """Train rounds ``start_round`` … ``recipe.federation.rounds`` from ``initial_state``.

    DP and secure-aggregation settings are checked (and the noise calibrated for the whole
    schedule) before the first step; a problem raises PrivacyBudgetError /
    SecureAggregationError naming the field. ``start_round`` > 1 continues an interrupted
    run: ``initial_state`` is its last checkpoint and ``resume`` its persisted privacy
    outcome (the accountants go on with their history). ``channel`` carries encrypted updates
    to the server (tests use it to drop, replay or tamper with them). ``noise`` fixes σ per
    client (z under ``federation`` in client mode) instead of calibrating it: retraining
    after an erasure reuses the run's noise (with ``resume`` its accountants continue).
    ``gradient_canaries``: a DP audit's canaries in DP-SGD's clipped gradients. ``wrap_client``
    wraps the client update (tests make a client fail or stall). Clients that fail or overrun
    ``federation.client_timeout`` are dropped from their round (see
    :mod:`~privaudit.mechanisms.federated.engine`).
    """
    fed = recipe.federation
    if engine != "inprocess" and (fed.client_timeout is not None or fed.min_clients > 1):
        warnings.warn(
            f"federation.client_timeout / federation.min_clients are enforced by the in-process "
            f"engine; the {engine} engine aggregates the replies that arrive within its own "
            "round_timeout and does not list dropouts in the report", UserWarning, stacklevel=2)
    sizes = client_sizes_of(clients)
    privacy = build_recipe(
        recipe,
        client_sizes=sizes,
        adapter_config_hash=bundle.adapter_config_sha256,
        seed=seed,
        model=bundle.model,
        resume=resume,
        channel=channel,
        noise=noise,
        gradient_canaries=gradient_canaries,
    )
    outcome = privacy.outcome
    record_level = recipe.dp.mode == "record"
    states = {
        c: ClientState(
            client_id=c,
            rounds_taken=start_round - 1,
            accountant=outcome.accountants[c] if record_level else None,
        )
        for c in clients
    }

    job = TrainingJob(
        model=bundle.model,
        task=recipe.task,
        initial_state=initial_state,
        clients=clients,
        test=test,
        federation=recipe.training_federation(),
        seed=seed,
        strategy=privacy.strategy,
        on_round=_tracking_privacy(outcome, record_level, on_round),
        client_fn=wrap_client(privacy.client_fn) if wrap_client else privacy.client_fn,
        start_round=start_round,
        client_states=states,
        min_clients=recipe.quorum()[0],
        min_clients_field=recipe.quorum()[1],
    )
    result = get_engine(engine).run(job)
    result.privacy = outcome
    return result


__all__ = ["FEDERATION", "OnRound", "train_federation"]
