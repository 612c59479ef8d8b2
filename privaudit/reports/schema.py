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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from privaudit.core.errors import ConfigError
from privaudit.core.params import format_validation_error
from privaudit.mechanisms.dp.results import DPCard
from privaudit.mechanisms.secagg.results import SecureAggregationReport
from privaudit.reports.crosswalk import CrosswalkRow

#: Semantic version of report.json: a minor bump only adds optional fields (older reports
#: still validate and render); a major bump may remove or change fields.
SCHEMA_VERSION = "0.5.0"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FederationNode(_Model):
    """A Flower node that took part in training the reported model (engine ``flower``)."""

    node_id: str = Field(description="Flower node id (a 64-bit integer, as a string)")
    client_id: str
    rounds: list[int] = Field(default_factory=list, description="rounds it trained in")


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
    flower_version: str | None = Field(default=None, description="flwr version (engine flower)")
    flower_runtime: str | None = Field(
        default=None, description="Flower runtime: simulation (Ray) or deployment"
    )
    nodes: list[FederationNode] | None = Field(
        default=None, description="the Flower nodes that trained the reported model"
    )


class ClientDropout(_Model):
    """A client dropped from one round (it raised, or overran federation.client_timeout)."""

    client_id: str
    reason: Literal["raised", "timeout"]
    detail: str
    steps: int | None = Field(
        default=None, description="DP steps its accountant counted in this round (taken before "
        "it failed or timed out); None without record-level DP")


class RoundUtility(_Model):
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


class Utility(_Model):
    metric: Literal["accuracy", "perplexity"]
    value: float = Field(description="of the final federated model on the test split")
    per_model: dict[str, float] = Field(default_factory=dict)
    per_round: list[RoundUtility] = Field(default_factory=list)


class RateCI(_Model):
    """A rate with its interval. Not ``estimable`` (schema 0.5): too few non-members resolve
    the FPR (fewer than 10/FPR), so there is no point (``value`` None), ``reason`` says why,
    and ``ci_high`` is a valid upper bound of the TPR at that FPR (``ci_low`` a valid lower
    one, usually 0)."""

    value: float | None = Field(description="None when not estimable")
    ci_low: float
    ci_high: float
    estimable: bool = True
    reason: str | None = Field(default=None, description="why it is not estimable")


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
    min_resolvable_fpr: float | None = Field(
        default=None, description="the smallest FPR the non-members resolve, 10/n_nonmembers "
        "(1 with fewer than ten): TPR at a smaller FPR is not estimable (schema 0.5)")
    warnings: list[str] = Field(default_factory=list)
    roc: RocCurve | None = None
    params: dict[str, Any] = Field(
        default_factory=dict, description="the attack's parameters as run (tuned ones included)"
    )
    n_references: int = Field(default=0, description="reference models the attack used")
    model_sha256: str | None = Field(
        default=None, description="sha256 of the attacked adapter (a SISA ensemble: of its "
        "shards, as stored under models/)")
    members_erased: int = Field(
        default=0, description="audit members left out because an erasure request served "
        "before this model was produced erased them (schema 0.3)")


class CanaryExposure(_Model):
    """One secret canary's exposure (its secret is never written to the report)."""

    canary_id: str
    insertions: int = Field(description="training records that carried it")
    bits: float = Field(description="log2|R| - log2 rank")
    rank: float = Field(description="estimated rank among all |R| secrets (1 = most likely)")


class Exposure(_Model):
    """Secret-canary exposure (Carlini et al., The Secret Sharer, 2019) of ``model``."""

    model: str
    mean_bits: float
    max_bits: float
    log2_space_size: float = Field(description="log2|R|: the most exposure can be")
    secret_format: str
    method: str = Field(description="how ranks are extrapolated from the sampled candidates")
    n_candidates: int
    canaries: list[CanaryExposure]
    per_model: dict[str, float] = Field(
        default_factory=dict, description="mean bits of every model attacked"
    )


class ReferenceModels(_Model):
    """The reference (shadow) models LiRA, RMIA and the reference attack used."""

    count: int
    population: str = Field(description="what the random halves are drawn from")
    population_size: int
    population_sha256: str
    recipe_sha256: str = Field(description="training recipe: model, federation, privacy")
    keep_sha256: str = Field(description="of the stored keep masks (which half each trained on)")
    adapter_sha256: list[str]
    utility_metric: str
    utility: list[float] = Field(description="each on records it did not train on")
    seconds: float = Field(description="training time spent in this run (0 when reused)")
    reused: int = Field(description="adapters loaded from the run directory's cache")


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


class ForgetEvidence(_Model):
    """The erased records under the unlearned model; verify.py adds the attack evidence."""

    n_records: int
    mean_loss_before: float = Field(description="mean loss of the erased records, before")
    mean_loss_after: float = Field(description="mean loss of the erased records, after")
    mean_loss_oracle: float | None = Field(
        default=None, description="under the oracle (retrained without them)"
    )
    nonmember_mean_loss: float | None = Field(
        default=None, description="held-out non-members' mean loss (the stopping target)"
    )
    n_nonmembers: int | None = Field(default=None, description="held-out records attacked")
    mia_auc: float | None = Field(
        default=None, description="LOSS attack AUC, forget records vs held-out non-members, "
        "under the unlearned model (0.5 = indistinguishable; > 0.5 = still remembered)")
    mia_auc_ci_low: float | None = None
    mia_auc_ci_high: float | None = None
    mia_auc_oracle: float | None = None
    mia_auc_oracle_ci_low: float | None = None
    mia_auc_oracle_ci_high: float | None = None
    mia_auc_original: float | None = Field(default=None, description="under the trained model")
    mia_auc_original_ci_low: float | None = None
    mia_auc_original_ci_high: float | None = None
    privleak: float | None = Field(
        default=None, description="PrivLeak (MUSE) vs the oracle, in %: negative = still "
        "remembers, positive = over-unlearned, 0 = like the oracle")
    privleak_ci_low: float | None = None
    privleak_ci_high: float | None = None
    ks_pvalue: float | None = Field(
        default=None, description="forget quality: KS p-value, unlearned vs oracle per-example "
        "losses on the forget set (high = indistinguishable)")
    exposure_bits: float | None = Field(
        default=None, description="mean exposure (bits) of the secret canaries carried by the "
        "forget set, under the unlearned model (causal LM with canaries; else None)")
    exposure_bits_before: float | None = Field(
        default=None, description="the same under the trained model")
    exposure_bits_oracle: float | None = Field(
        default=None, description="the same under the oracle")
    exposure_canaries: int | None = Field(
        default=None, description="secret canaries with a carrier record in the forget set")
    vulnerability_before: list[float] = Field(
        default_factory=list, description="per forget record: share of held-out records with "
        "a higher loss under the trained model (0.5 = like a non-member, 1 = memorised)")
    vulnerability_after: list[float] = Field(default_factory=list)
    vulnerability_oracle: list[float] = Field(default_factory=list)
    privleak_band: float | None = Field(
        default=None, description="|PrivLeak| in % beyond which a method is flagged "
        "(unlearning.verify.privleak_band; the flags and the erasure control use this one band)")
    auc_floor: float | None = Field(
        default=None, description="smallest departure from AUC 0.5 that this many forget and "
        "held-out records can show at the run's confidence (also U-LiRA's); schema 0.5")
    privleak_floor: float | None = Field(
        default=None, description="smallest |PrivLeak| in % the comparison with the oracle can "
        "show; 100 or more = not even a model that remembers every forget record could be "
        "told from retraining (NOT INFORMATIVE)")
    ks_pvalue_floor: float | None = Field(
        default=None, description="smallest p-value the KS forget-quality test can give with "
        "this many forget records (above 1 − confidence it can never show a difference)")
    records_needed: int | None = Field(
        default=None, description="fewest forget records with which PrivLeak could show a model "
        "that remembers them all, with this many held-out records")
    informative: bool | None = Field(
        default=None, description="False when privleak_floor ≥ 100: the erasure test could not "
        "have failed; None when no oracle ran")


class RetainEvidence(_Model):
    utility_metric: Literal["accuracy", "perplexity"]
    utility: float = Field(description="of the unlearned model on the test split")
    utility_before: float | None = Field(default=None, description="of the trained model")
    n_records: int | None = Field(default=None, description="retained records attacked")
    mia_auc: float | None = Field(
        default=None, description="LOSS attack AUC, retained records vs held-out, after")
    mia_auc_ci_low: float | None = None
    mia_auc_ci_high: float | None = None
    mia_auc_before: float | None = Field(default=None, description="the same, trained model")
    mia_auc_increase: float | None = Field(
        default=None, description="after − before: collateral exposure of retained records")


class VerificationFlag(_Model):
    """A verdict of ``unlearning/verify.py`` with the threshold that fired."""

    name: Literal["under_unlearned", "over_unlearned", "utility_collapse"]
    value: float
    threshold: float
    parameter: str = Field(description="the config field holding the threshold")
    message: str


class DPBound(_Model):
    """What the training run's DP guarantee already says about the erased records."""

    records: int = Field(description="k: erased records")
    record_epsilon: float
    record_delta: float
    epsilon: float = Field(description="ε for the k records together, at ``delta``")
    delta: float = Field(description="the run's δ (direct), or k·e^((k−1)ε)·δ (group "
                         "privacy; 1 or more = no guarantee)")
    method: Literal["direct", "group_privacy"] = Field(
        default="group_privacy", description="direct: the k records accounted as one group "
        "from the run's DP-SGD history; group_privacy: the generic bound (client mode)")
    statement: str


class UnlearningResult(_Model):
    """One erasure request served by one method (``unlearning[]`` of report.json)."""

    request_id: str
    kind: Literal["record", "subject", "client"]
    method: str
    exactness: Literal["exact", "approximate"]
    seconds: float
    oracle_seconds: float | None = None
    speedup_vs_oracle: float | None = Field(
        default=None, description="oracle seconds / seconds; None when no oracle ran"
    )
    examples_processed: int
    received_at: str | None = None
    executed_at: str
    request_ids_sha256: str = Field(description="sha256 of the erased training-record ids")
    model_sha256_before: str
    model_sha256_after: str
    model_path: str
    forget: ForgetEvidence
    retain: RetainEvidence
    stopping_reason: str | None = None
    flags: list[str] = Field(default_factory=list)
    dp_bound: DPBound | None = None
    retained_epsilon: float | None = Field(
        default=None,
        description="record-level ε of the retained records in the released model: the "
        "run's accountants continued through the method's own DP training (retraining "
        "rounds, replayed updates; a SISA ensemble's own ε); None without DP or when the "
        "method steps outside DP (see flags)",
    )
    lineage_path: str | None = None
    ulira_auc: float | None = Field(
        default=None, description="U-LiRA AUC (Hayes et al. 2024): forget records vs held-out "
        "non-members under the unlearned model, each scored by a likelihood-ratio test against "
        "reference models that trained on it then unlearned it vs never saw it (0.5 = like "
        "never seen); None = NOT EVALUATED (ulira_reason says why)")
    ulira_auc_ci_low: float | None = None
    ulira_auc_ci_high: float | None = None
    ulira_references: int | None = Field(
        default=None, description="reference models U-LiRA used (pairs × 2)")
    ulira_reason: str | None = Field(
        default=None, description="why U-LiRA was not evaluated for this result")
    utility_drop: float | None = Field(
        default=None, description="relative utility lost: 1 − after/before (accuracy), "
        "1 − before/after (perplexity)")
    utility_drop_ci_low: float | None = Field(
        default=None, description="paired bootstrap over the test records: the drop's "
        "interval at the run's confidence (utility_collapse needs its low end above the "
        "threshold)")
    utility_drop_ci_high: float | None = None
    verification_flags: list[VerificationFlag] = Field(default_factory=list)
    verdict: str | None = Field(default=None, description="the evidence in plain words")
    rank: int | None = Field(
        default=None, description="1 = best evidence among this request's methods")


ControlStatus = Literal["PASS", "FAIL", "WARN", "NOT INFORMATIVE", "NOT EVALUATED"]


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


class Privacy(_Model):
    """``privacy`` of report.json: the DP card (NIST SP 800-226 items) under ``dp``; ε is the
    whole federation's guarantee, record- and subject-level (``privacy.dp.*``)."""

    dp: DPCard


class DpAuditPoint(_Model):
    """One measured (FPR, TPR) of the canary attack, for the privacy-region figure."""

    fpr: float
    tpr: float
    label: str


class DpAuditResult(_Model):
    """Empirical audit of the DP claim with canaries designed into training (DESIGN.md)."""

    method: str = Field(description="one-run (Steinke, Nasr, Jagielski 2023) + ROC bound")
    attack: str | None = Field(
        default=None, description="the attack whose scores ranked the canaries"
    )
    kind: str | None = Field(default=None, description="mislabeled | secret")
    claimed_epsilon: float | None = Field(description="the accountant's ε; None without DP")
    delta: float = 0.0
    epsilon_lower_bound: float = Field(description="the larger of the two bounds")
    one_run_epsilon_lower_bound: float | None = None
    roc_epsilon_lower_bound: float | None = None
    confidence: float | None = None
    n_canaries: int
    n_included: int | None = None
    guesses: int = Field(description="r = k+ + k-, fixed before scoring")
    guesses_positive: int | None = None
    guesses_negative: int | None = None
    correct: int
    violation: bool = Field(description="epsilon_lower_bound > claimed_epsilon")
    max_provable_epsilon: float | None = Field(
        default=None, description="the largest ε lower bound this design (canaries, guesses, "
        "confidence, δ) can print whatever the training does: the larger of the one-run and "
        "ROC ceilings")
    informative: bool | None = Field(
        default=None, description="False when the claimed ε is at or beyond "
        "max_provable_epsilon: the audit could not have failed (NOT INFORMATIVE)")
    canaries_needed: int | None = Field(
        default=None, description="canaries (same guess fraction) whose ceiling exceeds the "
        "claimed ε; None when none can or the audit is informative")
    canaries_needed_all_guessed: int | None = Field(
        default=None, description="the same with every canary guessed")
    interpretation: str = ""
    commitment_sha256: str | None = Field(
        default=None, description="sha256 commitment to the inclusion bits"
    )
    points: list[DpAuditPoint] = Field(default_factory=list)


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
