"""What the attack family reports (``report.json`` → ``attacks[]``, ``exposure``,
``references``, ``dp_audit``): the result types, composed by :mod:`privaudit.reports.schema`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from privaudit.core.params import ReportModel


class RateCI(ReportModel):
    """A rate with its interval. Not ``estimable`` (schema 0.5): too few non-members resolve
    the FPR (fewer than 10/FPR), so there is no point (``value`` None), ``reason`` says why,
    and ``ci_high`` is a valid upper bound of the TPR at that FPR (``ci_low`` a valid lower
    one, usually 0)."""

    value: float | None = Field(description="None when not estimable")
    ci_low: float
    ci_high: float
    estimable: bool = True
    reason: str | None = Field(default=None, description="why it is not estimable")


class RocCurve(ReportModel):
    """At most ~200 points of the ROC, with a pointwise Clopper–Pearson band on the TPR."""

    fpr: list[float]
    tpr: list[float]
    tpr_ci_low: list[float] | None = None
    tpr_ci_high: list[float] | None = None


class AttackResult(ReportModel):
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
    auc_by_label: dict[str, float] = Field(
        default_factory=dict, description="classification: the AUC of members vs non-members "
        "of each label (labels with at least 5 of each)")
    auc_within_label: float | None = Field(
        default=None, description="classification: the AUC over same-label member/non-member "
        "pairs only (pair-weighted mean of auc_by_label); next to the pooled auc, it shows "
        "how much of that is the labels' mix rather than memorisation")


class CanaryExposure(ReportModel):
    """One secret canary's exposure (its secret is never written to the report)."""

    canary_id: str
    insertions: int = Field(description="training records that carried it")
    bits: float = Field(description="log2|R| - log2 rank")
    rank: float = Field(description="estimated rank among all |R| secrets (1 = most likely)")


class Exposure(ReportModel):
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


class ReferenceModels(ReportModel):
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
    trained_by: str | None = Field(
        default=None, description="who trained them and how, when not the run's own recipe "
        "(audit-model: privaudit, with the recipe the user declared)")


class DpAuditPoint(ReportModel):
    """One measured (FPR, TPR) of the canary attack, for the privacy-region figure."""

    fpr: float
    tpr: float
    label: str


class DpAuditResult(ReportModel):
    """Empirical audit of the DP claim with canaries designed into training (DESIGN.md)."""

    method: str = Field(description="one-run (Steinke, Nasr, Jagielski 2023) + ROC bound")
    attack: str | None = Field(
        default=None, description="the attack whose scores ranked the canaries"
    )
    kind: str | None = Field(default=None, description="mislabeled | secret | gradient")
    claimed_epsilon: float | None = Field(description="the accountant's ε; None without DP")
    delta: float = 0.0
    epsilon_lower_bound: float = Field(description="the larger of the two bounds")
    one_run_epsilon_lower_bound: float | None = None
    roc_epsilon_lower_bound: float | None = None
    fdp_epsilon_lower_bound: float | None = Field(
        default=None, description="the one-run bound judged against Gaussian trade-off curves "
        "(Mahloujifar, Melis, Chaudhuri 2025): ε at δ of the largest μ-GDP refuted")
    fdp_mu_lower_bound: float | None = None
    gaussian_epsilon_estimate: float | None = Field(
        default=None, description="Andrew et al. 2024: ε at δ of the μ fitted to the in/out "
        "canary scores; an estimate, not a bound")
    gaussian_epsilon_interval: list[float] | None = Field(
        default=None, description="[low, high] of the Gaussian estimate at ``confidence``")
    gaussian_mu_estimate: float | None = None
    estimate_above_claim: bool | None = Field(
        default=None, description="the Gaussian estimate's interval lies above the claimed ε: a "
        "warning, not a violation (the estimate assumes Gaussian scores)")
    score_source: str | None = Field(
        default=None, description="what the canary scores were read from")
    release_contains_canaries: bool | None = Field(
        default=None, description="whether the model the report describes was trained with "
        "the audit's canaries")
    canary_memory_bytes: int | None = None
    confidence: float | None = None
    n_canaries: int
    n_included: int | None = None
    guesses: int = Field(description="r = k+ + k-, fixed before scoring")
    guesses_positive: int | None = None
    guesses_negative: int | None = None
    correct: int
    violation: bool = Field(description="a rigorous bound (epsilon_lower_bound) > claimed_epsilon")
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


class BlindBaseline(ReportModel):
    """An attack that never looks at the model (``attacks/blind.py``): if it tells the
    members from the non-members, the split differs and no attack AUC is evidence about the
    model (schema 0.8)."""

    auc: float
    auc_ci_low: float
    auc_ci_high: float
    p_value: float = Field(description="one-sided Mann-Whitney test, members score higher")
    alpha: float = Field(description="the split leaks when p_value < alpha")
    leaks: bool
    n_members: int
    n_nonmembers: int
    features: list[str]
    folds: int = Field(description="cross-validation folds: each record scored out of fold")
    grouped_by_subject: bool = Field(
        default=False, description="folds keep each data subject's records together")
