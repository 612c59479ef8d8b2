"""Reference (shadow) models for ``privaudit audit-model``, trained by privaudit with the
recipe the user declares for the audited adapter (``--references N --reference-recipe``).

- **Recipe** (:class:`ReferenceRecipe`, a YAML file): how the audited adapter was fine-tuned —
  epochs, batch size, learning rate, optimizer and optionally DP-SGD (the ``privacy.dp``
  fields of a run's config, record level). A model trained elsewhere was usually trained by
  one party, so each reference trains centrally (one client, one round of ``epochs`` local
  epochs) through the same :func:`~privaudit.mechanisms.federated.train.train_federation` as a
  run's references; the recipe file's sha256 and the resolved recipe are in the report.
- **Adapter**: the audited adapter's own LoRA configuration (its shape, targets, rank), on
  ``--base``. Every reference starts from one fresh LoRA initialisation (peft's default:
  A Kaiming-uniform, B zero, drawn from the audit's seed) with every ``modules_to_save``
  copy (a classification head) reset to the base's module: the audited adapter's own
  trained values are never a starting point, since they carry its members.
- **Population**: the audited members and non-members together with ``--population``
  (records the model never saw, from the same distribution), split by
  :func:`~privaudit.attacks.references.balanced_keep` into complementary halves, so each
  audited record is IN for exactly half of the references (LiRA online, RMIA). The
  ``--population`` records are also RMIA's population points z.

What references cannot show is said in the report: they are evidence only in so far as the
declared recipe is the one the audited model was trained with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, ValidationError, field_validator
from torch import nn

from privaudit.attacks.reference_plan import ReferencePlan
from privaudit.attacks.references import ReferenceSet, preserved_adapter, train_references
from privaudit.core.errors import ConfigError
from privaudit.core.params import ConfigSection, format_validation_error
from privaudit.core.progress import Reporter
from privaudit.core.safe_yaml import load_yaml_file
from privaudit.mechanisms.data.config import PartitionConfig
from privaudit.mechanisms.data.records import Record, load_records
from privaudit.mechanisms.dp.config import DPConfig
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.federated.recipe import TrainingRecipe
from privaudit.mechanisms.model.config import ModelConfig
from privaudit.mechanisms.models import AdapterState, ModelBundle, adapter_state
from privaudit.mechanisms.secagg.config import SecureAggregationConfig
from privaudit.mechanisms.tasks import EncodedSet

__all__ = ["ReferenceRecipe", "ReferenceRequest", "fresh_adapter", "load_recipe",
           "reference_request", "train_external_references", "trained_by"]


class ReferenceRecipe(ConfigSection):
    """How the audited adapter was fine-tuned; privaudit trains each reference the same way.

    >>> ReferenceRecipe(epochs=3, learning_rate=1e-3).dp.mode
    'none'
    """

    epochs: int = Field(default=1, ge=1, le=10_000,
                        description="passes over the training records")
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=5e-3, gt=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    dp: DPConfig = Field(default_factory=DPConfig,
                         description="DP-SGD as privacy.dp of a run's config (mode none or "
                         "record)")

    @field_validator("dp")
    @classmethod
    def _record_or_none(cls, dp: DPConfig) -> DPConfig:
        if dp.mode == "client":
            raise ValueError("mode must be none or record (a model trained by one party has "
                             "no client-level DP); got 'client'")
        return dp

    def training(self, *, seed: int, task: str) -> TrainingRecipe:
        """The recipe as privaudit's :class:`TrainingRecipe`: one round of ``epochs`` local
        epochs (the plan gives every half to one client), no secure aggregation."""
        fed = FederationConfig(clients=2, rounds=1, local_epochs=self.epochs,
                               batch_size=self.batch_size, learning_rate=self.learning_rate,
                               optimizer=self.optimizer)
        return TrainingRecipe(seed=seed, task=task, federation=fed, dp=self.dp,
                              secure_aggregation=SecureAggregationConfig(enabled=False))


def load_recipe(path: Path) -> ReferenceRecipe:
    """``--reference-recipe``: the YAML file, validated (ConfigError naming each field)."""
    document = load_yaml_file(path, what=f"--reference-recipe: {path}")
    try:
        return ReferenceRecipe.model_validate(document)
    except ValidationError as exc:
        problems = [f"--reference-recipe: {path}: {p}" for p in format_validation_error(exc)]
        raise ConfigError(problems[0], problems) from None


def fresh_adapter(model: nn.Module, base_state: AdapterState, *, seed: int) -> AdapterState:
    """A new LoRA initialisation of ``model``'s adapter (peft's default init, drawn from
    ``seed``), every other trained tensor as in ``base_state``; the model is unchanged."""
    from privaudit.mechanisms.model.lora_backend import LoraLayer

    with preserved_adapter(model):
        torch.manual_seed(seed)
        for module in model.modules():
            if isinstance(module, LoraLayer):
                for name in list(module.lora_A.keys()):
                    module.reset_lora_parameters(name, True)
        fresh = adapter_state(model)
    return {n: fresh[n] if "lora_" in n else base_state[n] for n in base_state}


def trained_by(recipe_name: str, population_name: str | None) -> str:
    """The report's sentence on how the references were made."""
    pool = "the audited members and non-members" + (
        f" and {population_name}" if population_name else "")
    return (f"trained by privaudit with the declared recipe {recipe_name} (one party, from a "
            f"fresh LoRA initialisation of the audited adapter's shape) on random halves of "
            f"{pool}; evidence only if the recipe is the one the audited model was trained "
            "with")


def train_external_references(
    recipe: ReferenceRecipe, *, count: int, bundle: ModelBundle, base: Path, task: str,
    population: Sequence[Record], encode: Callable[[list[Record]], EncodedSet],
    base_state: AdapterState, seed: int, cache_root: Path, reporter: Reporter,
) -> ReferenceSet:
    """``count`` references on halves of ``population`` (``bundle.model``'s adapter is
    unchanged on return)."""
    plan = ReferencePlan(recipe=recipe.training(seed=seed, task=task),
                         # the recipe hash's model; the cache lives in audit-model's new
                         # --out directory, so tokenization needs no key of its own
                         model=ModelConfig(base=str(base), task=task),  # type: ignore[arg-type]
                         partition=PartitionConfig(), count=count, central=True)
    initial = fresh_adapter(bundle.model, base_state, seed=seed)
    try:
        return train_references(plan, bundle, population, encode, initial_state=initial,
                                engine="inprocess", cache_root=cache_root, reporter=reporter)
    except ConfigError as exc:
        problems = [p.replace("attacks.references:", "--references:") for p in exc.problems]
        raise type(exc)(str(exc).replace("attacks.references:", "--references:"),
                        problems) from None


class ReferenceRequest:
    """``--references N --reference-recipe FILE [--population FILE]``, checked."""

    def __init__(self, count: int, recipe: ReferenceRecipe, recipe_path: Path,
                 population: list[Record], population_path: Path | None) -> None:
        self.count, self.recipe, self.recipe_path = count, recipe, recipe_path
        self.population, self.population_path = population, population_path

    def battery(self, task: str) -> list[tuple[str, dict[str, str]]]:
        """The reference attacks these references can run on ``task``: LiRA online and
        offline with at least 4, and for a classifier RMIA (online) with population points."""
        out: list[tuple[str, dict[str, str]]] = []
        if self.count >= 4:
            out += [("lira", {}), ("lira", {"mode": "offline"})]
        if self.population and task == "classification":
            out.append(("rmia", {}))
        return out

    def described(self) -> str:
        return trained_by(self.recipe_path.name,
                          self.population_path.name if self.population_path else None)


def reference_request(count: int, recipe: Path | None, population: Path | None, *,
                      adapter: Path | None, need_label: bool,
                      audited: Sequence[Record]) -> ReferenceRequest | None:
    """The reference options, checked together (ConfigError naming the option)."""
    if count == 0 and recipe is None and population is None:
        return None
    if count == 0 or recipe is None:
        raise ConfigError("--references N and --reference-recipe FILE come together (N "
                          "reference models trained by the declared recipe); --population "
                          f"is optional (got --references {count}, --reference-recipe "
                          f"{recipe})")
    if count < 2 or count % 2:
        raise ConfigError(f"--references: must be an even number >= 2 (complementary pairs "
                          f"of halves); got {count}")
    if adapter is None:
        raise ConfigError("--references: needs --adapter (each reference is a LoRA adapter "
                          "of the audited adapter's shape, trained on --base)")
    loaded = load_recipe(recipe)
    records = [] if population is None else load_records(population, need_label=need_label)
    both = sorted({r.id for r in records} & {r.id for r in audited})
    if both:
        raise ConfigError(f"--population: {len(both)} record id(s) are also audited (first: "
                          f"{both[:3]}); the population is records the model never saw, "
                          "besides --members and --nonmembers")
    request = ReferenceRequest(count, loaded, recipe, records, population)
    if not request.battery("classification" if need_label else "causal-lm"):
        raise ConfigError(f"--references: {count} reference models run no attack here "
                          "(LiRA needs at least 4; RMIA, a classifier's only, needs "
                          f"--population's records as its population points); got {count}")
    return request
