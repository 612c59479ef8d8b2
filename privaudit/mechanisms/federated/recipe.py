"""What a federation trains with: one value, from which every derived training is made.

A :class:`TrainingRecipe` holds the sections a training reads — the seed, the task, the
federation, ``privacy.dp`` and ``secure_aggregation`` — and nothing else of the config, so
that training, the oracle, the unlearning methods, SISA's shards and the reference models
take a recipe instead of the whole :class:`~privaudit.audit.config.AuditConfig`
(:attr:`AuditConfig.recipe <privaudit.audit.config.AuditConfig.recipe>`).

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

    def quorum(self) -> tuple[int, str]:
        """The updates a round needs after dropouts, and the config field that sets it: the
        larger of ``federation.min_clients`` and, with secure aggregation on,
        ``secure_aggregation.min_clients``."""
        fed, he = self.federation.min_clients, self.secure_aggregation
        if he.enabled and he.min_clients > fed:
            return he.min_clients, "secure_aggregation.min_clients"
        return fed, "federation.min_clients"
