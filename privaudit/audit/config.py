"""The whole run as one YAML file, validated by pydantic models.

``load_config(path)`` reads YAML with ``safe_load`` and returns an :class:`AuditConfig`; every
problem is collected first and raised together as one :class:`ConfigError` whose ``problems``
read ``path.to.field: reason (got VALUE)``. Unknown keys are errors everywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from privaudit.core.errors import ConfigError
from privaudit.core.params import ConfigSection, format_validation_error
from privaudit.core.params import describe_value as _describe
from privaudit.mechanisms.dp.config import DPConfig
from privaudit.mechanisms.secagg.config import SecureAggregationConfig
from privaudit.unlearning.requests import ErasureRequest

# --- data -----------------------------------------------------------------------------------


class SyntheticCorpusConfig(ConfigSection):
    """A seeded Faker corpus of data subjects with personal details (see ``data/corpus.py``)."""

    subjects: int = Field(default=240, ge=10, le=1_000_000, description="number of data subjects")
    min_records: int = Field(default=2, ge=1, le=1000, description="fewest records per subject")
    max_records: int = Field(default=4, ge=1, le=1000, description="most records per subject")
    locale: str = "en_US"
    label_noise: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="fraction of messages routed to the subject's usual department "
        "whatever their topic (only memorisation learns these)",
    )

    @model_validator(mode="after")
    def _records_range(self) -> SyntheticCorpusConfig:
        if self.max_records < self.min_records:
            raise ValueError(
                f"max_records must be >= min_records (= {self.min_records}); "
                f"got {self.max_records}"
            )
        return self


class PartitionConfig(ConfigSection):
    """How training records are spread over the clients."""

    scheme: Literal["iid", "dirichlet", "by_field"] = "iid"
    alpha: float = Field(default=0.5, gt=0, description="Dirichlet concentration over labels")
    field: str | None = Field(default=None, description="record field naming the client")
    keep_subjects_together: bool = Field(
        default=True, description="all records of one subject stay on one client"
    )

    @model_validator(mode="after")
    def _field_needed(self) -> PartitionConfig:
        if self.scheme == "by_field" and not self.field:
            raise ValueError("scheme 'by_field' needs 'field' (the record field naming the client)")
        return self


class AuditSplitConfig(ConfigSection):
    """Members sampled from training records; non-members held out from the same distribution."""

    members: int = Field(default=200, ge=1)
    nonmembers: int = Field(default=200, ge=1)


class DataConfig(ConfigSection):
    source: Literal["synthetic", "file"] = "synthetic"
    synthetic: SyntheticCorpusConfig = Field(default_factory=SyntheticCorpusConfig)
    path: Path | None = Field(default=None, description="JSONL or CSV file (source: file)")
    test_records: int = Field(default=200, ge=1, description="held-out records for utility")
    public_records: int = Field(
        default=0, ge=0, description="held-out public records (pretraining a causal LM)"
    )
    partition: PartitionConfig = Field(default_factory=PartitionConfig)
    audit: AuditSplitConfig = Field(default_factory=AuditSplitConfig)
    exclude_subjects: list[str] = Field(default_factory=list)
    exclude_records: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _path_for_file(self) -> DataConfig:
        if self.source == "file" and self.path is None:
            raise ValueError("source 'file' needs 'path' (a JSONL or CSV file)")
        return self


# --- model ----------------------------------------------------------------------------------


class LoraConfig(ConfigSection):
    rank: int = Field(default=8, ge=1)
    alpha: float = Field(default=16.0, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: list[str] | None = Field(
        default=None,
        min_length=1,
        description="modules that get LoRA; default: attention query and value projections",
    )
    top_layers: int | None = Field(
        default=None,
        ge=1,
        description="LoRA on the top k transformer layers only; the frozen layers below are "
        "computed once per record and cached (default: LoRA on every layer)",
    )


class TinyModelConfig(ConfigSection):
    """Architecture of a model built from a config (``base: tiny``): small, for tests."""

    layers: int = Field(default=2, ge=1, le=12)
    hidden: int = Field(default=64, ge=8, le=1024)
    heads: int = Field(default=2, ge=1)
    intermediate: int = Field(default=128, ge=8)

    @model_validator(mode="after")
    def _heads_divide(self) -> TinyModelConfig:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        return self


class PretrainConfig(ConfigSection):
    """Brief pretraining of a tiny causal LM on the public split (cached by config hash)."""

    epochs: int = Field(default=2, ge=0)
    learning_rate: float = Field(default=3e-3, gt=0)


class ModelConfig(ConfigSection):
    task: Literal["classification", "causal-lm"] = "classification"
    base: str = Field(
        default="minilm",
        description="'minilm' (the bundled MiniLM), 'tiny' (built from model.tiny), "
        "or a local Hugging Face model directory",
    )
    tiny: TinyModelConfig = Field(default_factory=TinyModelConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    max_length: int = Field(default=64, ge=8, le=512)
    lora: LoraConfig = Field(default_factory=LoraConfig)


# --- federation, privacy, the rest ------------------------------------------------------------


class FederationConfig(ConfigSection):
    clients: int = Field(default=4, ge=2, le=10_000, description="number of clients K")
    rounds: int = Field(default=3, ge=1)
    local_epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=5e-3, gt=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    weighting: Literal["examples", "uniform"] = "examples"
    client_timeout: float | None = Field(
        default=None,
        gt=0,
        description="seconds a client may take for one round; a slower one is dropped from "
        "that round (in-process: measured after the fact, see engine.py)",
    )
    min_clients: int = Field(
        default=1,
        ge=1,
        description="clients whose updates a round needs after dropouts, else the run stops "
        "(with secure aggregation, secure_aggregation.min_clients also holds)",
    )

    @model_validator(mode="after")
    def _min_clients_at_most_clients(self) -> FederationConfig:
        if self.min_clients > self.clients:
            raise ValueError(
                f"min_clients must be <= clients (= {self.clients}), or every round fails "
                f"(got {self.min_clients})"
            )
        return self


class PrivacyConfig(ConfigSection):
    dp: DPConfig = Field(default_factory=DPConfig)


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


class CanaryConfig(ConfigSection):
    """Secret canaries for causal LMs (Carlini et al., "The Secret Sharer", 2019).

    ``count`` secrets of ``digits`` random digits, each written into the text of
    ``insertions[i % len(insertions)]`` training records; exposure ranks each secret among
    ``candidates`` random secrets of the same format.
    """

    count: int = Field(default=0, ge=0, description="secret canaries; 0 = none")
    insertions: list[int] = Field(
        default_factory=lambda: [1, 4, 16],
        min_length=1,
        description="training records that carry each canary, cycled over the canaries",
    )
    template: str = Field(
        default="my account pin is {secret}", description="the canary sentence; has {secret}"
    )
    digits: int = Field(default=6, ge=3, le=12, description="the secret: this many digits")
    candidates: int = Field(
        default=2000, ge=10, description="random secrets sampled to estimate each rank"
    )
    method: Literal["skewnorm", "normal", "empirical"] = Field(
        default="skewnorm", description="rank extrapolation (skewnorm: the paper's)"
    )

    @model_validator(mode="after")
    def _template_and_insertions(self) -> CanaryConfig:
        if self.template.count("{secret}") != 1:
            raise ValueError(f"template must contain '{{secret}}' once; got {self.template!r}")
        if any(i < 1 for i in self.insertions):
            raise ValueError(f"insertions must all be >= 1; got {self.insertions}")
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
    kind: Literal["mislabeled", "secret", "auto"] = Field(
        default="auto",
        description="mislabeled records (classification) or random secrets (causal LM); "
        "auto picks by model.task",
    )
    guesses: DpAuditGuesses = Field(default_factory=DpAuditGuesses)
    confidence: float = Field(
        default=0.95, gt=0, lt=1, description="1 - p* of the one-run bound; CP level of ROC"
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
        description="stop once the forget set's mean loss reaches stop_ratio × the held-out "
        "non-members' mean loss (no oracle needed)",
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
        "(negative) or over_unlearned (positive) fires, when the forget AUC's CI also "
        "excludes the oracle's AUC")
    utility_drop_max: float = Field(
        default=0.2, gt=0, lt=1, description="relative utility drop beyond which "
        "utility_collapse fires")
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

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: list[str]) -> list[str]:
        from privaudit.unlearning.base import available_unlearners

        known = available_unlearners()
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


class ReportConfig(ConfigSection):
    title: str = "Privacy audit of federated fine-tuning"
    formats: list[Literal["html", "pdf", "md"]] = Field(
        default_factory=lambda: ["html", "pdf", "md"],  # type: ignore[arg-type]
        description="renderings of report.json; pdf needs headless Chromium (without it the "
        "run still succeeds and the report says the PDF was not rendered)",
    )
    sign_key: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs manifest.json into manifest.sig "
        "(privaudit keygen); the CLI's --sign overrides it",
    )


class GateConfig(ConfigSection):
    """Where the CI policy lives (the gate reads a separate policy file)."""

    policy: Path | None = None


class BudgetConfig(ConfigSection):
    """Limits checked against the up-front estimate before any work (``audit/estimate.py``).

    ``privaudit run`` / ``demo`` print the estimate (training steps: rounds × clients × local
    epochs × ⌈n/B⌉ for the target, each reference model, each oracle retraining, SISA and the
    other unlearning methods); a run whose estimate exceeds a limit is refused with exit 2,
    naming the knobs that shrink it. Absent = no limit. Not part of the config's hash (a
    budget does not change what a run computes).
    """

    max_training_steps: int | None = Field(
        default=None, ge=1, description="most training steps (mini-batches on one client) of "
        "the whole run; turn federation.rounds, federation.local_epochs, "
        "attacks.references.count or unlearning.* down to fit")
    max_reference_models: int | None = Field(
        default=None, ge=0, description="most reference models (attacks.references.count)")


class AuditConfig(ConfigSection):
    """One run of privaudit: prepare → train → attack → report."""

    name: str = "privaudit-run"
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="seeds every random choice "
                      "(torch and numpy take at most 2**32 - 1)")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    federation: FederationConfig = Field(default_factory=FederationConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    secure_aggregation: SecureAggregationConfig = Field(default_factory=SecureAggregationConfig)
    unlearning: UnlearningConfig = Field(default_factory=UnlearningConfig)
    attacks: AttacksConfig = Field(default_factory=AttacksConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)

    def to_yaml(self) -> str:
        """The resolved config (defaults filled in), as written to the run directory."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def sha256(self) -> str:
        import hashlib

        blob = json.dumps(self.model_dump(mode="json", exclude={"budget"}),
                          sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def semantic_problems(cfg: AuditConfig, *, base_dir: Path | None = None) -> list[str]:
    """Cross-field checks that pydantic field constraints cannot express."""
    problems: list[str] = []
    data = cfg.data
    if data.source == "file" and data.path is not None:
        path = data.path if data.path.is_absolute() or base_dir is None else base_dir / data.path
        if not path.is_file():
            problems.append(f"data.path: file not found (got {_describe(str(data.path))})")
    if data.source == "synthetic":
        most = data.synthetic.subjects * data.synthetic.max_records
        needed = data.test_records + data.audit.nonmembers + data.public_records
        if needed >= most:
            problems.append(
                "data.synthetic.subjects: too few for the held-out splits "
                f"(test + non-members + public = {needed} records; the corpus has at most {most})"
            )
    tiny_lm = cfg.model.task == "causal-lm" and cfg.model.base == "tiny"
    if tiny_lm and data.public_records == 0 and cfg.model.pretrain.epochs > 0:
        problems.append(
            "data.public_records: a tiny causal LM is pretrained on the public split; "
            "give public_records > 0 or set model.pretrain.epochs: 0 (got 0)"
        )
    sisa = cfg.unlearning.sisa
    by_client = "sisa" in cfg.unlearning.methods and sisa.shard_by == "clients"
    if by_client and sisa.shards != cfg.federation.clients:
        problems.append(
            "unlearning.sisa.shards: with shard_by 'clients' every client is a shard, so "
            f"shards must equal federation.clients (= {cfg.federation.clients}); "
            f"got {sisa.shards}"
        )
    if cfg.federation.rounds * cfg.federation.local_epochs > 1000:
        problems.append(
            "federation.rounds: rounds × local_epochs must be at most 1000 "
            f"(got {cfg.federation.rounds} × {cfg.federation.local_epochs})"
        )
    if cfg.secure_aggregation.enabled:  # HE parameters need no data: refuse them here too
        from privaudit.mechanisms.secagg.params import check_params

        problems += check_params(cfg.secure_aggregation)
    from privaudit.attacks.validate import attack_problems  # here: attacks import this module

    problems += attack_problems(cfg)
    return problems


def config_from_dict(raw: Any, *, base_dir: Path | None = None) -> AuditConfig:
    """Validate a parsed config; raise one ConfigError listing every problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            "config: must be a mapping", [f"(top level): must be a mapping (got {_describe(raw)})"]
        )
    try:
        cfg = AuditConfig.model_validate(raw)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        raise ConfigError(f"{len(problems)} problem(s) in the config", problems) from None
    problems = semantic_problems(cfg, base_dir=base_dir)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in the config", problems)
    if cfg.data.path is not None and base_dir is not None and not cfg.data.path.is_absolute():
        cfg.data.path = (base_dir / cfg.data.path).resolve()
    return cfg


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate a YAML config file (``yaml.SafeLoader``, bounded: ``safe_yaml``)."""
    from privaudit.core.safe_yaml import load_yaml_file

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: file not found: {path}", [f"config: file not found ({path})"])
    raw = load_yaml_file(path, what="config")  # bounded: no alias bomb, depth, UTF-8
    return config_from_dict(raw, base_dir=path.parent)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the config (``privaudit config schema``)."""
    return AuditConfig.model_json_schema()
