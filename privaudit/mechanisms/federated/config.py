"""The ``federation`` section of the config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from privaudit.core.params import ConfigSection


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
