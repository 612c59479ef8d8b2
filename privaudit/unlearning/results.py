"""What the unlearning family reports (``report.json`` → ``unlearning[]``): the result types,
composed by :mod:`privaudit.reports.schema`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from privaudit.core.params import ReportModel
from privaudit.unlearning.probe_results import (
    RelearningEvidence,
    RobustnessEvidence,
    SequencePoint,
)


class ForgetEvidence(ReportModel):
    """The erased records under the unlearned model; verify.py adds the attack evidence."""

    n_records: int
    mean_loss_before: float = Field(description="mean loss of the erased records, before")
    mean_loss_after: float = Field(description="mean loss of the erased records, after")
    mean_loss_oracle: float | None = Field(
        default=None, description="under the oracle (retrained without them)"
    )
    nonmember_mean_loss: float | None = Field(
        default=None, description="the trained model's mean loss on the held-out records "
        "matched to the forget set (nonmember_matching): the ascent methods' stopping target"
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
    auc_difference: float | None = Field(
        default=None, description="paired: forget AUC of the unlearned model − the oracle's, "
        "on the same forget and held-out records (> 0 = remembers more than retraining)")
    auc_difference_ci_low: float | None = Field(
        default=None, description="paired-bootstrap interval (records resampled once for both "
        "models) at the run's confidence")
    auc_difference_ci_high: float | None = None
    oracle_aucs: list[float] = Field(
        default_factory=list, description="forget AUC of the oracle and of each extra "
        "retraining with another seed (unlearning.verify.oracle_replicates)")
    retrain_low: float | None = Field(
        default=None, description="prediction interval of another retraining's forget AUC "
        "from oracle_aucs (t with k degrees of freedom); None when not estimated")
    retrain_high: float | None = None
    oracle_variability: str | None = Field(
        default=None, description="how the oracle's own variability entered the decision, or "
        "that it was not estimated")
    nonmember_matching: str | None = Field(
        default=None, description="which held-out records the forget set was compared with: "
        "matched on label and length band, or unmatched and why")
    mia_auc_unmatched: float | None = Field(
        default=None, description="the unlearned model's forget AUC against every held-out "
        "record (when the comparison used matched ones)")
    mia_auc_oracle_unmatched: float | None = None


class RetainEvidence(ReportModel):
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


class VerificationFlag(ReportModel):
    """A verdict of ``unlearning/verify.py`` with the threshold that fired."""

    name: Literal["under_unlearned", "over_unlearned", "utility_collapse",
                  "not_robust_to_quantization", "relearnable"]
    value: float
    threshold: float
    parameter: str = Field(description="the config field holding the threshold")
    message: str


class DPBound(ReportModel):
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


class UnlearningResult(ReportModel):
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
    robustness: RobustnessEvidence | None = Field(
        default=None, description="the forget evidence re-run on each shipped variant "
        "(unlearning.robustness.variants); None when none is configured")
    relearning: RelearningEvidence | None = Field(
        default=None, description="the relearning probe (unlearning.robustness.relearning); "
        "None when off")
    sequence: SequencePoint | None = Field(
        default=None, description="its place among the requests served on the run: "
        "cumulative cost, and whether earlier erasures stay erased (privaudit erase "
        "--request-stream)")
    verification_flags: list[VerificationFlag] = Field(default_factory=list)
    verdict: str | None = Field(default=None, description="the evidence in plain words")
    rank: int | None = Field(
        default=None, description="1 = best evidence among this request's methods")
