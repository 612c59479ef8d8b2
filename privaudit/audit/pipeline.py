"""What a run is: prepare → train → dp_audit → references → erase → attack → report.

Each stage (``privaudit.audit.stages``) writes its outputs into the run directory
(DESIGN.md) and a stage manifest; with ``resume=True`` a stage whose inputs are unchanged and
whose outputs are intact is loaded from disk instead of recomputed. :func:`run_audit` checks
everything first (:func:`~privaudit.audit.preflight.preflight`), claims the run directory,
builds the :class:`~privaudit.audit.session.RunSession` once and runs the stages in order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from privaudit.attacks.battery import prepare_attacks
from privaudit.audit.config import AuditConfig
from privaudit.audit.preflight import preflight
from privaudit.audit.runclaim import claim_run_dir, config_differences
from privaudit.audit.session import RunSession
from privaudit.audit.session import build_model as build_model
from privaudit.audit.stages.attack import attacked_models, run_attack_stage
from privaudit.audit.stages.audit_training import audit_training_stage
from privaudit.audit.stages.dp_audit import (
    Plan,
    dp_audit_kind,
    dp_audit_run,
    dp_audit_stage,
    gradient_placement,
    plant_dp_audit,
    record_planted,
)
from privaudit.audit.stages.erase import erase_stage
from privaudit.audit.stages.references import references_needed, references_stage
from privaudit.audit.stages.report import build_report
from privaudit.audit.stages.train import TrainedModel as TrainedModel
from privaudit.audit.stages.train import train_stage
from privaudit.audit.threads import configure_threads
from privaudit.core.commitment import run_seed_commitment
from privaudit.core.errors import ConfigError
from privaudit.core.hashing import ordered_ids_sha256
from privaudit.core.progress import PlainReporter, Reporter
from privaudit.core.rundir import RunDir, write_json_atomic, write_text_atomic
from privaudit.mechanisms.data import PreparedData
from privaudit.mechanisms.dp.gradient_canaries import GradientCanaryPlan
from privaudit.mechanisms.federated import get_engine
from privaudit.mechanisms.federated.privacy import client_sizes_of
from privaudit.mechanisms.models import set_adapter_state
from privaudit.mechanisms.tasks import EncodedSet
from privaudit.reports.render import RenderOutcome, write_report
from privaudit.reports.schema import DpAuditResult, Report
from privaudit.unlearning.ledger import dp_guarantee


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

    ``out`` must be new or empty, or (with ``resume``) a run (of this config, or of another
    one: stages whose own inputs changed are recomputed); it is locked
    against other writers until the run ends (:func:`claim_run_dir`). ``sign_key`` (an
    Ed25519 private key, else ``cfg.report.sign_key``) signs the manifest.
    """
    if reporter is None:
        reporter = PlainReporter()
    configure_threads()  # the CPUs this process may use (affinity, cgroup quota)
    get_engine(engine)  # an unknown engine fails before any work
    if engine != "inprocess" and dp_audit_kind(cfg) == "gradient":
        raise ConfigError(
            f"--engine: gradient canaries (attacks.dp_audit.kind, auto under record-level DP) "
            f"are observed inside each client's DP-SGD, which only the inprocess engine shares "
            f"with the audit; got {engine!r} (use --engine inprocess, or attacks.dp_audit.kind: "
            "mislabeled)")
    data = preflight(cfg)  # every config-and-data check, before the run directory is touched
    if resume and (Path(out) / "config.yaml").is_file():
        changed = config_differences(Path(out) / "config.yaml", cfg)
        if changed:
            reporter.info(f"[resume] this config differs from the run's in {len(changed)} "
                          f"key(s) ({', '.join(changed[:6])}): stages whose own inputs "
                          "changed are recomputed")
    with claim_run_dir(Path(out), cfg, resume=resume) as run:
        return _audit(cfg, run, resume=resume, engine=engine, reporter=reporter,
                      sign_key=sign_key, data=data)


def _dp_audit(session: RunSession, plan: Plan, trained: TrainedModel,
              clients: dict[str, EncodedSet], test: EncodedSet, run: RunDir, *,
              separate: bool, engine: str, reporter: Reporter, resume: bool) -> DpAuditResult:
    """The DP audit: its own training first when the canaries train separately."""
    audit_rounds = None
    if separate and isinstance(plan, GradientCanaryPlan):
        audit_rounds = audit_training_stage(session, plan, clients, test, run, engine=engine,
                                            reporter=reporter, resume=resume)
        set_adapter_state(session.bundle.model, trained.state)  # the released model
    return dp_audit_stage(session, plan, trained, run, reporter, audit_rounds=audit_rounds)


def _audit(cfg: AuditConfig, run: RunDir, *, resume: bool, engine: str, reporter: Reporter,
           sign_key: Path | None, data: PreparedData) -> AuditOutcome:
    """The stages, in order, each handed what the one before produced."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    write_text_atomic(run.config, cfg.to_yaml())
    _write_data_roles(run, data)
    session = RunSession.build(cfg, run, data)
    # DP-audit canaries ride along in the one target training; inclusion stays sealed
    dp_plan = plant_dp_audit(cfg, data, like=session.initial_state)
    trained_on = dp_plan.with_clients(data.clients) if dp_plan is not None else data.clients
    if dp_plan is not None:
        record_planted(run, dp_plan)
    clients = {c: session.encode(recs) for c, recs in trained_on.items()}
    test = session.encode(data.test)
    seconds["prepare"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    separate = dp_audit_run(cfg) == "separate"  # then the canaries train in their own run
    trained = train_stage(session, clients, test, run, engine=engine, reporter=reporter,
                          resume=resume, gradient_canaries=gradient_placement(dp_plan, separate))
    utility = session.utility(test, state=trained.state)
    seconds["train"] = time.perf_counter() - t0

    dp_audit = None
    if dp_plan is not None:
        t0 = time.perf_counter()
        dp_audit = _dp_audit(session, dp_plan, trained, clients, test, run, separate=separate,
                             engine=engine, reporter=reporter, resume=resume)
        seconds["dp_audit"] = time.perf_counter() - t0

    # Unlearning works on exactly what the target trained on: the DP-audit canaries (and a
    # client-level audit's canary clients) stay in, for the oracle and every method alike;
    # they are not data subjects' records, so no request can erase them.
    t0 = time.perf_counter()
    references = references_stage(
        cfg, count=references_needed(cfg, cfg.unlearning.methods,
                                     serving=bool(cfg.unlearning.requests)),
        bundle=session.bundle, data=data, encode=session.encode, run=run,
        initial_state=session.initial_state, engine=engine, reporter=reporter,
        target_noise=trained.privacy.noise_multipliers,
    )
    seconds["references"] = time.perf_counter() - t0

    unlearning, erase_seconds = erase_stage(
        cfg, bundle=session.bundle, data=data, clients=clients,
        audit_canary_ids=frozenset(r.id for r in dp_plan.canaries) if dp_plan else frozenset(),
        test=test, encode=session.encode, initial_state=session.initial_state,
        trained_state=trained.state, run=run, engine=engine, reporter=reporter, resume=resume,
        dp_guarantee=dp_guarantee(trained.privacy), privacy=trained.privacy,
        references=references,
    )
    seconds |= erase_seconds

    t0 = time.perf_counter()
    attack_setup = prepare_attacks(
        cfg.attacks, model=cfg.model, seed=cfg.seed, bundle=session.bundle, data=data,
        encode=session.encode, run=run, initial_state=session.initial_state,
        references=references, target_utility=utility.value,
    )
    # the whole battery on the federated model, every unlearned model and every oracle
    battery = run_attack_stage(attack_setup, model=session.bundle.model,
                               models=attacked_models(run, trained.state, unlearning),
                               reporter=reporter)
    seconds["attack"] = time.perf_counter() - t0

    report = build_report(
        cfg, engine=engine, bundle=session.bundle, data=data, trained=trained, utility=utility,
        attacks=battery.attacks, seconds=seconds, exposure=battery.exposure, dp_audit=dp_audit,
        references=attack_setup.references_section(), unlearning=unlearning,
        blind_baseline=battery.blind, seed_commitment=run_seed_commitment(run, cfg.seed),
        trained_sizes=client_sizes_of(clients),  # DP-audit canaries included
    )
    rendered = write_report(
        report, run, formats=cfg.report.formats, sign_key=sign_key or cfg.report.sign_key
    )
    return AuditOutcome(
        run_dir=run.root, report=rendered.report or report, seconds=seconds, rendered=rendered
    )
