"""The report: one versioned pydantic model, written as ``report.json``.

Key paths follow the DESIGN.md contract (tools and CI read them). Later capabilities add
their section as a typed optional field here and a template block; nothing else changes.
``schema_version`` is semantic: a minor bump adds optional fields, so older reports still
validate and render.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "0.1.0"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunInfo(_Model):
    name: str
    config_sha256: str
    seed_commitment: str = Field(description="sha256 commitment to the seed; never the seed")
    engine: str
    task: Literal["classification", "causal-lm"]
    base_model: str
    base_model_sha256: str
    adapter_config_sha256: str
    final_adapter_sha256: str
    rounds: int
    clients: int
    seconds: dict[str, float] = Field(default_factory=dict, description="wall time per stage")


class RoundUtility(_Model):
    round: int
    value: float
    seconds: float
    global_sha256: str
    train_loss: dict[str, float] = Field(default_factory=dict)


class Utility(_Model):
    metric: Literal["accuracy", "perplexity"]
    value: float = Field(description="of the final federated model on the test split")
    per_model: dict[str, float] = Field(default_factory=dict)
    per_round: list[RoundUtility] = Field(default_factory=list)


class RateCI(_Model):
    value: float
    ci_low: float
    ci_high: float


class RocCurve(_Model):
    """At most ~200 points of the ROC, with a pointwise Clopper–Pearson band on the TPR."""

    fpr: list[float]
    tpr: list[float]
    tpr_ci_low: list[float] | None = None
    tpr_ci_high: list[float] | None = None


class AttackResult(_Model):
    attack: str
    model: str
    auc: float
    auc_ci_low: float | None = None
    auc_ci_high: float | None = None
    tpr_at_fpr: dict[str, RateCI]
    balanced_accuracy: float | None = None
    n_members: int
    n_nonmembers: int
    warnings: list[str] = Field(default_factory=list)
    roc: RocCurve | None = None


class DataRole(_Model):
    role: str
    n_records: int
    n_subjects: int
    sha256: str
    source: str
    preparation: str


class DataGovernance(_Model):
    source: str
    labels: list[str] | None = None
    max_records_per_subject: int
    roles: list[DataRole]


class Provenance(_Model):
    package_versions: dict[str, str]
    python: str
    platform: str
    git_commit: str | None = None
    git_dirty: bool | None = None
    data_sha256: dict[str, str] = Field(default_factory=dict)


class Artifact(_Model):
    path: str
    sha256: str


class Report(_Model):
    schema_version: str = SCHEMA_VERSION
    report_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    title: str
    run: RunInfo
    utility: Utility
    attacks: list[AttackResult] = Field(default_factory=list)
    data: DataGovernance
    provenance: Provenance
    artifacts: list[Artifact] = Field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_file(cls, path: Path) -> Report:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of report.json."""
    return Report.model_json_schema()
