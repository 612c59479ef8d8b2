"""``privaudit erase RUN --request REQUEST.yaml`` (or ``--request-stream REQUESTS.jsonl``):
serve requests on a finished run.

The run is opened from its own files: ``config.yaml`` (the resolved config), the data derived
again from it (deterministic), the base model and LoRA initialisation built again, the final
global adapter checked against ``report.json``, and ``unlearning/ledger.json`` (requests
served before). Requests are validated before any model is built. The unlearned models, their
lineage and results are added to the run, and the report is written again (verdict,
renderings, manifest, and the signature when a key is given).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.audit.session import RunSession, prepare_run_data
from privaudit.audit.stages.dp_audit import plant_dp_audit
from privaudit.audit.stages.erase import (
    check_requests,
    erase_inputs_sha256,
    record_erase_stage,
    run_erase,
    unlearning_context,
)
from privaudit.audit.stages.references import references_needed, references_stage
from privaudit.core.errors import ConfigError, VerificationError
from privaudit.core.progress import PlainReporter, Reporter
from privaudit.core.rundir import RunDir
from privaudit.core.safe_yaml import load_yaml_file
from privaudit.mechanisms.data.splits import PreparedData
from privaudit.mechanisms.federated.privacy import PrivacyOutcome
from privaudit.mechanisms.models import load_adapter, state_sha256
from privaudit.reports.schema import Report, UnlearningResult
from privaudit.unlearning import ledger as ledgers
from privaudit.unlearning.base import UnlearningContext, available_unlearners, get_unlearner
from privaudit.unlearning.requests import load_request_stream, load_requests


def _require_finished(run: RunDir) -> None:
    if not run.report_json.is_file() or not run.config.is_file():
        raise ConfigError(f"RUN: {run.root} is not a finished run (no report.json/config.yaml)")


def _read(run: RunDir) -> tuple[AuditConfig, Report]:
    _require_finished(run)
    cfg = config_from_dict(load_yaml_file(run.config, what=f"RUN: {run.config}"))
    return cfg, Report.from_file(run.report_json)


def _open(run: RunDir, read: tuple[AuditConfig, Report] | None = None,
          ) -> tuple[AuditConfig, PreparedData, Report]:
    cfg, report = read or _read(run)
    data = prepare_run_data(cfg)
    return cfg, data, report


def default_methods(cfg: AuditConfig, ledger: Mapping[str, Any]) -> list[str]:
    """The methods a request on a finished run is served with when none are named: the
    run's ``unlearning.methods``, else every method that needs nothing trained ahead (or
    whose training the run did, per its ledger)."""
    return list(cfg.unlearning.methods or [
        m for m in available_unlearners() if not get_unlearner(m).trains or m in ledger])


def open_run_context(
    run: RunDir, *, engine: str = "inprocess", opened: tuple[AuditConfig, PreparedData, Report]
    | None = None, methods: Sequence[str] | None = None, reporter: Reporter | None = None,
) -> tuple[UnlearningContext, Report]:
    """The unlearning context of a finished run, rebuilt from its files; its references are
    the ones serving ``methods`` (default: the run's) needs, loaded from the run's cache (or
    trained, when the run never needed them)."""
    cfg, data, report = opened or _open(run)
    session = RunSession.build(cfg, run, data)
    bundle, initial, encode = session.bundle, session.initial_state, session.encode
    final = run.global_adapter(cfg.federation.rounds)
    if not final.is_file():
        raise VerificationError(f"{run.relative(final)}: missing; report.json names it as the "
                                "run's final adapter (run.final_adapter_sha256)")
    trained = load_adapter(final)
    if state_sha256(trained) != report.run.final_adapter_sha256:
        raise VerificationError(
            f"{run.relative(final)}: sha256 does not match report.json run.final_adapter_sha256"
        )
    plan = plant_dp_audit(cfg, data)  # the same canaries the run trained with (its seed)
    trained_on = plan.with_clients(data.clients) if plan is not None else data.clients
    ctx = unlearning_context(
        cfg, bundle=bundle, data=data,
        clients={c: encode(recs) for c, recs in trained_on.items()},
        audit_canary_ids=frozenset(r.id for r in plan.canaries) if plan else frozenset(),
        test=encode(data.test), nonmembers=encode(data.nonmembers), initial_state=initial,
        trained_state=trained, run=run, engine=engine, encode=encode,
        dp_guarantee=dp_guarantee_of(run), privacy=privacy_of(run),
    )
    chosen = default_methods(cfg, ledgers.read_ledger(run)) if methods is None else methods
    ctx.references = references_stage(
        cfg, count=references_needed(cfg, chosen, serving=True), bundle=bundle, data=data,
        encode=encode, run=run, initial_state=initial, engine=engine,
        reporter=reporter or PlainReporter(quiet=True),
        target_noise=ctx.privacy.noise_multipliers if ctx.privacy is not None else None,
    )
    return ctx, report


def privacy_of(run: RunDir) -> PrivacyOutcome | None:
    """The training run's noise and accountants, as it persisted them (None if absent)."""
    summary = run.path("models", "global", "training.json")
    if not summary.is_file():
        return None
    privacy = json.loads(summary.read_text(encoding="utf-8")).get("privacy", {})
    return PrivacyOutcome.from_dict(privacy)


def dp_guarantee_of(run: RunDir) -> tuple[float, float] | None:
    """(ε, δ) of the training run, from the accountants it persisted (None without DP)."""
    return ledgers.dp_guarantee(privacy_of(run))


def erase_finished_run(
    run_dir: Path,
    request_file: Path,
    *,
    methods: Sequence[str] | None = None,
    reporter: Reporter,
    sign_key: Path | None = None,
    engine: str | None = None,
    stream: bool = False,
) -> list[UnlearningResult]:
    """Serve REQUEST.yaml (``stream``: REQUESTS.jsonl, one request per line) on the finished
    run ``run_dir``, in order; returns the new results. Training
    runs on the run's own engine unless ``engine`` names another. The run is locked against
    other writers, and must match its seal (a malformed config.yaml or report.json is named
    first, exit 2), before anything else is read or written."""
    from privaudit.core.runguard import require_intact
    from privaudit.core.runlock import run_dir_lock

    run = RunDir(Path(run_dir))
    _require_finished(run)
    with run_dir_lock(run.root, option="RUN"):
        read = _read(run)
        require_intact(run.root, command="erase")
        return _erase(run, read, request_file, methods=methods, reporter=reporter,
                      sign_key=sign_key, engine=engine, stream=stream)


def _erase(
    run: RunDir, read: tuple[AuditConfig, Report], request_file: Path, *,
    methods: Sequence[str] | None, reporter: Reporter, sign_key: Path | None, engine: str | None,
    stream: bool = False,
) -> list[UnlearningResult]:
    from privaudit.core.provenance import SIGNATURE_NAME
    from privaudit.reports.render import write_report

    opened = _open(run, read)
    cfg = opened[0]
    key = sign_key or cfg.report.sign_key
    if run.path(SIGNATURE_NAME).is_file() and key is None:
        raise ConfigError(f"{run.root} is signed ({SIGNATURE_NAME}); serving a request changes "
                          "files the signature covers: pass --sign KEY to re-sign")
    requests = load_request_stream(request_file) if stream else load_requests(request_file)
    option = "--request-stream" if stream else "--request"
    ledger = ledgers.read_ledger(run)
    check_requests(cfg.secure_aggregation, opened[1], requests,
                   erased=ledgers.erased_so_far(ledger), where=f"{option} {request_file.name}")
    chosen = list(methods or default_methods(cfg, ledger))
    for m in chosen:
        trains = get_unlearner(m, where="--methods" if methods else "unlearning.methods").trains
        if trains and m not in ledger:  # what it trains ahead is made when the run trains
            raise ConfigError(f"--methods: {m} needs a run trained in {m.upper()} mode ('{m}' "
                              f"in unlearning.methods when it was trained); this run has no "
                              f"{trains}")
    ctx, report = open_run_context(run, engine=engine or opened[2].run.engine, opened=opened,
                                   methods=chosen, reporter=reporter)
    results, seconds = run_erase(ctx, requests, chosen, reporter, oracle=cfg.unlearning.oracle)
    # the erase stage's manifest now covers the served request too: `run --resume` keeps it
    record_erase_stage(run, erase_inputs_sha256(cfg, ctx.trained_state, opened[2].run.engine),
                       cfg)
    report.unlearning = [*report.unlearning, *results]
    t0 = time.perf_counter()
    _attack_new_models(ctx, report, results, reporter)
    seconds["attack"] = time.perf_counter() - t0
    for name, secs in seconds.items():
        report.run.seconds[name] = report.run.seconds.get(name, 0.0) + secs
    report.artifacts = []  # listed again: the request added models and rewrote the ledger
    write_report(report, run, formats=cfg.report.formats, sign_key=key)
    return results


def _attack_new_models(
    ctx: UnlearningContext, report: Report, results: Sequence[UnlearningResult],
    reporter: Reporter,
) -> None:
    """The battery against the models this request produced (every model a run produces is
    attacked): references and signals come from the run's caches."""
    from privaudit.attacks.battery import prepare_attacks
    from privaudit.audit.stages.attack import FEDERATED, attacked_models, run_attack_stage

    setup = prepare_attacks(
        ctx.attacks, model=ctx.model_cfg, seed=ctx.recipe.seed, bundle=ctx.bundle,
        data=ctx.data, encode=ctx.encode, run=ctx.run, initial_state=ctx.initial_state,
        references=ctx.references,
    )
    models = [m for m in attacked_models(ctx.run, ctx.trained_state, results)
              if m.name != FEDERATED]
    stage = run_attack_stage(setup, model=ctx.bundle.model, models=models, reporter=reporter,
                             check_split=report.blind_baseline is None)  # the split is the run's
    report.attacks = [*report.attacks, *stage.attacks]
    report.blind_baseline = report.blind_baseline or stage.blind
    if stage.exposure is not None and report.exposure is not None:
        report.exposure.per_model = {**report.exposure.per_model, **stage.exposure.per_model}
