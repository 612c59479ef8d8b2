"""Incremental retraining: fine-tune on the retained data, and FedEraser's calibrated replay.

- ``finetune_retain`` continues federated training from the current model on the retained
  data only, for ``unlearning.finetune_retain.rounds`` rounds (a budget, not the schedule).
- ``federaser`` (Liu et al. 2021, "FedEraser: Enabling Efficient Client-Level Data Removal
  from Federated Learning Models") rebuilds the global model from the LoRA initialisation by
  replaying the per-round client updates the run stored, every Δt-th round
  (``unlearning.federaser.interval``). At each replayed round t the clients that must
  recompute train from the new global model for ``epoch_ratio`` × the original local epochs
  (calibration training), and each recomputed update U_new is scaled per tensor to the norm
  of the stored one: ‖U_old‖ · U_new / ‖U_new‖. For a client request the client is dropped
  and every remaining client recomputes (the paper's protocol); for a record or subject
  request only the holding client recomputes, on its remaining data, and the other clients'
  stored updates are replayed as they were. Approximate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from privaudit.core.errors import ConfigError
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.federated.engine import RoundRecord
from privaudit.mechanisms.federated.strategy import FedAvg
from privaudit.mechanisms.federated.train import OnRound, train_federation
from privaudit.mechanisms.models import AdapterState, load_adapter
from privaudit.unlearning.base import (
    ErasureTarget,
    MethodOutcome,
    UnlearnedModel,
    Unlearner,
    UnlearningContext,
    federation_examples,
    register_unlearner,
)


def calibrate(old: AdapterState, new: AdapterState) -> AdapterState:
    """Per tensor, the new update's direction at the stored update's norm.

    >>> out = calibrate({"w": torch.tensor([3.0, 4.0])}, {"w": torch.tensor([0.0, 2.0])})
    >>> out["w"].tolist()
    [0.0, 5.0]
    """
    out: AdapterState = {}
    for name, u_new in new.items():
        norm_new = float(torch.linalg.vector_norm(u_new.double()))
        norm_old = float(torch.linalg.vector_norm(old[name].double()))
        scale = norm_old / norm_new if norm_new > 0 else 0.0
        out[name] = (u_new.double() * scale).to(u_new.dtype)
    return out


def _collector(into: dict[str, AdapterState]) -> OnRound:
    """An ``on_round`` that keeps each client's delta (the per-client updates of a round)."""

    def keep(r: int, s: AdapterState, ups: list[ClientUpdate], rec: RoundRecord) -> None:
        into.update({u.client_id: u.delta for u in ups})

    return keep


class FinetuneRetain(Unlearner):
    name = "finetune_retain"
    exactness = "approximate"

    def estimate_steps(self, fed: FederationConfig, *, clients: int, per_round: int,
                       retraining: int) -> int:
        return self.cfg.finetune_retain.rounds * per_round

    def unlearn(
        self, ctx: UnlearningContext, target: ErasureTarget, ledger: Mapping[str, Any]
    ) -> MethodOutcome:
        rounds = self.cfg.finetune_retain.rounds
        fcfg = ctx.recipe.with_federation(rounds=rounds)
        retain = ctx.retain_clients(target.erased)
        result = train_federation(  # round utility unread: no per-round test evaluation
            fcfg, ctx.bundle, retain, ctx.test.subset([]),
            initial_state=target.start.states[0], seed=target.seed, engine=ctx.engine,
            noise=ctx.run_noise(retain), resume=ctx.continued_privacy(),
        )
        return MethodOutcome(
            model=UnlearnedModel(states=[result.final_state]),
            examples_processed=federation_examples(fcfg, retain),
            trained_ids=set(result.seen_ids),
            stopping_reason=f"budget: {rounds} round(s) on the retained data",
            retained_epsilon=result.privacy.epsilon() if result.privacy else None,
        )


class FedEraser(Unlearner):
    name = "federaser"
    exactness = "approximate"
    chained = False
    ulira_unsupported = ("federaser replays and recomputes the stored rounds, a retraining per "
                         "reference")

    def estimate_steps(self, fed: FederationConfig, *, clients: int, per_round: int,
                       retraining: int) -> int:
        replayed = math.ceil(fed.rounds / self.cfg.federaser.interval)
        return math.ceil(replayed * per_round * self.cfg.federaser.epoch_ratio)

    def unlearn(
        self, ctx: UnlearningContext, target: ErasureTarget, ledger: Mapping[str, Any]
    ) -> MethodOutcome:
        fed, conf = ctx.recipe.federation, self.cfg.federaser
        retain = ctx.retain_clients(target.erased)
        dropped = [c for c in ctx.clients if c not in retain]
        partial = [c for c in retain if len(retain[c]) < len(ctx.clients[c])]
        recompute = list(retain) if dropped else partial
        epochs = max(1, round(fed.local_epochs * conf.epoch_ratio))
        # each recomputing client trains alone; the replay aggregates (plain FedAvg) itself
        ccfg = ctx.recipe.with_federation(rounds=1, local_epochs=epochs).local()
        strategy = FedAvg(weighting=fed.weighting)
        replayed = list(range(1, fed.rounds + 1, conf.interval))
        outcome = MethodOutcome(model=UnlearnedModel(states=[ctx.initial_state]),
                                examples_processed=0)
        state = ctx.initial_state
        privacy = ctx.continued_privacy()  # recomputed updates are new DP releases
        for t in replayed:
            stored = {c: self._stored(ctx, t, c) for c in retain}
            fresh: dict[str, AdapterState] = {}
            keep = _collector(fresh)
            if recompute:
                part = {c: retain[c] for c in recompute}
                # round t again, under the run's seeds for round t
                result = train_federation(  # round utility unread: no test evaluation
                    ccfg.with_federation(rounds=t), ctx.bundle, part, ctx.test.subset([]),
                    initial_state=state, seed=ctx.recipe.seed, engine=ctx.engine, on_round=keep,
                    start_round=t, noise=ctx.run_noise(part), resume=privacy,
                )
                privacy = result.privacy
                outcome.trained_ids |= result.seen_ids
                outcome.examples_processed += federation_examples(ccfg, part)
            updates = [
                ClientUpdate(
                    client_id=c, round=t, n_examples=len(retain[c]), metrics={},
                    delta=calibrate(stored[c], fresh[c]) if c in fresh else stored[c],
                )
                for c in retain
            ]
            state = strategy.aggregate(state, updates)
        outcome.model = UnlearnedModel(states=[state])
        outcome.retained_epsilon = privacy.epsilon() if privacy is not None else None
        outcome.stopping_reason = (
            f"replayed rounds {replayed} of {fed.rounds} (interval {conf.interval}), "
            f"{epochs} calibration epoch(s)"
        )
        if dropped:
            outcome.flags.append(f"dropped client(s) {dropped}; every remaining client "
                                 "recomputed and calibrated its updates")
        else:
            outcome.flags.append(f"recomputed {partial} on remaining data; other clients' "
                                 "stored updates replayed as stored")
        if ctx.recipe.secure_aggregation.enabled:
            outcome.flags.append("secure aggregation was on: the replay reads per-client "
                                 "updates stored in the run directory, which the server "
                                 "of a deployed federation never holds")
        return outcome

    @staticmethod
    def _stored(ctx: UnlearningContext, round_index: int, client: str) -> AdapterState:
        path = ctx.run.client_update(round_index, client)
        if not path.is_file():
            raise ConfigError(
                f"unlearning.methods: federaser needs the stored client updates; "
                f"{ctx.run.relative(path)} is missing"
            )
        return load_adapter(path)


register_unlearner(FinetuneRetain.name, FinetuneRetain)
register_unlearner(FedEraser.name, FedEraser)
