"""The ``attacks`` section of the config: the battery, reference models, the DP audit."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from privaudit.core.params import ConfigSection
from privaudit.mechanisms.data.config import CanaryConfig


class AttackSpec(ConfigSection):
    name: str = Field(description="a registered attack name")
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = Field(
        default=None,
        description="the name in the report and the gate (attacks.<label>.auc); default: the "
        "attack name, with '-offline' appended for mode: offline",
    )

    @property
    def key(self) -> str:
        """The report name of this battery entry."""
        if self.label:
            return self.label
        return f"{self.name}-offline" if self.params.get("mode") == "offline" else self.name


class ReferencesConfig(ConfigSection):
    """Reference (shadow) models for LiRA, RMIA and the ``reference`` attack.

    LoRA adapters trained through the run's own training entry point (same federation and DP
    settings, unless ``overrides`` says otherwise) on random halves of a population that
    contains every audited record; complementary pairs of halves make each audited record IN
    for exactly half of the references. Cached in the run directory by (recipe, data).
    """

    count: int = Field(
        default=0, ge=0, description="reference models; even (complementary pairs); 0 = none"
    )
    population: Literal["training", "audit"] = Field(
        default="training",
        description="training: halves of every training record plus the held-out audit "
        "non-members and population points, so that a member's and a non-member's other "
        "records are IN equally often and each reference trains on nearly as many records as "
        "the target; audit: halves of "
        "the audit split only, cheaper but biased when subjects have several records (a "
        "non-member's other records are all in it, a member's mostly not)",
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="deep-merged into the 'federation' and 'privacy' sections for the "
        "references only, e.g. {federation: {rounds: 2}}",
    )
    secure_aggregation: bool = Field(
        default=False,
        description="also encrypt the references' aggregation; off by default because the "
        "CKKS sum equals the plain sum up to ~1e-6, so the references learn the same",
    )

    @model_validator(mode="after")
    def _even_and_known(self) -> ReferencesConfig:
        if self.count % 2:
            raise ValueError(
                f"count must be even (references come in complementary pairs); got {self.count}"
            )
        unknown = sorted(set(self.overrides) - {"federation", "privacy"})
        if unknown:
            raise ValueError(f"overrides may set 'federation' and 'privacy' only; got {unknown}")
        for key, value in self.overrides.items():
            if not isinstance(value, dict):
                raise ValueError(f"overrides.{key} must be a mapping of {key} settings; "
                                 f"got {value!r}")
        return self


class DpAuditGuesses(ConfigSection):
    """The one-run audit's guesses, fixed before scoring: IN for the ``positive`` fraction of
    canaries with the highest scores, OUT for the ``negative`` fraction with the lowest."""

    positive: float = Field(default=0.05, gt=0, le=1)
    negative: float = Field(default=0.05, gt=0, le=1)

    @model_validator(mode="after")
    def _at_most_all(self) -> DpAuditGuesses:
        if self.positive + self.negative > 1:
            raise ValueError(
                f"positive + negative must be <= 1; got {self.positive} + {self.negative}"
            )
        return self


class DpAuditConfig(ConfigSection):
    """Empirical audit of the DP claim (Steinke, Nasr, Jagielski 2023): ``canaries`` records
    each included in training with probability 1/2; 0 = off."""

    canaries: int = Field(default=200, ge=0, description="canary records m; 0 = no audit")
    kind: Literal["mislabeled", "secret", "gradient", "auto"] = Field(
        default="auto",
        description="mislabeled records (classification), random secrets (causal LM), or "
        "white-box gradient canaries in DP-SGD's clipped gradients (record-level DP only); "
        "auto: gradient under record-level DP, else by model.task",
    )
    guesses: DpAuditGuesses = Field(default_factory=DpAuditGuesses)
    confidence: float = Field(
        default=0.95, gt=0, lt=1, description="1 - p* of the one-run bound; CP level of ROC"
    )
    run: Literal["auto", "same", "separate"] = Field(
        default="auto",
        description="where the canaries train: 'same' (the released model, which then "
        "contains them) or 'separate' (an audit training of the same recipe, data, σ and "
        "schedule whose model is never released; gradient canaries only); auto: separate for "
        "gradient canaries, same otherwise",
    )


class AttacksConfig(ConfigSection):
    battery: list[AttackSpec] = Field(default_factory=lambda: [AttackSpec(name="loss")])
    fprs: list[float] = Field(default_factory=lambda: [0.01, 0.001], min_length=1)
    bootstrap: int = Field(default=200, ge=0, description="bootstrap resamples for the AUC CI")
    confidence: float = Field(default=0.95, gt=0, lt=1)
    references: ReferencesConfig = Field(default_factory=ReferencesConfig)
    population: int = Field(
        default=0,
        ge=0,
        description="RMIA's population points z: this many records of the test split "
        "(held-out subjects, non-members of every model); 0 = all of them",
    )
    reference_model: Literal["auto", "base", "references"] = Field(
        default="auto",
        description="the 'reference' attack's model: base (the model before fine-tuning), "
        "references (per record, the mean over reference models without it), or auto "
        "(references when there are any, else base)",
    )
    canaries: CanaryConfig = Field(default_factory=CanaryConfig)
    dp_audit: DpAuditConfig | None = Field(
        default=None, description="empirical audit of the DP claim; absent = off"
    )

    @field_validator("fprs")
    @classmethod
    def _fprs_in_range_and_distinct(cls, fprs: list[float]) -> list[float]:
        bad = [f for f in fprs if not 0 < f < 1]
        if bad:
            raise ValueError(f"every FPR must be in (0, 1); got {bad}")
        repeated = sorted({f for f in fprs if fprs.count(f) > 1})
        if repeated:
            raise ValueError(f"FPRs must be distinct (each is one TPR in the report); "
                             f"{repeated} given more than once")
        return fprs

    @model_validator(mode="after")
    def _distinct_battery(self) -> AttacksConfig:
        keys = [spec.key for spec in self.battery]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(
                f"battery names must be distinct; {twice} appear twice (give one a 'label')"
            )
        return self
