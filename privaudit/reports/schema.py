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

from pydantic import Field, ValidationError, model_validator

from privaudit.attacks.results import AttackResult as AttackResult
from privaudit.attacks.results import BlindBaseline as BlindBaseline
from privaudit.attacks.results import CanaryExposure as CanaryExposure
from privaudit.attacks.results import DpAuditPoint as DpAuditPoint
from privaudit.attacks.results import DpAuditResult as DpAuditResult
from privaudit.attacks.results import Exposure as Exposure
from privaudit.attacks.results import RateCI as RateCI
from privaudit.attacks.results import ReferenceModels as ReferenceModels
from privaudit.attacks.results import RocCurve as RocCurve
from privaudit.core.errors import ConfigError
from privaudit.core.params import ReportModel, format_validation_error
from privaudit.mechanisms.dp.results import DeclaredDPCheck as DeclaredDPCheck
from privaudit.mechanisms.dp.results import DPCard
from privaudit.mechanisms.secagg.results import SecureAggregationReport
from privaudit.reports.crosswalk import CrosswalkRow
from privaudit.unlearning.results import DPBound as DPBound
from privaudit.unlearning.results import ForgetEvidence as ForgetEvidence
from privaudit.unlearning.results import RetainEvidence as RetainEvidence
from privaudit.unlearning.results import UnlearningResult as UnlearningResult
from privaudit.unlearning.results import VerificationFlag as VerificationFlag

#: Semantic version of report.json: a minor bump only adds optional fields (older reports
#: still validate and render); a major bump may remove or change fields.
SCHEMA_VERSION = "0.14.0"


class FederationNode(ReportModel):
    """A Flower node that took part in training the reported model (engine ``flower``)."""

    node_id: str = Field(description="Flower node id (a 64-bit integer, as a string)")
    client_id: str
    rounds: list[int] = Field(default_factory=list, description="rounds it trained in")


class RunInfo(ReportModel):
    """What was audited. ``kind`` (schema 0.8): ``federated``, a federation privaudit trained
    (``privaudit run``); ``external``, a model trained elsewhere (``privaudit audit-model``):
    no rounds, clients or seed of privaudit's, ``config_sha256`` hashes the audit's inputs
    and ``final_adapter_sha256`` the supplied adapter (None without one)."""

    name: str
    kind: Literal["federated", "external"] = "federated"
    config_sha256: str
    seed_commitment: str = Field(description="sha256 commitment to the seed; never the seed")
    engine: str
    task: Literal["classification", "causal-lm"]
    base_model: str
    base_model_sha256: str
    adapter_config_sha256: str | None = None
    final_adapter_sha256: str | None = None
    rounds: int | None = Field(default=None, description="None for an external model")
    clients: int | None = Field(default=None, description="None for an external model")
    seconds: dict[str, float] = Field(default_factory=dict, description="wall time per stage")
    flower_version: str | None = Field(default=None, description="flwr version (engine flower)")
    flower_runtime: str | None = Field(
        default=None, description="Flower runtime: simulation (Ray) or deployment"
    )
    nodes: list[FederationNode] | None = Field(
        default=None, description="the Flower nodes that trained the reported model"
    )


class ClientDropout(ReportModel):
    """A client dropped from one round (it raised, or overran federation.client_timeout)."""

    client_id: str
    reason: Literal["raised", "timeout"]
    detail: str
    steps: int | None = Field(
        default=None, description="DP steps its accountant counted in this round (taken before "
        "it failed or timed out); None without record-level DP")


class RoundUtility(ReportModel):
    """One round of the federation. Each client's training loss is not here (schema 0.5): it
    is a statistic of its private records that no DP accountant covers. It stays in the run
    directory, ``models/global/round-NNN/train_loss.json``, next to the client updates."""

    round: int
    value: float
    seconds: float
    global_sha256: str
    participants: list[str] = Field(
        default_factory=list, description="the clients that trained in this round (dropped "
        "clients and DP-audit canary clients excluded)")
    dropouts: list[ClientDropout] = Field(
        default_factory=list, description="clients dropped from this round")

    @model_validator(mode="before")
    @classmethod
    def _older_train_loss(cls, data: Any) -> Any:
        """A report of schema ≤ 0.4 listed each client's loss (``train_loss``): read its
        clients as the participants, never carry the losses on."""
        if isinstance(data, dict) and "train_loss" in data:
            data = dict(data)
            losses = data.pop("train_loss") or {}
            data.setdefault("participants", sorted(losses))
        return data


class Utility(ReportModel):
    metric: Literal["accuracy", "perplexity"]
    value: float = Field(description="of the final federated model on the test split")
    n_records: int | None = Field(default=None, description="held-out records it is measured on")
    baselines: dict[str, float] = Field(
        default_factory=dict, description="what a useless model scores on the same records: "
        "majority_class and tfidf_logreg (accuracy), base_model (perplexity)")
    per_model: dict[str, float] = Field(default_factory=dict)
    per_round: list[RoundUtility] = Field(default_factory=list)


class DataRole(ReportModel):
    role: str
    n_records: int
    n_subjects: int
    sha256: str
    source: str
    preparation: str


class DataGovernance(ReportModel):
    source: str = Field(description="synthetic, or the data file's (directory's) name")
    source_sha256: str | None = Field(
        default=None, description="sha256 of the data file (of a directory: of its files' "
        "names and sha256)")
    labels: list[str] | None = None
    max_records_per_subject: int
    roles: list[DataRole]
    warnings: list[str] = Field(
        default_factory=list, description="skews the data roles keep, with numbers: one data "
        "subject holding over a fifth of a role, a label whose share differs by over 10 points "
        "between audit members and non-members, records in no role")


class Provenance(ReportModel):
    package_versions: dict[str, str]
    python: str
    platform: str
    git_commit: str | None = None
    git_dirty: bool | None = None
    data_sha256: dict[str, str] = Field(default_factory=dict)


class Artifact(ReportModel):
    path: str
    sha256: str


ControlStatus = Literal["PASS", "FAIL", "WARN", "NOT INFORMATIVE", "NOT EVALUATED"]


class Control(ReportModel):
    """One line of the verdict, in words for a reader who is not an ML engineer."""

    id: str
    title: str
    status: ControlStatus
    reason: str
    evidence: list[str] = Field(default_factory=list, description="JSON pointers")
    applicable: bool = Field(
        default=True, description="false: not applicable to this run (never makes it incomplete)"
    )


class Verdict(ReportModel):
    """fail if a control fails; else incomplete if an applicable control was not evaluated;
    else warn if one warns; else pass."""

    status: Literal["pass", "fail", "warn", "incomplete"]
    summary: str
    controls: list[Control]


class Privacy(ReportModel):
    """``privacy`` of report.json: the DP card (NIST SP 800-226 items) under ``dp``; ε is the
    whole federation's guarantee, record- and subject-level (``privacy.dp.*``)."""

    dp: DPCard


class Report(ReportModel):
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
    privacy: Privacy | None = Field(default=None, description="DP card of the training run")
    secure_aggregation: SecureAggregationReport | None = Field(
        default=None, description="homomorphic secure aggregation: parameters, cost, threat model"
    )
    attacks: list[AttackResult] = Field(default_factory=list)
    exposure: Exposure | None = None
    dp_audit: DpAuditResult | None = Field(
        default=None, description="empirical lower bound on ε from canaries (attacks.dp_audit)"
    )
    references: ReferenceModels | None = None
    blind_baseline: BlindBaseline | None = Field(
        default=None, description="a text-only attack on the audited split: if it separates "
        "members from non-members, the split leaks and attack AUCs are not evidence (0.8)")
    declared_dp: DeclaredDPCheck | None = Field(
        default=None, description="a DP claim declared for an external model (audit-model "
        "--dp-claim), tested from below by the attacks; its accounting is not checked (0.8)")
    data: DataGovernance
    provenance: Provenance
    artifacts: list[Artifact] = Field(default_factory=list)
    unlearning: list[UnlearningResult] = Field(
        default_factory=list, description="one entry per erasure request × method"
    )

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


def parse_report(document: Any, *, source: str = "report.json",
                 allow_unknown_sections: bool = False) -> Report:
    """Validate a parsed report.json of this major schema version (older minors included).

    With ``allow_unknown_sections``, top-level fields this privaudit does not know (a section
    added by a newer minor version or another build) are left out of the validation instead
    of being errors. Raises :class:`ConfigError` (exit 2) naming the file and every bad field.
    """
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: must be a JSON object; got {type(document).__name__}")
    version = document.get("schema_version")
    if not isinstance(version, str):
        raise ConfigError(f"{source}: schema_version: missing or not a string")
    if schema_major(version) != schema_major(SCHEMA_VERSION):
        raise ConfigError(f"{source}: schema_version {version} is not readable by this privaudit "
                          f"(reads {schema_major(SCHEMA_VERSION)}.x, writes {SCHEMA_VERSION})")
    if allow_unknown_sections:
        document = {k: v for k, v in document.items() if k in Report.model_fields}
    try:
        return Report.model_validate(document)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        newer = _minor(version) > _minor(SCHEMA_VERSION)
        hint = (f" (written by a newer privaudit: schema {version} > {SCHEMA_VERSION})"
                if newer else "")
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
