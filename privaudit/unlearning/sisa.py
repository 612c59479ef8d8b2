"""SISA training and exact erasure (Bourtoule et al., "Machine Unlearning", S&P 2021).

The training records are split into S disjoint shards (``shard_by: records`` — seeded, a data
subject's records kept together when the partition keeps them together — or ``clients``:
one shard per client), each shard into R slices. Shard k is one LoRA adapter trained in
isolation from the run's LoRA initialisation, slice by slice: after slice r it has trained
``epochs_per_slice`` epochs on slices 1..r, and that checkpoint is kept. The SISA model
predicts with the mean of its shards' probabilities.

An erasure retrains only the shards holding erased records, from the checkpoint before the
first slice holding one, on the remaining records under the same seeds. The checkpoints
before that slice never saw the records, so the result is byte-identical to training the
shard from scratch without them (checked at run time when ``sisa.verify`` is on, and by the
tests): exact. Its oracle is SISA retrained without the data — the affected shards from
scratch (measured) and the others, which would come out identical, at their recorded time.

Each slice trains through :func:`train_federation` as a one-client federation, so the
run's recipe (optimizer, batch size, DP) applies; secure aggregation does not (a shard is
trained by one party), and is switched off for it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from privaudit.core.rundir import write_json_atomic
from privaudit.mechanisms.data.partition import even_split
from privaudit.mechanisms.dp.calibration import (
    calibrate_schedule,
    poisson_schedule,
    schedule_epsilon,
)
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.federated.recipe import TrainingRecipe
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.models import AdapterState, load_adapter, save_adapter
from privaudit.mechanisms.tasks import EncodedSet
from privaudit.unlearning.base import (
    ErasureTarget,
    MethodOutcome,
    UnlearnedModel,
    Unlearner,
    UnlearningContext,
    derive_seed,
    register_unlearner,
)
from privaudit.unlearning.evaluate import utility
from privaudit.unlearning.requests import ErasureRequest
from privaudit.unlearning.sisa_layout import SisaLayout as SisaLayout
from privaudit.unlearning.sisa_layout import build_layout as build_layout


@dataclass
class ShardRun:
    checkpoints: list[AdapterState]  # after each trained slice, from ``start`` on
    seconds: list[float]
    seen_ids: set[str]
    examples: int


def train_shard(
    ctx: UnlearningContext,
    layout: SisaLayout,
    k: int,
    *,
    excluded: frozenset[str],
    start: int = 0,
    state: AdapterState | None = None,
) -> ShardRun:
    """Train shard k's slices ``start``..R−1 from ``state`` (the LoRA init when ``start`` = 0).

    A pure function of (layout, k, excluded, start, state) and the run's seed: slice r is one
    round of a one-client federation on slices 0..r under the seed of (shard, slice).
    """
    epochs = epochs_per_slice(ctx)
    scfg = shard_recipe(ctx)
    sigma = shard_noise_multiplier(scfg, layout, k)
    pool = _pool(ctx)
    current = ctx.initial_state if state is None else state
    run = ShardRun(checkpoints=[], seconds=[], seen_ids=set(), examples=0)
    for r in range(start, len(layout.slices[k])):
        t0 = time.perf_counter()
        ids = layout.shard_ids(k, r, excluded)
        if ids:
            data = pool[0].subset([pool[1][i] for i in ids])
            # no per-round test evaluation: nothing reads a slice's round utility (the
            # ensemble's utility is measured by Sisa.prepare and the erase stage)
            result = train_federation(
                _slice_recipe(scfg, sigma, len(ids)), ctx.bundle, {f"shard-{k:02d}": data},
                ctx.test.subset([]),
                initial_state=current, seed=derive_seed(ctx.recipe.seed, "sisa", k, r),
                engine=ctx.engine,
            )
            current = result.final_state
            run.seen_ids |= result.seen_ids
            run.examples += epochs * len(ids)
        run.checkpoints.append(current)
        run.seconds.append(time.perf_counter() - t0)
    return run


def shard_noise_multiplier(scfg: TrainingRecipe, layout: SisaLayout, k: int) -> float | None:
    """σ of shard k's DP-SGD (record mode), fixed for all its slices and every retraining.

    A record of slice 1 is trained again with every later slice, so the shard's guarantee is
    the composition over its R slice trainings (slice r: records of slices 1..r at rate
    B/n_r); σ is calibrated to ``target_epsilon`` for that whole schedule, on the layout as
    trained. Retraining after an erasure keeps this σ (the checkpoints before the erased
    slice used it, and exactness needs the same recipe); with fewer records its steps do not
    grow. None when record-level DP is off; ``noise_multiplier`` when the config fixes σ.
    """
    dp = scfg.dp
    if dp.mode != "record" or dp.target_epsilon is None:
        return dp.noise_multiplier if dp.mode == "record" else None
    return calibrate_schedule(target_epsilon=dp.target_epsilon, delta=dp.delta or 0.0,
                              schedule=_shard_schedule(scfg, layout, k),
                              accountant=dp.accountant)


def _shard_schedule(scfg: TrainingRecipe, layout: SisaLayout, k: int) -> list[tuple[float, int]]:
    """(sample rate, steps) of each slice training of shard k, as laid out at training."""
    fed, schedule = scfg.training_federation(), []
    for r in range(len(layout.slices[k])):
        n = len(layout.shard_ids(k, r, frozenset()))
        if n:
            schedule.append(poisson_schedule(n_records=n, batch_size=min(fed.batch_size, n),
                                             local_epochs=fed.local_epochs))
    return schedule


def sisa_epsilon(ctx: UnlearningContext, layout: SisaLayout) -> float | None:
    """Record-level ε of the SISA ensemble (the max over its shards; None without record DP).
    The ensemble is a release of its own: a record's ε over the federated model AND the
    ensemble is the composition of both."""
    scfg = shard_recipe(ctx)
    dp = scfg.dp
    if dp.mode != "record" or dp.delta is None:
        return None
    return max(
        schedule_epsilon(shard_noise_multiplier(scfg, layout, k) or 0.0,
                         _shard_schedule(scfg, layout, k), delta=dp.delta,
                         accountant=dp.accountant)
        for k in range(layout.shards)
    )


def shard_recipe(ctx: UnlearningContext) -> TrainingRecipe:
    """The recipe of one slice training: one round of ``epochs_per_slice`` local epochs at
    one party (no secure aggregation), at ``sisa.learning_rate`` when given."""
    recipe = ctx.recipe.with_federation(rounds=1, local_epochs=epochs_per_slice(ctx))
    lr = ctx.ucfg.sisa.learning_rate
    if lr is not None:
        recipe = recipe.with_federation(learning_rate=lr)
        if recipe.dp.learning_rate is not None:
            recipe = recipe.with_dp(learning_rate=lr)
    return recipe.local()


def _slice_recipe(scfg: TrainingRecipe, sigma: float | None, n: int) -> TrainingRecipe:
    """One slice's recipe: the shard's fixed σ; the DP batch at most the slice's records
    (a first slice can be smaller than the DP batch: it then trains full-batch, q = 1)."""
    if sigma is None:
        return scfg
    batch = min(scfg.training_federation().batch_size, n)
    return scfg.with_dp(noise_multiplier=sigma, target_epsilon=None, batch_size=batch)


def epochs_per_slice(ctx: UnlearningContext) -> int:
    """``sisa.epochs_per_slice``, by default ⌈rounds × local epochs / slices⌉."""
    return ctx.ucfg.sisa.epochs(ctx.recipe.federation)


def _pool(ctx: UnlearningContext) -> tuple[EncodedSet, dict[str, int]]:
    every = ctx.records(frozenset(i for d in ctx.clients.values() for i in d.record_ids))
    return every, {rid: n for n, rid in enumerate(every.record_ids)}


def _slice_path(ctx: UnlearningContext, where: str, k: int, r: int) -> str:
    path = ctx.run.path("models", "sisa", where, f"shard-{k:02d}", f"slice-{r + 1:02d}",
                        "adapter.safetensors")
    return ctx.run.relative(path)


class Sisa(Unlearner):
    name = "sisa"
    exactness = "exact"
    trains = "SISA shards"
    ulira_unsupported = "sisa retrains shards, so a reference would need its own sharded training"

    def prepare(self, ctx: UnlearningContext, ledger: Mapping[str, Any]) -> dict[str, Any]:
        """Train every shard, keep every slice checkpoint (``models/sisa/train/``)."""
        if "sisa" in ledger:
            return dict(ledger["sisa"])
        layout = build_layout(ctx)
        write_json_atomic(ctx.run.path("models", "sisa", "train", "layout.json"),
                          layout.to_json())
        shards = []
        t0 = time.perf_counter()
        for k in range(layout.shards):
            run = train_shard(ctx, layout, k, excluded=frozenset())
            paths = []
            for r, ckpt in enumerate(run.checkpoints):
                paths.append(_slice_path(ctx, "train", k, r))
                save_adapter(ckpt, ctx.run.path(paths[-1]))
            shards.append({"slices": paths, "scratch_seconds": sum(run.seconds)})
        seconds = time.perf_counter() - t0
        final = UnlearnedModel(states=[self._final(ctx, s) for s in shards])
        sha = final.save(ctx.run.path("models", "sisa", "train", "adapter.safetensors"))
        metric, value = utility(ctx.bundle.model, final.states, ctx.test, ctx.recipe.task)
        return {
            "layout": "models/sisa/train/layout.json",
            "shards": shards,
            "seconds": seconds,
            "trained_sha256": sha,
            "utility": {"metric": metric, "value": value},
        }

    @staticmethod
    def _final(ctx: UnlearningContext, shard: Mapping[str, Any]) -> AdapterState:
        return load_adapter(ctx.run.path(shard["slices"][-1]))

    def start_model(self, ctx: UnlearningContext, ledger: Mapping[str, Any]) -> UnlearnedModel:
        return UnlearnedModel(states=[self._final(ctx, s) for s in ledger["sisa"]["shards"]])

    def latest_model(self, ctx: UnlearningContext, ledger: Mapping[str, Any],
                     entry: Mapping[str, Any]) -> UnlearnedModel:
        """The shards as the ledger holds them now (each request retrains some in place)."""
        return self.start_model(ctx, ledger)

    def estimate_training(self, sizes: Mapping[str, int], fed: FederationConfig,
                          requests: Sequence[ErasureRequest]) -> tuple[int, int]:
        """Every shard trained once (slice r on slices 1..r), plus per request the affected
        shards retrained in full (and once more when ``sisa.verify`` checks exactness)."""
        conf = self.cfg.sisa
        epochs = conf.epochs(fed)
        total = sum(sizes.values())
        shard_sizes = (list(sizes.values()) if conf.shard_by == "clients" else
                       even_split(total, conf.shards))

        def shard_steps(n: int) -> int:
            steps = 0
            for r in range(1, conf.slices + 1):
                n_r = math.ceil(n * r / conf.slices)
                if n_r:
                    steps += epochs * math.ceil(n_r / min(fed.batch_size, n_r))
            return steps

        train = sum(shard_steps(n) for n in shard_sizes)
        largest = shard_steps(max(shard_sizes, default=0))
        retrain = 0
        for req in requests:
            if req.kind == "client" and conf.shard_by == "records":
                touched = len(shard_sizes)
            else:
                touched = min(len(req.ids), len(shard_sizes))
            retrain += touched * largest * (2 if conf.verify else 1)
        return conf.shards, train + retrain

    def unlearn(
        self, ctx: UnlearningContext, target: ErasureTarget, ledger: Mapping[str, Any]
    ) -> MethodOutcome:
        sisa = ledger["sisa"]
        layout = SisaLayout.from_json(json.loads(ctx.run.path(sisa["layout"]).read_text()))
        shards = [dict(s, slices=list(s["slices"])) for s in sisa["shards"]]
        affected = layout.first_slices(target.forget)
        states = list(target.start.states)
        outcome = MethodOutcome(model=UnlearnedModel(states=states), examples_processed=0)
        t0 = time.perf_counter()
        for k, r in affected.items():
            before = None if r == 0 else load_adapter(ctx.run.path(shards[k]["slices"][r - 1]))
            run = train_shard(ctx, layout, k, excluded=target.erased, start=r, state=before)
            for offset, ckpt in enumerate(run.checkpoints):
                path = _slice_path(ctx, target.request_id, k, r + offset)
                save_adapter(ckpt, ctx.run.path(path))
                shards[k]["slices"][r + offset] = path
                outcome.files.append(ctx.run.path(path))
            states[k] = run.checkpoints[-1]
            outcome.trained_ids |= run.seen_ids
            outcome.examples_processed += run.examples
        outcome.seconds = time.perf_counter() - t0
        where = ", ".join(f"shard {k} from slice {r + 1}" for k, r in sorted(affected.items()))
        outcome.stopping_reason = f"retrained {where} of {layout.shards} shard(s)"
        outcome.retained_epsilon = sisa_epsilon(ctx, layout)
        if outcome.retained_epsilon is not None and ctx.dp_guarantee is not None:
            outcome.flags.append(
                f"the SISA ensemble is a second release trained on the same records (ε = "
                f"{outcome.retained_epsilon:.3g} on its own): over both models a record's ε "
                f"composes, up to {outcome.retained_epsilon + ctx.dp_guarantee[0]:.3g}")
        self._oracle(ctx, layout, target, affected, shards, outcome)
        outcome.model = UnlearnedModel(states=states)
        outcome.ledger = {"sisa": dict(sisa, shards=shards)}
        return outcome

    def _oracle(
        self,
        ctx: UnlearningContext,
        layout: SisaLayout,
        target: ErasureTarget,
        affected: Mapping[int, int],
        shards: list[dict[str, Any]],
        outcome: MethodOutcome,
    ) -> None:
        """SISA retrained without the data: affected shards from scratch, checked for identity."""
        recorded = sum(s["scratch_seconds"] for k, s in enumerate(shards) if k not in affected)
        if not self.cfg.sisa.verify:
            outcome.oracle_seconds = recorded + sum(shards[k]["scratch_seconds"] for k in affected)
            outcome.flags.append("oracle time from the shards' recorded training times "
                                 "(sisa.verify off: exactness not re-checked)")
            return
        scratch_states = list(outcome.model.states)
        mismatched = []
        measured = 0.0
        for k in affected:
            run = train_shard(ctx, layout, k, excluded=target.erased)
            measured += sum(run.seconds)
            shards[k]["scratch_seconds"] = sum(run.seconds)
            scratch_states[k] = run.checkpoints[-1]
            if UnlearnedModel([run.checkpoints[-1]]).sha256 != UnlearnedModel(
                [outcome.model.states[k]]
            ).sha256:
                mismatched.append(k)
        outcome.oracle_seconds = measured + recorded
        outcome.oracle_model = UnlearnedModel(states=scratch_states)
        if mismatched:
            outcome.exactness = "approximate"
            outcome.flags.append(f"EXACTNESS CHECK FAILED: shard(s) {mismatched} differ from "
                                 "retraining them from scratch without the erased records")
        else:
            outcome.flags.append(f"exactness verified: shard(s) {sorted(affected)} are "
                                 "byte-identical to retraining from scratch without the "
                                 "erased records; other shards unchanged")


register_unlearner(Sisa.name, Sisa)
