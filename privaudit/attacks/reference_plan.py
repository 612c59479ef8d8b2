"""How the reference (shadow) models train: the run's :class:`TrainingRecipe` with
``attacks.references`` applied, and the two sections that decide their data (the model, for
the task and the recipe hash; the partition, to split each half over the clients).

- ``references.overrides`` is deep-merged into ``federation`` and ``privacy`` (the only
  sections it may name), and each merged section is validated again: an override that does
  not make a valid section is a config problem named ``attacks.references.overrides: …``.
- Secure aggregation is off unless ``references.secure_aggregation``.
- With DP noise calibrated to ``privacy.dp.target_epsilon`` and the overrides leaving
  ``privacy.dp`` alone, the references take the target's calibrated σ instead: the same
  noise and clipping per step (a reference's client holds fewer records, so recalibrating
  to ε would give it another σ — and cost one accountant search per reference).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from privaudit.attacks.config import ReferencesConfig
from privaudit.core.errors import ConfigError
from privaudit.core.params import ConfigSection, format_validation_error, merge_patch
from privaudit.mechanisms.data.config import PartitionConfig
from privaudit.mechanisms.data.partition import partition_records
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.dp.config import PrivacyConfig
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.federated.recipe import TrainingRecipe
from privaudit.mechanisms.model.config import ModelConfig

__all__ = ["ReferencePlan", "override_problems", "reference_plan", "reference_seed"]

_VERSION = 1  # of the recipe hash: bump when the way references train changes


class _Overridable(ConfigSection):
    """The sections ``references.overrides`` may change, validated as the config does."""

    federation: FederationConfig
    privacy: PrivacyConfig


def _overridden(
    recipe: TrainingRecipe, refs: ReferencesConfig, noise_multiplier: float | None
) -> _Overridable:
    raw: dict[str, Any] = merge_patch({
        "federation": recipe.federation.model_dump(mode="json"),
        "privacy": {"dp": recipe.dp.model_dump(mode="json")},
    }, refs.overrides)
    dp = raw["privacy"]["dp"]
    overridden = "dp" in refs.overrides.get("privacy", {})
    if (noise_multiplier is not None and dp["mode"] != "none"
            and dp.get("target_epsilon") is not None and not overridden):
        dp["noise_multiplier"], dp["target_epsilon"] = float(noise_multiplier), None
    return _Overridable.model_validate(raw)


def override_problems(recipe: TrainingRecipe, refs: ReferencesConfig) -> list[str]:
    """Why ``refs.overrides`` does not make a valid federation and privacy section (empty:
    it does), each named ``attacks.references.overrides: <section>.<field>: …``."""
    if not refs.overrides:
        return []
    try:
        _overridden(recipe, refs, None)
    except ValidationError as exc:
        return [f"attacks.references.overrides: {p}" for p in format_validation_error(exc)]
    return []


def reference_seed(seed: int, j: int) -> int:
    """Reference ``j``'s seed (its partition and its training), from the run's seed."""
    digest = hashlib.sha256(f"privaudit-reference:{seed}:{j}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


@dataclass(frozen=True)
class ReferencePlan:
    """``count`` references and how each trains (see the module docstring)."""

    recipe: TrainingRecipe
    model: ModelConfig
    partition: PartitionConfig
    count: int
    #: one party trains on all its records (``audit-model``'s references of a model trained
    #: centrally): every half goes to one client, ``partition`` is not used
    central: bool = False

    def with_count(self, count: int) -> ReferencePlan:
        """The same references, ``count`` of them (keep masks are nested across counts)."""
        return replace(self, count=count)

    def recipe_sha256(self, *, base_sha256: str, adapter_config_sha256: str,
                      initial_sha256: str, engine: str) -> str:
        """Hash of everything that decides how a reference trains, except its data (and
        the count: the first ``2m`` of a larger set are a valid set of ``2m``)."""
        blob = {
            "version": _VERSION,
            "model": self.model.model_dump(mode="json"),
            "federation": self.recipe.federation.model_dump(mode="json"),
            "privacy": {"dp": self.recipe.dp.model_dump(mode="json")},
            "secure_aggregation": self.recipe.secure_aggregation.model_dump(mode="json"),
            "partition": self.partition.model_dump(mode="json"),
            "seed": self.recipe.seed,
            "base": base_sha256,
            "adapter_config": adapter_config_sha256,
            "initial": initial_sha256,
            "engine": engine,
        }
        if self.central:  # absent otherwise: the hashes of a run's references are unchanged
            blob["central"] = True
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()

    def clients_of(self, inside: Sequence[Record], j: int) -> dict[str, list[Record]]:
        """Reference ``j``'s records ``inside`` split over its clients, with the run's
        partition scheme and the reference's own seed (one client "central" when
        :attr:`central`)."""
        if self.central:
            return {"central": list(inside)}
        part = self.partition
        return partition_records(
            inside, k=self.recipe.federation.clients, scheme=part.scheme,
            seed=reference_seed(self.recipe.seed, j), alpha=part.alpha, field_name=part.field,
            keep_subjects_together=part.keep_subjects_together,
        )


def reference_plan(
    recipe: TrainingRecipe,
    refs: ReferencesConfig,
    *,
    model: ModelConfig,
    partition: PartitionConfig,
    noise_multiplier: float | None = None,
    count: int | None = None,
) -> ReferencePlan:
    """The plan of ``refs.count`` references (or ``count``) for a run training with
    ``recipe``; ``noise_multiplier``: the target's calibrated DP noise (module docstring)."""
    try:
        sections = _overridden(recipe, refs, noise_multiplier)
    except ValidationError as exc:
        problems = [f"attacks.references.overrides: {p}" for p in format_validation_error(exc)]
        raise ConfigError(f"{len(problems)} problem(s) in the config", problems) from None
    he = recipe.secure_aggregation
    if not refs.secure_aggregation and he.enabled:
        he = he.model_copy(update={"enabled": False})
    ref_recipe = recipe.model_copy(update={
        "federation": sections.federation, "dp": sections.privacy.dp, "secure_aggregation": he})
    return ReferencePlan(recipe=ref_recipe, model=model, partition=partition,
                         count=refs.count if count is None else count)
