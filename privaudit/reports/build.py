"""Build the typed Report from the stages' typed results (never from loose dicts)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from privaudit.audit.config import AuditConfig
from privaudit.audit.provenance import capture_environment, seed_commitment
from privaudit.mechanisms.data import PreparedData
from privaudit.mechanisms.models import ModelBundle
from privaudit.reports.schema import (
    AttackResult,
    DataGovernance,
    DataRole,
    Provenance,
    Report,
    RunInfo,
    Utility,
)

if TYPE_CHECKING:
    from privaudit.audit.pipeline import TrainedModel


def build_report(
    cfg: AuditConfig,
    *,
    engine: str,
    bundle: ModelBundle,
    data: PreparedData,
    trained: TrainedModel,
    utility: tuple[str, float],
    attacks: list[AttackResult],
    seconds: dict[str, float],
) -> Report:
    metric, value = utility
    summaries = data.summaries(cfg.data.source)
    env = capture_environment()
    return Report(
        title=cfg.report.title,
        run=RunInfo(
            name=cfg.name,
            config_sha256=cfg.sha256(),
            seed_commitment=seed_commitment(cfg.seed, os.urandom(16)),
            engine=engine,
            task=cfg.model.task,
            base_model=cfg.model.base,
            base_model_sha256=bundle.base_sha256,
            adapter_config_sha256=bundle.adapter_config_sha256,
            final_adapter_sha256=trained.sha256,
            rounds=cfg.federation.rounds,
            clients=cfg.federation.clients,
            seconds=seconds,
        ),
        utility=Utility(
            metric=metric,  # type: ignore[arg-type]
            value=value,
            per_model={"federated": value},
            per_round=trained.rounds,
        ),
        attacks=attacks,
        data=DataGovernance(
            source=cfg.data.source if cfg.data.source == "synthetic" else str(cfg.data.path),
            labels=data.labels,
            max_records_per_subject=data.max_records_per_subject(),
            roles=[DataRole(**vars(s)) for s in summaries],
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
