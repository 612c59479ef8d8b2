"""What a run is: prepare → train → attack → report.

Each stage writes its outputs into the run directory (DESIGN.md) and a stage manifest; with
``resume=True`` a stage whose inputs are unchanged and whose outputs are intact is loaded
from disk instead of recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from privaudit.attacks.battery import run_battery
from privaudit.audit.config import AuditConfig
from privaudit.audit.progress import PlainReporter, Reporter
from privaudit.audit.rundir import RunDir, write_json_atomic, write_text_atomic
from privaudit.mechanisms.data import PreparedData, prepare_data, records_sha256
from privaudit.mechanisms.data.records import ids_sha256
from privaudit.mechanisms.federated import get_engine
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.engine import RoundRecord
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.models import (
    AdapterState,
    ModelBundle,
    adapter_state,
    apply_lora,
    base_state,
    load_adapter,
    load_base_model,
    load_tokenizer,
    save_adapter,
    set_adapter_state,
    state_sha256,
)
from privaudit.mechanisms.pretrain import load_or_pretrain
from privaudit.mechanisms.tasks import EncodedSet, encode_records, evaluate_utility
from privaudit.reports.build import build_report
from privaudit.reports.render import write_report
from privaudit.reports.schema import Report, RoundUtility


@dataclass
class TrainedModel:
    state: AdapterState
    sha256: str
    rounds: list[RoundUtility]


@dataclass
class AuditOutcome:
    run_dir: Path
    report: Report
    seconds: dict[str, float] = field(default_factory=dict)


def _write_data_roles(run: RunDir, data: PreparedData) -> None:
    roles = {name: [r.id for r in recs] for name, recs in data.clients.items()}
    roles |= {
        "test": [r.id for r in data.test],
        "public": [r.id for r in data.public],
        "audit-members": [r.id for r in data.members],
        "audit-nonmembers": [r.id for r in data.nonmembers],
        "excluded": [r.id for r in data.excluded],
    }
    for name, ids in roles.items():
        write_json_atomic(run.path("data", f"{name}.json"), {"ids": ids, "sha256": ids_sha256(ids)})


def build_model(cfg: AuditConfig, data: PreparedData, run: RunDir) -> ModelBundle:
    """Tokenizer, base model (pretrained on the public split when built), LoRA."""
    tokenizer = load_tokenizer(cfg.model)
    num_labels = len(data.labels) if data.labels else None
    base = load_base_model(cfg.model, tokenizer=tokenizer, num_labels=num_labels, seed=cfg.seed)
    if cfg.model.task == "causal-lm" and cfg.model.base == "tiny":
        public = encode_records(
            data.public, tokenizer, labels=None, max_length=cfg.model.max_length
        )
        base = load_or_pretrain(
            base,
            public,
            cfg.model,
            seed=cfg.seed,
            cache_root=run.path("models", "base"),
            public_sha256=records_sha256(data.public),
        )
    base_sha = state_sha256(base.state_dict())
    model, adapter_cfg_sha = apply_lora(cfg.model, base, seed=cfg.seed)
    return ModelBundle(
        model=model,
        tokenizer=tokenizer,
        task=cfg.model.task,
        base_sha256=base_sha,
        adapter_config_sha256=adapter_cfg_sha,
    )


def _train(
    cfg: AuditConfig,
    bundle: ModelBundle,
    clients: dict[str, EncodedSet],
    test: EncodedSet,
    run: RunDir,
    engine: str,
    reporter: Reporter,
    resume: bool,
) -> TrainedModel:
    inputs = json.dumps(
        {
            "config": cfg.sha256(),
            "engine": engine,
            "base": bundle.base_sha256,
            "clients": {c: ids_sha256(list(d.record_ids)) for c, d in clients.items()},
        },
        sort_keys=True,
    )
    inputs_sha = hashlib.sha256(inputs.encode()).hexdigest()
    summary_path = run.path("models", "global", "training.json")
    final_path = run.global_adapter(cfg.federation.rounds)
    if resume and run.stage_is_current("train", inputs_sha):
        state = load_adapter(final_path)
        rounds = [RoundUtility(**r) for r in json.loads(summary_path.read_text())["rounds"]]
        reporter.info("[train] resumed: checkpoints and manifest unchanged")
        return TrainedModel(state=state, sha256=state_sha256(state), rounds=rounds)

    outputs: list[Path] = []
    base_before = state_sha256(base_state(bundle.model))
    with reporter.stage("train", cfg.federation.rounds) as progress:

        def on_round(
            r: int, state: AdapterState, updates: list[ClientUpdate], rec: RoundRecord
        ) -> None:
            outputs.append(run.global_adapter(r))
            save_adapter(state, run.global_adapter(r))
            for u in updates:
                outputs.append(run.client_update(r, u.client_id))
                save_adapter(u.delta, run.client_update(r, u.client_id))
            progress.advance(f"round {r}: {rec.utility_metric} {rec.utility:.3f}")

        result = train_federation(
            cfg,
            bundle,
            clients,
            test,
            initial_state=adapter_state(bundle.model),
            seed=cfg.seed,
            engine=engine,
            on_round=on_round,
        )
    if state_sha256(base_state(bundle.model)) != base_before:
        raise RuntimeError("base model weights changed during LoRA training")
    rounds = [
        RoundUtility(
            round=r.round,
            value=r.utility,
            seconds=r.seconds,
            global_sha256=r.global_sha256,
            train_loss={c: m["train_loss"] for c, m in r.client_metrics.items()},
        )
        for r in result.rounds
    ]
    write_json_atomic(
        summary_path,
        {"rounds": [r.model_dump() for r in rounds], "final_sha256": result.final_sha256},
    )
    run.complete_stage("train", inputs_sha256=inputs_sha, outputs=[*outputs, summary_path])
    return TrainedModel(state=result.final_state, sha256=result.final_sha256, rounds=rounds)


def run_audit(
    cfg: AuditConfig,
    out: Path,
    *,
    resume: bool = False,
    engine: str = "inprocess",
    reporter: Reporter | None = None,
) -> AuditOutcome:
    """Run the whole audit into ``out`` and return the report."""
    if reporter is None:
        reporter = PlainReporter()
    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    get_engine(engine)  # an unknown engine fails before any work
    run = RunDir(out).create()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    write_text_atomic(run.config, cfg.to_yaml())
    data = prepare_data(cfg.data, task=cfg.model.task, k=cfg.federation.clients, seed=cfg.seed)
    _write_data_roles(run, data)
    bundle = build_model(cfg, data, run)

    def encode(records: list) -> EncodedSet:  # type: ignore[type-arg]
        return encode_records(
            records, bundle.tokenizer, labels=data.labels, max_length=cfg.model.max_length
        )

    clients = {c: encode(recs) for c, recs in data.clients.items()}
    test = encode(data.test)
    seconds["prepare"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    trained = _train(cfg, bundle, clients, test, run, engine, reporter, resume)
    set_adapter_state(bundle.model, trained.state)
    metric, value = evaluate_utility(bundle.model, test, cfg.model.task)
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    attacks = run_battery(
        cfg.attacks,
        model=bundle.model,
        task=cfg.model.task,
        model_name="federated",
        model_sha256=trained.sha256,
        members=data.members,
        nonmembers=data.nonmembers,
        encode=encode,
        cache_dir=run.path("signals"),
        seed=cfg.seed,
        reporter=reporter,
    )
    seconds["attack"] = time.perf_counter() - t0

    report = build_report(
        cfg,
        engine=engine,
        bundle=bundle,
        data=data,
        trained=trained,
        utility=(metric, value),
        attacks=attacks,
        seconds=seconds,
    )
    write_report(report, run, formats=cfg.report.formats)
    return AuditOutcome(run_dir=run.root, report=report, seconds=seconds)
