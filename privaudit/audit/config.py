"""The whole run as one YAML file, validated by pydantic models.

``load_config(path)`` reads YAML with ``safe_load`` and returns an :class:`AuditConfig`; every
problem is collected first and raised together as one :class:`ConfigError` whose ``problems``
read ``path.to.field: reason (got VALUE)``. Unknown keys are errors everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    Field,
    ValidationError,
)

from privaudit.attacks.config import AttacksConfig as AttacksConfig
from privaudit.attacks.config import AttackSpec as AttackSpec
from privaudit.attacks.config import DpAuditConfig as DpAuditConfig
from privaudit.attacks.config import DpAuditGuesses as DpAuditGuesses
from privaudit.attacks.config import ReferencesConfig as ReferencesConfig
from privaudit.core.errors import ConfigError
from privaudit.core.params import ConfigSection, format_validation_error
from privaudit.core.params import describe_value as _describe
from privaudit.gate.config import GateConfig as GateConfig
from privaudit.mechanisms.data.config import AuditSplitConfig as AuditSplitConfig
from privaudit.mechanisms.data.config import CanaryConfig as CanaryConfig
from privaudit.mechanisms.data.config import DataConfig as DataConfig
from privaudit.mechanisms.data.config import PartitionConfig as PartitionConfig
from privaudit.mechanisms.data.config import SyntheticCorpusConfig as SyntheticCorpusConfig
from privaudit.mechanisms.dp.config import DPConfig as DPConfig
from privaudit.mechanisms.dp.config import PrivacyConfig as PrivacyConfig
from privaudit.mechanisms.federated.config import FederationConfig as FederationConfig
from privaudit.mechanisms.federated.recipe import TrainingRecipe
from privaudit.mechanisms.model.config import LoraConfig as LoraConfig
from privaudit.mechanisms.model.config import ModelConfig as ModelConfig
from privaudit.mechanisms.model.config import PretrainConfig as PretrainConfig
from privaudit.mechanisms.model.config import TinyModelConfig as TinyModelConfig
from privaudit.mechanisms.secagg.config import SecureAggregationConfig
from privaudit.reports.config import ReportConfig as ReportConfig
from privaudit.unlearning.config import AscentConfig as AscentConfig
from privaudit.unlearning.config import FedEraserConfig as FedEraserConfig
from privaudit.unlearning.config import FinetuneRetainConfig as FinetuneRetainConfig
from privaudit.unlearning.config import SisaConfig as SisaConfig
from privaudit.unlearning.config import UnlearningConfig as UnlearningConfig
from privaudit.unlearning.config import VerifyConfig as VerifyConfig


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

    @property
    def recipe(self) -> TrainingRecipe:
        """What the run's federation trains with (seed, task, federation, DP, secure
        aggregation): the slice of the config that training takes."""
        return TrainingRecipe(seed=self.seed, task=self.model.task, federation=self.federation,
                              dp=self.privacy.dp, secure_aggregation=self.secure_aggregation)

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
        if path.is_dir():
            from privaudit.mechanisms.data.columnar import dataset_dir_problem

            why = dataset_dir_problem(path)
            if why:
                problems.append(f"data.path: {why} (got {_describe(str(data.path))})")
        elif not path.is_file():
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
    from privaudit.attacks.validate import attack_problems

    problems += attack_problems(cfg.attacks, recipe=cfg.recipe)
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
