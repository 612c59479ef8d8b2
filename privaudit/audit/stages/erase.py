"""The erase stage: serve erasure requests with every configured method and the oracle.

Requests are served in order, each on top of the ones before it: after request k the records
of requests 1..k are erased, the oracle retrains without all of them, and a method that
chains (gradient methods, fine-tuning, SISA) starts from its own model for request k−1. For
each request × method the stage writes ``models/<method>/<request-id>/adapter.safetensors``
(the oracle's: ``models/oracle/<request-id>/``), an :class:`UnlearningResult`, and the
request's lineage (``unlearning/<request-id>/lineage.json``): which models were trained on
the erased records, which were produced after the request, and — checked here, a failure is
an internal error — that no training step of any method touched an erased record.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privaudit.attacks.references import ReferenceSet
from privaudit.audit.config import AuditConfig
from privaudit.audit.stage_inputs import ERASE, recompute_reason, section_hashes, sections_sha256
from privaudit.core.errors import ConfigError, InternalError
from privaudit.core.hashing import set_ids_sha256
from privaudit.core.progress import Reporter
from privaudit.core.rundir import RunDir, write_json_atomic
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.data.splits import PreparedData
from privaudit.mechanisms.federated.privacy import PrivacyOutcome
from privaudit.mechanisms.models import (
    AdapterState,
    ModelBundle,
    set_adapter_state,
    state_sha256,
)
from privaudit.mechanisms.secagg.config import SecureAggregationConfig
from privaudit.mechanisms.tasks import EncodedSet
from privaudit.reports.schema import ForgetEvidence, RetainEvidence, UnlearningResult
from privaudit.unlearning import ledger as ledgers
from privaudit.unlearning.base import (
    ErasureTarget,
    MethodOutcome,
    UnlearnedModel,
    Unlearner,
    UnlearningContext,
    available_unlearners,
    derive_seed,
    get_unlearner,
    oracle_name,
)
from privaudit.unlearning.evaluate import mean_loss
from privaudit.unlearning.paired import match_nonmembers
from privaudit.unlearning.requests import ErasureRequest, ResolvedRequest, resolve_requests
from privaudit.unlearning.sequence import sequence_point
from privaudit.unlearning.verify import Verifier, rank_results


def check_requests(
    he: SecureAggregationConfig, data: PreparedData, requests: Sequence[ErasureRequest],
    *, erased: Mapping[str, str] | None = None, where: str = "unlearning.requests",
) -> list[ResolvedRequest]:
    """Validate erasure requests against the data before any training: ids, and that the
    federation left after them can still run (secure aggregation's minimum of clients)."""
    resolved = resolve_requests(requests, data, erased=erased, where=where)
    gone = {c for r in resolved for c in r.whole_clients}
    gone |= {c for c, recs in data.clients.items() if {x.id for x in recs} <= set(erased or {})}
    left = len(data.clients) - len(gone)
    if he.enabled and resolved and left < he.min_clients:
        raise ConfigError(
            f"{where}: the requests leave {left} client(s) but secure_aggregation.min_clients "
            f"is {he.min_clients}, so the oracle could not be retrained"
        )
    return resolved


def unlearning_context(cfg: AuditConfig, **fields: Any) -> UnlearningContext:
    """The unlearning context of a run of ``cfg``: the config sections unlearning reads
    (training recipe, model, data, attacks, unlearning) and ``fields`` (the run's state)."""
    return UnlearningContext(recipe=cfg.recipe, model_cfg=cfg.model, data_cfg=cfg.data,
                             attacks=cfg.attacks, ucfg=cfg.unlearning, **fields)


def make_target(
    ctx: UnlearningContext,
    ledger: Mapping[str, Any],
    name: str,
    unlearner: Unlearner,
    req: ResolvedRequest,
    reference: float,
) -> ErasureTarget:
    """The request as method ``name`` serves it, given what was served before (the ledger):
    a chained method starts from its latest model and forgets what that model still holds;
    the others start from the trained model and forget everything erased so far."""
    erased = frozenset(ledgers.erased_so_far(ledger)) | frozenset(req.record_ids)
    entry = ledger["methods"].get(name)
    if unlearner.chained and entry is not None:
        start = unlearner.latest_model(ctx, ledger, entry)
    else:
        start = unlearner.start_model(ctx, ledger)
    covered = ledgers.covered_ids(ledger, name) if unlearner.chained else set()
    return ErasureTarget(
        request=req, forget=erased - covered, erased=erased, start=start,
        seed=derive_seed(ctx.recipe.seed, name, req.id), reference_loss=reference,
    )


class EraseStage:
    """Serves requests with ``methods`` (and the oracle, first) on one run."""

    def __init__(self, ctx: UnlearningContext, methods: Sequence[str], reporter: Reporter,
                 *, oracle: bool = True) -> None:
        self.ctx = ctx
        yardstick = oracle_name()
        self.unlearners: dict[str, Unlearner] = {
            m: get_unlearner(m)(ctx.ucfg) for m in dict.fromkeys(methods) if m != yardstick
        }
        if oracle:
            self.unlearners = {yardstick: get_unlearner(yardstick)(ctx.ucfg)} | self.unlearners
        self.reporter = reporter
        self.ledger = ledgers.read_ledger(ctx.run)
        self.served = ledgers.read_results(ctx.run)  # every result so far, kept in step
        self.seconds: dict[str, float] = {}
        self.verifier = Verifier(ctx)

    def prepare(self) -> None:
        """Training-time work of the methods (SISA's shards), once per run."""
        for name, unlearner in self.unlearners.items():
            if name in self.ledger:
                continue
            t0 = time.perf_counter()
            update = unlearner.prepare(self.ctx, self.ledger)
            if update:
                self.seconds[f"{name}_train"] = time.perf_counter() - t0
                self.ledger[name] = update
        ledgers.write_ledger(self.ctx.run, self.ledger)

    def serve(self, requests: Sequence[ErasureRequest]) -> list[UnlearningResult]:
        ctx = self.ctx
        resolved = check_requests(ctx.recipe.secure_aggregation, ctx.data, requests,
                                  erased=ledgers.erased_so_far(self.ledger))
        results: list[UnlearningResult] = []
        self.verifier.prepare(list(self.unlearners))  # U-LiRA's references, before the bar
        with self.reporter.stage("erase", len(resolved) * len(self.unlearners)) as progress:
            for req in resolved:
                served = self._serve_one(req, progress.advance)
                ledgers.append_results(ctx.run, served)
                self.served += served
                results += served
        return results

    def stopping_reference(self, forget_set: EncodedSet) -> float:
        """The ascent methods' stopping target for a request's ``forget_set``: the trained
        model's mean loss on the held-out records matched to it (its labels and length bands; all of
        them when too few match, :func:`~privaudit.unlearning.paired.match_nonmembers`) — a
        hard topic's forget records are compared with records as hard, not the average."""
        ctx = self.ctx
        match = match_nonmembers(forget_set, ctx.nonmembers)
        return mean_loss(ctx.bundle.model, [ctx.trained_state],
                         ctx.nonmembers.subset(list(match.indices)), ctx.recipe.task)

    def _serve_one(self, req: ResolvedRequest,
                   advance: Callable[[str], None]) -> list[UnlearningResult]:
        ctx, ledger = self.ctx, self.ledger
        executed_at = datetime.now(UTC).isoformat()
        before_request = ledgers.trained_on(ctx.run, req, ledger)
        erased = frozenset(ledgers.erased_so_far(ledger)) | frozenset(req.record_ids)
        forget_set = ctx.records(frozenset(req.record_ids))
        reference = self.stopping_reference(forget_set)
        results: list[UnlearningResult] = []
        produced: list[dict[str, Any]] = []
        oracle: tuple[float, UnlearnedModel] | None = None
        models: list[UnlearnedModel] = []
        oracle_of: dict[str, UnlearnedModel | None] = {}
        for name, unlearner in self.unlearners.items():
            target = make_target(ctx, ledger, name, unlearner, req, reference)
            t0 = time.perf_counter()
            outcome = unlearner.unlearn(ctx, target, ledger)
            seconds = outcome.seconds if outcome.seconds is not None else (
                time.perf_counter() - t0)
            touched = outcome.trained_ids & erased
            if touched:
                raise InternalError(f"{name} trained on {len(touched)} erased record(s) after "
                                    f"request {req.id}")
            if unlearner.is_oracle:
                oracle = (seconds, outcome.model)
            path = ctx.run.path("models", name, req.id, "adapter.safetensors")
            sha_after = outcome.model.save(path)
            judge = (outcome.oracle_seconds, outcome.oracle_model) \
                if outcome.oracle_seconds is not None else oracle
            models.append(outcome.model)
            oracle_of[name] = judge[1] if judge else None
            results.append(self.verifier.verify(self._result(
                req, name, unlearner, outcome, target, forget_set, seconds=seconds,
                oracle=judge, path=ctx.run.relative(path), sha_after=sha_after,
                executed_at=executed_at,
            ), model=outcome.model, oracle=judge[1] if judge else None, forget=forget_set,
                erased=erased, unlearner=unlearner, request=req))
            produced.append({
                "method": name, "path": ctx.run.relative(path), "sha256": sha_after,
                "files": [ctx.run.relative(p) for p in outcome.files],
                "trained_records": len(outcome.trained_ids),
                "trained_ids_sha256": set_ids_sha256(outcome.trained_ids),
                "erased_records_trained_on": len(touched),
                "erased_records_used_for_ascent": len(outcome.ascended_ids & erased),
            })
            # the new model holds none of the records erased so far
            ledger["methods"][name] = {
                "model": ctx.run.relative(path),
                "covered": [*(r["id"] for r in ledger["requests"]), req.id],
            }
            ledger.update(outcome.ledger)
            advance(f"{req.id}: {name} {seconds:.1f} s")
        for r, m in zip(results, models, strict=True):
            r.sequence = sequence_point(ctx, r, model=m, oracle=oracle_of[r.method],
                                        earlier=ledger["requests"], before=self.served,
                                        losses=self.verifier.losses)
        rank_results(results)
        lineage_path = ctx.run.path("unlearning", req.id, "lineage.json")
        write_json_atomic(lineage_path, {
            "request_id": req.id, "kind": req.kind, "n_records": len(req.record_ids),
            "record_ids_sha256": req.ids_sha256, "clients": list(req.clients),
            "received_at": _iso(req), "executed_at": executed_at,
            "trained_on_erased_data": before_request,
            "produced_after_request": produced,
        })
        for r in results:
            r.lineage_path = ctx.run.relative(lineage_path)
        ledger["requests"].append({
            "id": req.id, "kind": req.kind, "record_ids": list(req.record_ids),
            "ids_sha256": req.ids_sha256, "executed_at": executed_at,
        })
        ledger["produced"] = [*ledger.get("produced", []), *(p["path"] for p in produced)]
        ledgers.write_ledger(ctx.run, ledger)
        return results

    def _result(
        self, req: ResolvedRequest, name: str, unlearner: Unlearner, outcome: MethodOutcome,
        target: ErasureTarget, forget_set: EncodedSet, *, seconds: float,
        oracle: tuple[float | None, UnlearnedModel | None] | None, path: str,
        sha_after: str, executed_at: str,
    ) -> UnlearningResult:
        ctx = self.ctx
        model, task = ctx.bundle.model, ctx.recipe.task
        metric, value = self.verifier.model_utility(outcome.model)
        oracle_seconds, oracle_model = oracle if oracle is not None else (None, None)
        return UnlearningResult(
            request_id=req.id,
            kind=req.kind,
            method=name,
            exactness=outcome.exactness or unlearner.exactness,
            seconds=seconds,
            oracle_seconds=oracle_seconds,
            speedup_vs_oracle=oracle_seconds / seconds if oracle_seconds and seconds else None,
            examples_processed=outcome.examples_processed,
            received_at=_iso(req),
            executed_at=executed_at,
            request_ids_sha256=req.ids_sha256,
            model_sha256_before=target.start.sha256,
            model_sha256_after=sha_after,
            model_path=path,
            forget=ForgetEvidence(
                n_records=len(forget_set),
                mean_loss_before=mean_loss(model, target.start.states, forget_set, task),
                mean_loss_after=mean_loss(model, outcome.model.states, forget_set, task),
                mean_loss_oracle=mean_loss(model, oracle_model.states, forget_set, task)
                if oracle_model is not None else None,
                nonmember_mean_loss=target.reference_loss,
            ),
            retain=RetainEvidence(utility_metric=metric, utility=value),  # type: ignore[arg-type]
            stopping_reason=outcome.stopping_reason,
            flags=list(outcome.flags),
            dp_bound=ledgers.dp_bound(
                ctx.dp_guarantee, req, client_level=ctx.recipe.dp.mode == "client",
                privacy=ctx.privacy, holders={
                    c: sum(r in req.record_ids for r in d.record_ids)
                    for c, d in ctx.clients.items()}),
            retained_epsilon=outcome.retained_epsilon,
        )


def _iso(req: ResolvedRequest) -> str | None:
    received = req.request.received_at
    return received.isoformat() if received is not None else None


def run_erase(
    ctx: UnlearningContext,
    requests: Sequence[ErasureRequest],
    methods: Sequence[str],
    reporter: Reporter,
    *,
    oracle: bool = True,
) -> tuple[list[UnlearningResult], dict[str, float]]:
    """Prepare the methods (SISA training) and serve ``requests``; results and timings
    (``erase`` counts serving only: the methods' preparation is timed on its own, e.g.
    ``sisa_train``). The model is left holding the trained adapter."""
    stage = EraseStage(ctx, methods, reporter, oracle=oracle)
    t0 = time.perf_counter()
    try:
        stage.prepare()
        t0 = time.perf_counter()
        results = stage.serve(requests) if requests else []
    finally:
        set_adapter_state(ctx.bundle.model, ctx.trained_state)
    stage.seconds["erase"] = time.perf_counter() - t0
    if stage.verifier.probe_seconds:  # part of "erase": the robustness probes' share
        stage.seconds["erase_probes"] = stage.verifier.probe_seconds
    return results, stage.seconds


def _stage_outputs(run: RunDir) -> list[Path]:
    """Every file the erase stage owns: unlearned models, SISA shards, lineage, ledger."""
    roots = [run.path("unlearning")]
    roots += [run.path("models", name) for name in [oracle_name(), *available_unlearners()]]
    return sorted(f for root in roots if root.is_dir() for f in root.rglob("*") if f.is_file())


def erase_inputs_sha256(cfg: AuditConfig, trained_state: AdapterState, engine: str) -> str:
    """What the erase stage depends on (its config sections, trained adapter, engine),
    hashed."""
    inputs = json.dumps({"config": sections_sha256(cfg, ERASE),
                         "trained": state_sha256(trained_state), "engine": engine},
                        sort_keys=True)
    return hashlib.sha256(inputs.encode()).hexdigest()


def record_erase_stage(run: RunDir, inputs_sha256: str, cfg: AuditConfig) -> None:
    """(Re)write the erase stage's manifest over every unlearning file now in the run."""
    run.complete_stage("erase", inputs_sha256=inputs_sha256, outputs=_stage_outputs(run),
                       sections=section_hashes(cfg, ERASE))


def erase_stage(
    cfg: AuditConfig,
    *,
    bundle: ModelBundle,
    data: PreparedData,
    clients: dict[str, EncodedSet],
    test: EncodedSet,
    encode: Callable[[list[Record]], EncodedSet],
    initial_state: AdapterState,
    trained_state: AdapterState,
    run: RunDir,
    engine: str,
    reporter: Reporter,
    resume: bool = False,
    dp_guarantee: tuple[float, float] | None = None,
    privacy: PrivacyOutcome | None = None,
    audit_canary_ids: frozenset[str] = frozenset(),
    references: ReferenceSet | None = None,
) -> tuple[list[UnlearningResult], dict[str, float]]:
    """The pipeline's erase stage (after train, before attack): SISA training when 'sisa' is
    a method, then ``unlearning.requests``. On ``--resume`` it is skipped when its inputs
    (config, trained adapter, engine) and its outputs are unchanged."""
    u = cfg.unlearning
    inputs_sha = erase_inputs_sha256(cfg, trained_state, engine)
    # requests served later by `privaudit erase` are in the manifest too: resume keeps them
    if resume and run.stage_is_current("erase", inputs_sha):
        reporter.info("[erase] resumed: unlearned models and manifest unchanged")
        return ledgers.read_results(run), {}
    why = recompute_reason(run, "erase", cfg, ERASE) if resume else None
    if why:
        reporter.info(f"[erase] recomputed: {why}")
    if not u.requests and not any(get_unlearner(m).trains for m in u.methods):
        return [], {}
    ledgers.reset(run)
    ctx = unlearning_context(
        cfg, bundle=bundle, data=data, clients=clients, test=test,
        nonmembers=encode(data.nonmembers), initial_state=initial_state,
        trained_state=trained_state, run=run, engine=engine, encode=encode,
        dp_guarantee=dp_guarantee, privacy=privacy, audit_canary_ids=audit_canary_ids,
        references=references,
    )
    results, seconds = run_erase(ctx, u.requests, u.methods, reporter, oracle=u.oracle)
    if not results:
        ledgers.append_results(run, [])
    record_erase_stage(run, inputs_sha, cfg)
    return results, seconds
