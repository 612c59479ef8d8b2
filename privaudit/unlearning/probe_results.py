"""What the robustness probes report (``unlearning[].robustness`` and ``.relearning`` of
report.json): the forget evidence of each shipped variant, and the relearning probe."""

from __future__ import annotations

from pydantic import Field

from privaudit.core.params import ReportModel


class VariantEvidence(ReportModel):
    """The forget-set evidence of one shipped variant of the unlearned model, against the
    oracle (and the trained model) put through the same transformation."""

    variant: str
    description: str
    identical_to_oracle: bool = Field(
        default=False, description="the unlearned model is byte-identical to its oracle, so "
        "every variant of it is too (an exact method): nothing to probe")
    mia_auc: float | None = Field(
        default=None, description="LOSS attack AUC, forget vs matched held-out records, "
        "under this variant of the unlearned model")
    mia_auc_ci_low: float | None = None
    mia_auc_ci_high: float | None = None
    mia_auc_oracle: float | None = Field(default=None, description="the oracle's, same variant")
    mia_auc_original: float | None = Field(
        default=None, description="not measured (null): the trained model is not put through "
        "the variants; its fp32 forget AUC is the certificate's forget.mia_auc_original")
    privleak: float | None = Field(
        default=None, description="PrivLeak in % vs the oracle's same variant (negative = "
        "still remembers)")
    privleak_ci_low: float | None = None
    privleak_ci_high: float | None = None
    privleak_floor: float | None = Field(
        default=None, description="schema 0.14: the smallest |PrivLeak| these records can "
        "show at this variant's confidence (1 − α/V, wider than fp32's); ≥ 100: the variant's "
        "test could not have failed")
    auc_difference: float | None = Field(
        default=None, description="forget AUC − the oracle's on the same records")
    auc_difference_ci_low: float | None = None
    auc_difference_ci_high: float | None = None
    auc_difference_pvalue: float | None = Field(
        default=None, description="paired swap test of the difference")
    exposure_bits: float | None = Field(
        default=None, description="causal LM: mean exposure of the forget set's canaries")
    exposure_bits_oracle: float | None = None
    failed: list[str] = Field(
        default_factory=list, description="the fp32 flags (under_unlearned, over_unlearned) "
        "this variant's evidence fires, by the same rules")


class RobustnessEvidence(ReportModel):
    """Every probed variant (``unlearning.robustness.variants``), by name: the gate reads
    ``unlearning.<method>.robustness.<variant>.privleak``."""

    merged: VariantEvidence | None = None
    int8: VariantEvidence | None = None
    int4: VariantEvidence | None = None
    nf4: VariantEvidence | None = None

    def probed(self) -> list[VariantEvidence]:
        return [v for v in (self.merged, self.int8, self.int4, self.nf4) if v is not None]


class RelearningEvidence(ReportModel):
    """The unlearned model and the oracle fine-tuned identically on a relearning set, then the
    erased records not relearned on attacked under both (``privaudit/unlearning/
    relearning.py``)."""

    steps: int
    learning_rate: float
    source: str
    relearn_records: int
    eval_records: int = Field(description="erased records the evidence is measured on")
    recovery: float | None = Field(
        default=None, description="after relearning: forget AUC of the measured records under "
        "the unlearned model − under the oracle, on the same records and matched held-out "
        "ones (> 0 = the erased records came back more than retraining lets them)")
    recovery_ci_low: float | None = Field(
        default=None, description="paired-bootstrap interval at the run's confidence")
    recovery_ci_high: float | None = None
    recovery_pvalue: float | None = Field(default=None, description="paired swap test")
    recovery_floor: float | None = Field(
        default=None, description="schema 0.14: the smallest recovery these records can show "
        "at the run's confidence (normal approximation for two AUCs of eval_records vs the "
        "matched held-out records; with a handful of records the paired test is more "
        "conservative still). ≥ 0.5: no recovery can show (NOT INFORMATIVE)")
    auc_before: float | None = Field(
        default=None, description="the measured records' forget AUC, unlearned model, before")
    auc_after: float | None = Field(default=None, description="the same after relearning")
    auc_oracle_before: float | None = None
    auc_oracle_after: float | None = None
    relearnable: bool | None = Field(
        default=None, description="the recovery's interval lies above 0 and the swap test "
        "rejects; None = not probed (reason)")
    reason: str | None = None


class SequencePoint(ReportModel):
    """Where a result sits in the sequence of requests served on the run
    (``privaudit/unlearning/sequence.py``): cumulative cost, and whether the records erased by
    earlier requests stay erased."""

    position: int = Field(description="1 = the first request served on this run")
    earlier_requests: int
    cumulative_seconds: float = Field(description="this method's seconds over requests 1..k")
    cumulative_examples: int = Field(description="its examples processed over 1..k")
    earlier_records: int | None = Field(
        default=None, description="records erased by requests before this one")
    earlier_auc: float | None = Field(
        default=None, description="their forget AUC (LOSS, vs matched held-out records) under "
        "this model")
    earlier_auc_oracle: float | None = Field(
        default=None, description="the same under this request's oracle, which never saw any "
        "of them")
    earlier_privleak: float | None = Field(
        default=None, description="PrivLeak of the earlier records vs that oracle (negative = "
        "an earlier erasure came back)")
    worst_request: str | None = Field(
        default=None, description="the earlier request whose records look most member-like "
        "relative to the oracle")
    worst_difference: float | None = Field(
        default=None, description="its forget AUC − the oracle's")
