"""Build the typed Report from the stages' typed results (never from loose dicts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from privaudit.audit.config import AuditConfig
from privaudit.audit.stages.train import TrainedModel
from privaudit.audit.stages.utility import MeasuredUtility
from privaudit.core.provenance import capture_environment
from privaudit.core.rundir import path_sha256
from privaudit.mechanisms.data import PreparedData
from privaudit.mechanisms.federated.flower.runinfo import flower_run
from privaudit.mechanisms.federated.privacy import dp_card, secure_aggregation_report
from privaudit.mechanisms.models import ModelBundle
from privaudit.reports.schema import (
    AttackResult,
    BlindBaseline,
    DataGovernance,
    DataRole,
    DpAuditResult,
    Exposure,
    FederationNode,
    Privacy,
    Provenance,
    ReferenceModels,
    Report,
    RunInfo,
    UnlearningResult,
    Utility,
)


def max_clients_per_subject(data: PreparedData) -> int:
    """The most clients one data subject's training records are spread over."""
    seen: dict[str, set[str]] = {}
    for client, records in data.clients.items():
        for r in records:
            seen.setdefault(r.subject_id, set()).add(client)
    return max((len(c) for c in seen.values()), default=1)


def _run_info(cfg: AuditConfig, *, engine: str, bundle: ModelBundle, trained: TrainedModel,
              seconds: dict[str, float], seed_commitment: str) -> RunInfo:
    """The report's ``run`` section: what ran, on which engine, and how long each stage took."""
    flower = flower_run(engine, trained.sha256)  # the Flower version and nodes, if any
    return RunInfo(
        name=cfg.name,
        config_sha256=cfg.sha256(),
        seed_commitment=seed_commitment,
        engine=engine,
        task=cfg.model.task,
        base_model=cfg.model.base,
        base_model_sha256=bundle.base_sha256,
        adapter_config_sha256=bundle.adapter_config_sha256,
        final_adapter_sha256=trained.sha256,
        rounds=cfg.federation.rounds,
        clients=cfg.federation.clients,
        seconds=seconds,
        flower_version=flower.flower_version if flower else None,
        flower_runtime=flower.runtime if flower else None,
        nodes=[
            FederationNode(node_id=str(n.node_id), client_id=n.client_id, rounds=list(n.rounds))
            for n in flower.nodes
        ] if flower and flower.nodes else None,
    )


def build_report(
    cfg: AuditConfig,
    *,
    engine: str,
    bundle: ModelBundle,
    data: PreparedData,
    trained: TrainedModel,
    utility: MeasuredUtility,
    attacks: list[AttackResult],
    seconds: dict[str, float],
    exposure: Exposure | None = None,
    dp_audit: DpAuditResult | None = None,
    references: ReferenceModels | None = None,
    blind_baseline: BlindBaseline | None = None,
    unlearning: Sequence[UnlearningResult] = (),
    seed_commitment: str,
    trained_sizes: Mapping[str, int],
) -> Report:
    """The report of a finished run. ``trained_sizes``: the records each client trained on
    — its data plus the DP-audit canaries planted in it, and the canary clients of a
    client-level audit — which the DP card counts (the accountants ran on those; held-out and
    audit non-member records are never in them)."""
    metric, value = utility.metric, utility.value
    summaries = data.summaries(cfg.data.source)
    env = capture_environment()
    return Report(
        title=cfg.report.title,
        run=_run_info(cfg, engine=engine, bundle=bundle, trained=trained, seconds=seconds,
                      seed_commitment=seed_commitment),
        utility=Utility(
            metric=metric,  # type: ignore[arg-type]
            value=value,
            n_records=utility.n_records,
            baselines=utility.baselines,
            per_model={"federated": value},
            per_round=trained.rounds,
        ),
        privacy=Privacy(
            dp=dp_card(
                cfg.recipe,
                trained.privacy,
                client_sizes=dict(trained_sizes),
                max_records_per_subject=data.max_records_per_subject(),
                max_clients_per_subject=max_clients_per_subject(data),
            )
        ),
        secure_aggregation=secure_aggregation_report(cfg.recipe, trained.privacy),
        attacks=attacks,
        exposure=exposure,
        dp_audit=dp_audit,
        references=references,
        blind_baseline=blind_baseline,
        unlearning=list(unlearning),
        data=DataGovernance(
            source="synthetic" if cfg.data.path is None or cfg.data.source == "synthetic"
            else Path(cfg.data.path).name,  # the name, not where it lies on this machine
            source_sha256=None if cfg.data.path is None or cfg.data.source == "synthetic"
            else path_sha256(Path(cfg.data.path)),
            labels=data.labels,
            max_records_per_subject=data.max_records_per_subject(),
            roles=[DataRole(**vars(s)) for s in summaries],
            warnings=list(data.warnings),
        ),
        provenance=Provenance(
            package_versions=env["package_versions"],
            python=env["python"],
            platform=env["platform"],
            git_commit=env["git_commit"],
            git_dirty=env["git_dirty"],
            data_sha256={s.role: s.sha256 for s in summaries},
        ),
    )
