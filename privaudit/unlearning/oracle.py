"""The oracle: retrain from scratch without the erased data, same seeds and schedule.

The retained data is derived again by :func:`prepare_data` with the erased records in
``data.exclude_records`` — the partition is computed before exclusion, so each erased record
leaves only its own client — and clients with no record left (a client request) are dropped.
The DP-audit canaries the target trained with stay in (the oracle is the target's training
set minus the erased records, nothing else; a canary client of a client-level audit sends its
canary update as in the run). Training goes through :func:`train_federation` from the run's
LoRA initialisation with the
run's seed, so it is the training run with the erased data left out: the reference every
other method is judged by, and the denominator of every speedup. (Engines seed clients by
their position, so after a client is dropped the clients behind it train under the seeds of
the positions they move to.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privaudit.core.errors import InternalError
from privaudit.mechanisms.data.splits import prepare_data
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.tasks import EncodedSet
from privaudit.unlearning.base import (
    ErasureTarget,
    MethodOutcome,
    UnlearnedModel,
    Unlearner,
    UnlearningContext,
    federation_examples,
    register_unlearner,
)


def oracle_clients(ctx: UnlearningContext, erased: frozenset[str]) -> dict[str, EncodedSet]:
    """The retained clients, derived again from the corpus with ``erased`` excluded."""
    canaries = ctx.audit_canary_ids
    whole = {c for c, d in ctx.clients.items() if set(d.record_ids) - canaries <= erased}
    # prepare_data refuses to empty a client: wholly erased clients are dropped afterwards
    partial = sorted(erased - {r for c in whole for r in ctx.clients[c].record_ids})
    dcfg = ctx.data_cfg.model_copy(
        update={"exclude_records": [*ctx.data_cfg.exclude_records, *partial]}
    )
    data = prepare_data(
        dcfg, task=ctx.recipe.task, k=ctx.recipe.federation.clients, seed=ctx.recipe.seed,
        canaries=ctx.attacks.canaries,
    )
    derived = {c: [r.id for r in recs] for c, recs in data.clients.items() if c not in whole}
    retained = ctx.retain_clients(erased)
    own = {c: [r for r in d.record_ids if r not in canaries] for c, d in retained.items()}
    if derived != {c: ids for c, ids in own.items() if ids}:
        raise InternalError(
            "oracle: prepare_data with the erased records excluded does not give the "
            "retained records of the run's partition"
        )
    return retained  # the same records (DP-audit canaries included), already encoded


class Oracle(Unlearner):
    name = "oracle"
    exactness = "exact"
    chained = False
    is_oracle = True
    ulira_unsupported = "the oracle is the yardstick U-LiRA's never-seen side stands for"

    def unlearn(
        self, ctx: UnlearningContext, target: ErasureTarget, ledger: Mapping[str, Any]
    ) -> MethodOutcome:
        clients = oracle_clients(ctx, target.erased)
        result = train_federation(
            ctx.recipe,
            ctx.bundle,
            clients,
            ctx.test,
            initial_state=ctx.initial_state,
            seed=ctx.recipe.seed,
            engine=ctx.engine,
            noise=ctx.run_noise(clients),
        )
        return MethodOutcome(
            model=UnlearnedModel(states=[result.final_state]),
            examples_processed=federation_examples(ctx.recipe, clients),
            trained_ids=set(result.seen_ids),
            stopping_reason=f"full schedule: {ctx.recipe.federation.rounds} round(s)",
        )


#: the seed of extra retraining j is the run's seed + REPLICATE_SEED_STEP · j
REPLICATE_SEED_STEP = 7919


def retrain_replicates(ctx: UnlearningContext, erased: frozenset[str], k: int, *,
                       first: int = 1) -> list[UnlearnedModel]:
    """The oracle's retraining done ``k`` more times with other seeds (the same retained
    clients, LoRA initialisation and DP noise multiplier; other batch orders and noise
    draws): how much two retrainings differ (:mod:`privaudit.unlearning.paired`).
    Replicate j (from ``first``) trains with the run's seed + ``REPLICATE_SEED_STEP`` · j;
    j = 0 is the oracle itself."""
    clients = oracle_clients(ctx, erased) if k > 0 else {}
    return [UnlearnedModel(states=[train_federation(
        ctx.recipe, ctx.bundle, clients, ctx.test, initial_state=ctx.initial_state,
        seed=ctx.recipe.seed + REPLICATE_SEED_STEP * j, engine=ctx.engine,
        noise=ctx.run_noise(clients)).final_state]) for j in range(first, first + k)]


register_unlearner(Oracle.name, Oracle)
