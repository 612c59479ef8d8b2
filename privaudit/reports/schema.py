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

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from privaudit.audit.errors import ConfigError
from privaudit.reports.crosswalk import CrosswalkRow

#: Semantic version of report.json: a minor bump only adds optional fields (older reports
#: still validate and render); a major bump may remove or change fields.
SCHEMA_VERSION = "0.2.0"


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


ControlStatus = Literal["PASS", "FAIL", "WARN", "NOT EVALUATED"]


class Control(_Model):
    """One line of the verdict, in words for a reader who is not an ML engineer."""

    id: str
    title: str
    status: ControlStatus
    reason: str
    evidence: list[str] = Field(default_factory=list, description="JSON pointers")
    applicable: bool = Field(
        default=True, description="false: not applicable to this run (never makes it incomplete)"
    )


class Verdict(_Model):
    """fail if a control fails; else incomplete if an applicable control was not evaluated;
    else warn if one warns; else pass."""

    status: Literal["pass", "fail", "warn", "incomplete"]
    summary: str
    controls: list[Control]


class Report(_Model):
    schema_version: str = SCHEMA_VERSION
    report_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    report_sha256: str | None = Field(
        default=None,
        description="sha256 of the canonical JSON of this report without this field "
        "(privaudit.audit.provenance.report_content_hash)",
    )
    title: str
    verdict: Verdict | None = None
    crosswalk: list[CrosswalkRow] = Field(default_factory=list)
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
        return read_report(path)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of report.json."""
    return Report.model_json_schema()


def schema_major(version: str) -> int:
    """The major part of a semantic ``schema_version`` ("0.2.0" → 0)."""
    head = version.split(".", 1)[0]
    if not head.isdigit():
        raise ConfigError(f"schema_version must be semantic (MAJOR.MINOR.PATCH); got {version!r}")
    return int(head)


def parse_report(document: Any, *, source: str = "report.json") -> Report:
    """Validate a parsed report.json of this major schema version (older minors included).

    Raises :class:`ConfigError` (exit 2) naming the file and every bad field.
    """
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: must be a JSON object; got {type(document).__name__}")
    version = document.get("schema_version")
    if not isinstance(version, str):
        raise ConfigError(f"{source}: schema_version: missing or not a string")
    if schema_major(version) != schema_major(SCHEMA_VERSION):
        raise ConfigError(f"{source}: schema_version {version} is not readable by this privaudit "
                          f"(reads {schema_major(SCHEMA_VERSION)}.x, writes {SCHEMA_VERSION})")
    try:
        return Report.model_validate(document)
    except ValidationError as exc:
        from privaudit.audit.config import format_validation_error

        problems = format_validation_error(exc)
        newer = _minor(version) > _minor(SCHEMA_VERSION)
        hint = f" (written by a newer privaudit: schema {version} > {SCHEMA_VERSION})" if newer else ""
        raise ConfigError(f"{source}: not a valid report{hint}: {problems[0]}",
                          [f"{source}: {p}" for p in problems]) from None


def _minor(version: str) -> int:
    parts = version.split(".")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def read_report(path: Path) -> Report:
    """Read and validate a report.json file (ConfigError naming the file otherwise)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such report") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    return parse_report(document, source=str(path))
