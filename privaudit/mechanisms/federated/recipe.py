"""What a federation trains with: one value, from which every derived training is made.

A :class:`TrainingRecipe` holds the sections a training reads — the seed, the task, the
federation, ``privacy.dp`` and ``secure_aggregation`` — and nothing else of the config, so
that training, the oracle, the unlearning methods, SISA's shards and the reference models
take a recipe instead of the whole config (``AuditConfig.recipe`` in ``privaudit.audit``
makes the run's own). The derived trainings are methods: :meth:`TrainingRecipe.
with_federation` (a retraining's rounds, SISA's slices) and :meth:`TrainingRecipe.local`
(secure aggregation off, for a training that is one party's alone).

"What the clients train with" is computed here only (:meth:`TrainingRecipe.
training_federation`): under record-level DP, ``privacy.dp.batch_size`` and
``privacy.dp.learning_rate`` replace the federation's.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from privaudit.mechanisms.dp.config import DPConfig
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.secagg.config import SecureAggregationConfig


class TrainingRecipe(BaseModel):
    """The seed, task, federation, DP and secure-aggregation settings of one training."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int
    task: str
    federation: FederationConfig
    dp: DPConfig
    secure_aggregation: SecureAggregationConfig

    def training_federation(self) -> FederationConfig:
        """The federation settings clients train with: in record mode, ``privacy.dp.
        batch_size`` and ``privacy.dp.learning_rate`` (when given) replace the federation's."""
        if self.dp.mode != "record":
            return self.federation
        update: dict[str, Any] = {}
        if self.dp.batch_size is not None:
            update["batch_size"] = self.dp.batch_size
        if self.dp.learning_rate is not None:
            update["learning_rate"] = self.dp.learning_rate
        return self.federation.model_copy(update=update) if update else self.federation

    def with_federation(self, **overrides: Any) -> TrainingRecipe:
        """This recipe with some ``federation`` settings replaced (unvalidated, like
        ``model_copy``: callers pass values of the field's type)."""
        return self.model_copy(update={"federation": self.federation.model_copy(update=overrides)})

    def with_dp(self, **overrides: Any) -> TrainingRecipe:
        """This recipe with some ``privacy.dp`` settings replaced."""
        return self.model_copy(update={"dp": self.dp.model_copy(update=overrides)})

    def local(self) -> TrainingRecipe:
        """This recipe with secure aggregation off: for a training whose updates never leave
        one party (a SISA shard, a retraining on one machine), encryption adds only time."""
        if not self.secure_aggregation.enabled:
            return self
        he = self.secure_aggregation.model_copy(update={"enabled": False})
        return self.model_copy(update={"secure_aggregation": he})

    def quorum(self) -> tuple[int, str]:
        """The updates a round needs after dropouts, and the config field that sets it: the
        larger of ``federation.min_clients`` and, with secure aggregation on,
        ``secure_aggregation.min_clients``."""
        fed, he = self.federation.min_clients, self.secure_aggregation
        if he.enabled and he.min_clients > fed:
            return he.min_clients, "secure_aggregation.min_clients"
        return fed, "federation.min_clients"
