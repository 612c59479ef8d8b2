"""The ``unlearning`` section of the config: erasure requests, methods and their parameters."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from privaudit.core.params import ConfigSection
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.unlearning.requests import ErasureRequest


class AscentConfig(ConfigSection):
    """Gradient ascent, GradDiff and NPO, run at the client holding the forget set."""

    learning_rate: float | None = Field(
        default=None, gt=0, description="default: federation.learning_rate"
    )
    max_steps: int = Field(default=25, ge=1, description="step cap per holding client")
    batch_size: int = Field(default=8, ge=1, description="forget (and retain) batch size")
    stop_ratio: float = Field(
        default=1.0,
        gt=0,
        description="stop once the forget set's mean loss reaches stop_ratio × the mean loss "
        "of the held-out records matched to it (its labels and length bands; no oracle "
        "needed)",
    )
    alpha: float = Field(default=1.0, ge=0, description="weight of the retain NLL (graddiff, npo)")
    gamma: float = Field(default=1.0, gt=0, description="weight of the forget term (graddiff)")
    beta: float = Field(default=0.1, gt=0, description="NPO inverse temperature β")
    recovery_rounds: int = Field(
        default=0, ge=0, description="federated rounds on retained data after the ascent"
    )


class SisaConfig(ConfigSection):
    """SISA training (Bourtoule et al. 2021): one LoRA adapter per shard, sliced."""

    shards: int = Field(default=4, ge=2)
    slices: int = Field(default=2, ge=1)
    shard_by: Literal["records", "clients"] = Field(
        default="records", description="records (seeded, subjects kept together) or clients"
    )
    epochs_per_slice: int | None = Field(
        default=None,
        ge=1,
        description="default: ceil(federation.rounds × local_epochs / slices), so the first "
        "slice's records get as many epochs as in the federation",
    )
    learning_rate: float | None = Field(
        default=None,
        gt=0,
        description="the shards' learning rate; default: the run's (privacy.dp.learning_rate "
        "under record DP, else federation.learning_rate). A shard trains alone on 1/S of the "
        "records, so under DP its noise is not averaged with other clients' as in the "
        "federation: a smaller step often trains better",
    )

    def epochs(self, federation: FederationConfig) -> int:
        """Epochs per slice: ``epochs_per_slice``, or ⌈rounds × local epochs / slices⌉."""
        if self.epochs_per_slice is not None:
            return self.epochs_per_slice
        return max(1, math.ceil(federation.rounds * federation.local_epochs / self.slices))
    verify: bool = Field(
        default=True,
        description="retrain affected shards from scratch after an erasure and check the "
        "result is byte-identical (the SISA oracle)",
    )


class FinetuneRetainConfig(ConfigSection):
    rounds: int = Field(default=1, ge=1, description="federated rounds on retained data")


class FedEraserConfig(ConfigSection):
    """Calibrated replay of stored client updates (Liu et al. 2021)."""

    interval: int = Field(default=1, ge=1, description="Δt: replay every Δt-th round's updates")
    epoch_ratio: float = Field(
        default=0.5, gt=0, le=1, description="calibration epochs / original local epochs"
    )


class VerifyConfig(ConfigSection):
    """Thresholds of the unlearning evidence (``privaudit/unlearning/verify.py``)."""

    privleak_band: float = Field(
        default=10.0, gt=0, description="|PrivLeak| in % beyond which under_unlearned "
        "(negative) or over_unlearned (positive) fires, when the paired interval of the AUC "
        "difference from the oracle also excludes 0")
    utility_drop_max: float = Field(
        default=0.2, gt=0, lt=1, description="relative utility drop beyond which "
        "utility_collapse fires")
    oracle_replicates: int = Field(
        default=0, ge=0, le=8, description="extra retrainings of the oracle with other seeds, "
        "per request, to estimate how much two retrainings differ: a method is flagged only "
        "if its forget AUC is also outside the prediction interval of another retraining; 0 = "
        "not estimated (the certificate says so)")
    retain_sample: int = Field(
        default=200, ge=1, description="retained records attacked for the collateral AUC")
    ulira_references: int = Field(
        default=0, ge=0, le=32, description="U-LiRA (Hayes et al. 2024) reference pairs: 2 ×"
        " this many reference adapters (attacks.references' own, trained once and cached; "
        "more are trained when attacks.references.count is smaller), each unlearning its "
        "share of the forget set with the judged method; 0 = off (ulira_auc None)")
    ulira_methods: list[Literal["gradient_ascent", "graddiff", "npo", "finetune_retain"]] = \
        Field(default_factory=lambda: ["gradient_ascent", "graddiff", "npo",  # type: ignore[arg-type]
                                       "finetune_retain"],
              description="methods U-LiRA judges (it runs each once per reference model; "
              "oracle, sisa and federaser retrain and are never judged by it)")


class RelearningConfig(ConfigSection):
    """The relearning probe (``privaudit/unlearning/relearning.py``): the unlearned model and
    the oracle fine-tuned identically on part of what was erased, then compared on the rest."""

    steps: int = Field(
        default=0, ge=0, le=500, description="fine-tuning steps on the relearning set, the "
        "same for the unlearned model and the oracle; 0 = off")
    source: Literal["forget", "subjects"] = Field(
        default="forget", description="forget: a share of the forget set (relearning.fraction; "
        "recovery is measured on the other records); subjects: the retained training records "
        "of the forget records' data subjects (recovery measured on every forget record)")
    fraction: float = Field(
        default=0.5, gt=0, lt=1, description="source: forget — the share of the forget set "
        "relearned on (chosen by the run's seed; at least one record, and at least two left "
        "to measure)")
    learning_rate: float | None = Field(
        default=None, gt=0, description="default: federation.learning_rate")
    batch_size: int = Field(default=8, ge=1, description="records per fine-tuning step")


class RobustnessConfig(ConfigSection):
    """Probes of an erasure beyond the fp32 adapter (``privaudit/unlearning/robustness.py``):
    the shipped artifacts, and relearning."""

    variants: list[Literal["merged", "int8", "int4", "nf4"]] = Field(
        default_factory=list, description="shipped variants the forget evidence is re-run on, "
        "for every unlearned model and its oracle put through the same transformation: "
        "merged (LoRA merged into the base, float32), int8 / int4 (merged, then symmetric "
        "per-channel round-to-nearest), nf4 (merged, then bitsandbytes NF4); a method that "
        "passes at fp32 and fails on one is flagged not_robust_to_quantization")
    relearning: RelearningConfig = Field(default_factory=RelearningConfig)

    @field_validator("variants")
    @classmethod
    def _distinct(cls, variants: list[str]) -> list[str]:
        if len(set(variants)) != len(variants):
            raise ValueError(f"must be distinct; got {variants}")
        return variants


class UnlearningConfig(ConfigSection):
    """Erasure requests and the methods that serve them (``privaudit/unlearning``)."""

    requests: list[ErasureRequest] = Field(
        default_factory=list, description="served in order after training"
    )
    methods: list[str] = Field(
        default_factory=list,
        description="registered unlearners: gradient_ascent, graddiff, npo, sisa, "
        "finetune_retain, federaser; 'sisa' also trains the SISA shards",
    )
    oracle: bool = Field(
        default=True, description="retrain without the erased data (every speedup's denominator)"
    )
    ascent: AscentConfig = Field(default_factory=AscentConfig)
    sisa: SisaConfig = Field(default_factory=SisaConfig)
    finetune_retain: FinetuneRetainConfig = Field(default_factory=FinetuneRetainConfig)
    federaser: FedEraserConfig = Field(default_factory=FedEraserConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    robustness: RobustnessConfig = Field(default_factory=RobustnessConfig)

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: list[str]) -> list[str]:
        from privaudit.unlearning.registry import method_names

        known = method_names()
        unknown = [m for m in methods if m not in known]
        if unknown:
            raise ValueError(f"must be among {known}; unknown {unknown}")
        if len(set(methods)) != len(methods):
            raise ValueError("must be distinct")
        return methods

    @field_validator("requests")
    @classmethod
    def _distinct_requests(cls, requests: list[ErasureRequest]) -> list[ErasureRequest]:
        ids = [r.id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError(f"request ids must be distinct; got {ids}")
        return requests
