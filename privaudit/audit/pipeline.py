"""What a run is: prepare → train → erase → attack → report.

Each stage writes its outputs into the run directory (DESIGN.md) and a stage manifest; with
``resume=True`` a stage whose inputs are unchanged and whose outputs are intact is loaded
from disk instead of recomputed.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from privaudit.attacks.battery import prepare_attacks
from privaudit.audit.config import AuditConfig
from privaudit.audit.preflight import preflight
from privaudit.audit.runclaim import claim_run_dir
from privaudit.audit.stages.attack import attacked_models, run_attack_stage
from privaudit.audit.stages.dp_audit import (
    canary_clients,
    dp_audit_result,
    plant_dp_audit,
    score_dp_audit,
)
from privaudit.audit.stages.erase import erase_stage
from privaudit.audit.threads import configure_threads
from privaudit.core.commitment import run_seed_commitment
from privaudit.core.hashing import ordered_ids_sha256
from privaudit.core.progress import PlainReporter, Reporter
from privaudit.core.rundir import (
    RunDir,
    sha256_file,
    verify_outputs,
    write_json_atomic,
    write_text_atomic,
)
from privaudit.mechanisms.data import PreparedData, records_sha256
from privaudit.mechanisms.federated import get_engine
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.engine import RoundRecord
from privaudit.mechanisms.federated.privacy import PrivacyOutcome, check_privacy, client_sizes_of
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
from privaudit.mechanisms.tasks import (
    EncodedSet,
    attach_features,
    encode_records,
    evaluate_utility,
)
from privaudit.reports.build import build_report
from privaudit.reports.render import RenderOutcome, write_report
from privaudit.reports.schema import ClientDropout, Report, RoundUtility
from privaudit.unlearning.ledger import dp_guarantee


@dataclass
class TrainedModel:
    state: AdapterState
    sha256: str
    rounds: list[RoundUtility]
    #: DP accountants (whole history) and secure-aggregation logs of the run
    privacy: PrivacyOutcome = field(default_factory=PrivacyOutcome)


@dataclass
class AuditOutcome:
    run_dir: Path
    report: Report
    seconds: dict[str, float] = field(default_factory=dict)
    rendered: RenderOutcome | None = None


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
        write_json_atomic(run.path("data", f"{name}.json"),
                          {"ids": ids, "sha256": ordered_ids_sha256(ids)})


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


def _round_message(rec: RoundRecord) -> str:
    parts = [f"round {rec.round}: {rec.utility_metric} {rec.utility:.3f}"]
    if rec.epsilon is not None:
        parts.append(f"ε {rec.epsilon:.3g}")
    secure = rec.aggregation.secure_aggregation if rec.aggregation is not None else None
    if secure is not None and secure.rejections:
        named = ", ".join(f"{x.client_id} ({x.reason})" for x in secure.rejections)
        parts.append(f"rejected: {named}")
    if rec.dropouts:
        parts.append("dropped: " + ", ".join(d.describe() for d in rec.dropouts))
    return ", ".join(parts)


@dataclass
class _PartialTraining:
    round: int
    rounds: list[RoundUtility]
    privacy: PrivacyOutcome
    outputs: list[Path]


def _partial_training(run: RunDir, inputs_sha: str) -> _PartialTraining | None:
    """The rounds an interrupted training with the same inputs completed, if intact."""
    path = run.path("models", "global", "progress.json")
    try:
        progress = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if progress.get("inputs_sha256") != inputs_sha:
        return None
    outputs = [run.path(rel) for rel in progress.get("outputs", {})]
    # a checkpoint that is there but altered raises VerificationError naming it
    if not verify_outputs(run.root, progress.get("outputs", {}), manifest=run.relative(path)):
        return None
    r = int(progress["round"])
    privacy = json.loads(run.path("models", "global", f"round-{r:03d}", "privacy.json").read_text())
    return _PartialTraining(
        round=r,
        rounds=[RoundUtility(**x) for x in progress["rounds"]],
        privacy=PrivacyOutcome.from_dict(privacy),
        outputs=outputs,
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
    """Train the federation; per round: the global adapter, the client updates and
    ``privacy.json`` (accountants with their whole history, ε so far, secure-aggregation
    log). ``resume`` reuses a finished stage, or continues an interrupted one after its last
    complete round (the accountants go on with their history)."""
    # DP and HE settings are checked (noise calibrated) before any training: exit 2
    check_privacy(cfg.recipe, client_sizes=client_sizes_of(clients), model=bundle.model)
    inputs = json.dumps(
        {
            "config": cfg.sha256(),
            "engine": engine,
            "base": bundle.base_sha256,
            "clients": {c: ordered_ids_sha256(list(d.record_ids)) for c, d in clients.items()},
        },
        sort_keys=True,
    )
    inputs_sha = hashlib.sha256(inputs.encode()).hexdigest()
    summary_path = run.path("models", "global", "training.json")
    progress_path = run.path("models", "global", "progress.json")
    final_path = run.global_adapter(cfg.federation.rounds)
    if resume and run.stage_is_current("train", inputs_sha):
        state = load_adapter(final_path)
        summary = json.loads(summary_path.read_text())
        reporter.info("[train] resumed: checkpoints and manifest unchanged")
        return TrainedModel(
            state=state,
            sha256=state_sha256(state),
            rounds=[RoundUtility(**r) for r in summary["rounds"]],
            privacy=PrivacyOutcome.from_dict(summary.get("privacy", {})),
        )

    partial = _partial_training(run, inputs_sha) if resume else None
    start, initial_state = 1, adapter_state(bundle.model)
    rounds: list[RoundUtility] = []
    outputs: list[Path] = []
    if partial is not None:
        start, rounds, outputs = partial.round + 1, partial.rounds, partial.outputs
        initial_state = load_adapter(run.global_adapter(partial.round))
        reporter.info(f"[train] resumed after round {partial.round} of {cfg.federation.rounds}")
    else:
        progress_path.unlink(missing_ok=True)
    base_before = state_sha256(base_state(bundle.model))
    with reporter.stage("train", cfg.federation.rounds - start + 1) as progress:

        def on_round(
            r: int, state: AdapterState, updates: list[ClientUpdate], rec: RoundRecord
        ) -> None:
            outputs.append(run.global_adapter(r))
            save_adapter(state, run.global_adapter(r))
            for u in updates:
                outputs.append(run.client_update(r, u.client_id))
                save_adapter(u.delta, run.client_update(r, u.client_id))
            privacy_path = run.path("models", "global", f"round-{r:03d}", "privacy.json")
            snapshot = rec.privacy.to_dict() if rec.privacy is not None else {}
            write_json_atomic(privacy_path, {"round": r, "epsilon": rec.epsilon} | snapshot)
            outputs.append(privacy_path)
            losses = {c: m["train_loss"] for c, m in rec.client_metrics.items()
                      if "train_loss" in m}  # canary clients do not train
            loss_path = run.train_losses(r)  # private: never in report.json
            write_json_atomic(loss_path, {"round": r, "train_loss": losses})
            outputs.append(loss_path)
            rounds.append(
                RoundUtility(
                    round=rec.round,
                    value=rec.utility,
                    seconds=rec.seconds,
                    global_sha256=rec.global_sha256,
                    participants=list(losses),
                    dropouts=[
                        ClientDropout(
                            client_id=d.client_id, reason=d.reason, detail=d.detail, steps=d.steps
                        )
                        for d in rec.dropouts
                    ],
                )
            )
            write_json_atomic(
                progress_path,
                {
                    "inputs_sha256": inputs_sha,
                    "round": r,
                    "rounds": [x.model_dump() for x in rounds],
                    "outputs": {run.relative(p): sha256_file(p) for p in outputs},
                },
            )
            progress.advance(_round_message(rec))

        result = train_federation(
            cfg.recipe,
            bundle,
            clients,
            test,
            initial_state=initial_state,
            seed=cfg.seed,
            engine=engine,
            on_round=on_round,
            start_round=start,
            resume=partial.privacy if partial is not None else None,
        )
    if state_sha256(base_state(bundle.model)) != base_before:
        raise RuntimeError("base model weights changed during LoRA training")
    privacy = result.privacy if result.privacy is not None else PrivacyOutcome()
    write_json_atomic(
        summary_path,
        {
            "rounds": [r.model_dump() for r in rounds],
            "final_sha256": result.final_sha256,
            "privacy": privacy.to_dict(),
        },
    )
    run.complete_stage("train", inputs_sha256=inputs_sha, outputs=[*outputs, summary_path])
    return TrainedModel(
        state=result.final_state, sha256=result.final_sha256, rounds=rounds, privacy=privacy
    )


def run_audit(
    cfg: AuditConfig,
    out: str | Path,
    *,
    resume: bool = False,
    engine: str = "inprocess",
    reporter: Reporter | None = None,
    sign_key: Path | None = None,
) -> AuditOutcome:
    """Run the whole audit into ``out`` and return the report.

    ``out`` must be new or empty, or (with ``resume``) a run of the same config; it is locked
    against other writers until the run ends (:func:`claim_run_dir`). ``sign_key`` (an
    Ed25519 private key, else ``cfg.report.sign_key``) signs the manifest.
    """
    if reporter is None:
        reporter = PlainReporter()
    configure_threads()  # the CPUs this process may use (affinity, cgroup quota)
    get_engine(engine)  # an unknown engine fails before any work
    data = preflight(cfg)  # every config-and-data check, before the run directory is touched
    with claim_run_dir(Path(out), cfg, resume=resume) as run:
        return _audit(cfg, run, resume=resume, engine=engine, reporter=reporter,
                      sign_key=sign_key, data=data)


def _audit(cfg: AuditConfig, run: RunDir, *, resume: bool, engine: str, reporter: Reporter,
           sign_key: Path | None, data: PreparedData) -> AuditOutcome:
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    write_text_atomic(run.config, cfg.to_yaml())
    _write_data_roles(run, data)
    bundle = build_model(cfg, data, run)
    initial_state = adapter_state(bundle.model)  # reference models start where the target did

    def encode(records: list) -> EncodedSet:  # type: ignore[type-arg]
        encoded = encode_records(
            records, bundle.tokenizer, labels=data.labels, max_length=cfg.model.max_length
        )
        return attach_features(encoded, bundle.model)

    # DP-audit canaries ride along in the one target training; inclusion stays sealed
    dp_plan = plant_dp_audit(cfg, data)
    trained_on = dp_plan.with_clients(data.clients) if dp_plan is not None else data.clients
    if dp_plan is not None:
        write_json_atomic(
            run.path("data", "dp-audit-canaries.json"),
            {
                "ids": [r.id for r in dp_plan.canaries],
                "kind": dp_plan.kind,
                "inclusion_commitment_sha256": dp_plan.sealed.commitment_sha256,
            },
        )
    clients = {c: encode(recs) for c, recs in trained_on.items()}
    test = encode(data.test)
    seconds["prepare"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    trained = _train(cfg, bundle, clients, test, run, engine, reporter, resume)
    set_adapter_state(bundle.model, trained.state)
    metric, value = evaluate_utility(bundle.model, test, cfg.model.task)
    seconds["train"] = time.perf_counter() - t0

    dp_audit = None
    if dp_plan is not None:
        t0 = time.perf_counter()
        scores = score_dp_audit(bundle.model, dp_plan.canaries, task=cfg.model.task,
                                encode=encode, initial_state=initial_state,
                                trained_state=trained.state,
                                client_level=canary_clients(cfg))
        guarantee = dp_guarantee(trained.privacy)
        dp_audit = dp_audit_result(
            cfg,
            dp_plan,
            scores,
            claimed_epsilon=guarantee[0] if guarantee else None,
            delta=guarantee[1] if guarantee else None,
        )
        write_json_atomic(run.path("attacks", "dp-audit.json"),
                          dp_plan.sealed.opening() | {"scores": scores.tolist()})
        reporter.info(f"[dp-audit] {dp_audit.interpretation}")
        seconds["dp_audit"] = time.perf_counter() - t0

    # Unlearning works on exactly what the target trained on: the DP-audit canaries (and a
    # client-level audit's canary clients) stay in, for the oracle and every method alike;
    # they are not data subjects' records, so no request can erase them.
    unlearning, erase_seconds = erase_stage(
        cfg,
        bundle=bundle,
        data=data,
        clients=clients,
        audit_canary_ids=frozenset(r.id for r in dp_plan.canaries) if dp_plan else frozenset(),
        test=test,
        encode=encode,
        initial_state=initial_state,
        trained_state=trained.state,
        run=run,
        engine=engine,
        reporter=reporter,
        resume=resume,
        dp_guarantee=dp_guarantee(trained.privacy),
        privacy=trained.privacy,
    )
    seconds |= erase_seconds

    t0 = time.perf_counter()
    attack_setup = prepare_attacks(
        cfg,
        bundle=bundle,
        data=data,
        encode=encode,
        run=run,
        initial_state=initial_state,
        engine=engine,
        reporter=reporter,
        target_noise=trained.privacy.noise_multipliers,
    )
    seconds["references"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # the whole battery on the federated model, every unlearned model and every oracle
    battery = run_attack_stage(
        attack_setup,
        model=bundle.model,
        models=attacked_models(run, trained.state, unlearning),
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
        attacks=battery.attacks,
        seconds=seconds,
        exposure=battery.exposure,
        dp_audit=dp_audit,
        references=attack_setup.references_section(),
        unlearning=unlearning,
        seed_commitment=run_seed_commitment(run, cfg.seed),
        trained_sizes=client_sizes_of(clients),  # DP-audit canaries included
    )
    rendered = write_report(
        report, run, formats=cfg.report.formats, sign_key=sign_key or cfg.report.sign_key
    )
    return AuditOutcome(
        run_dir=run.root, report=rendered.report or report, seconds=seconds, rendered=rendered
    )
