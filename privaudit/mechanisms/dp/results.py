"""The DP card of the report (``report.json`` → ``privacy.dp``): result types only.

Built by :func:`privaudit.mechanisms.dp.card.build_dp_card`; here so that reading a report
(the gate, the renderers) needs neither torch nor Opacus.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from privaudit.core.params import ConfigSection, ReportModel


class DeltaVsN(BaseModel):
    """δ against 1/N, N the number of units (records of the smallest client, or clients)."""

    model_config = ConfigDict(extra="forbid")

    n: int
    one_over_n: float
    delta_times_n: float
    delta_below_1_over_n: bool


class ClientDP(BaseModel):
    """One client's own guarantee; σ is the smallest and q the largest over its rounds."""

    model_config = ConfigDict(extra="forbid")

    client_id: str
    epsilon: float
    steps: int
    sample_rate: float | None
    noise_multiplier: float | None
    n_records: int


class SubjectLevelRow(BaseModel):
    """The guarantee for a data subject with ``k`` records, at the run's δ."""

    model_config = ConfigDict(extra="forbid")

    k: int
    epsilon: float
    delta: float


class DPCard(BaseModel):
    """``privacy.dp`` of report.json. Top-level σ, q and steps are those of the client with
    the largest ε (the one that sets the federation's guarantee)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    epsilon: float | None = None
    delta: float | None = None
    unit_of_privacy: Literal["record", "client"] | None = None
    subject_level_epsilon: float | None = None
    subject_level_delta: float | None = None
    #: "direct": the k records accounted as one mixture-of-Gaussians mechanism per step
    #: (mechanisms/dp/group.py); "group_privacy": (kε, k·e^{(k−1)ε}·δ)
    subject_level_method: Literal["direct", "group_privacy"] | None = None
    #: why there is no subject-level guarantee, when there is none (ε and δ then None)
    subject_level_none: str | None = None
    subject_level_table: list[SubjectLevelRow] = []
    accountant: str | None = None
    noise_multiplier: float | None = None
    max_grad_norm: float | None = None
    clip_norm: float | None = None
    sample_rate: float | None = None
    steps: int | None = None
    clients: list[ClientDP] = []
    definition: str | None = None
    neighbouring_relation: str | None = None
    composition_scope: str | None = None
    sampling_assumption: str | None = None
    delta_vs_1_over_n: DeltaVsN | None = None
    trust_model: str | None = None
    epsilon_per_round: list[float] = []
    max_records_per_subject: int | None = None


class DeclaredDP(ConfigSection):
    """A DP guarantee declared for a model privaudit did not train (``privaudit audit-model
    --dp-claim claim.yaml``). privaudit states it next to the empirical results and tests it
    from below with the attacks; it cannot check the accounting behind it."""

    epsilon: float = Field(gt=0, description="the claimed ε")
    delta: float = Field(ge=0, lt=1, description="the claimed δ")
    unit_of_privacy: Literal["record", "subject", "client"] = Field(
        default="record", description="what one protected unit is")
    accountant: str | None = Field(default=None, description="how the trainer computed ε")
    source: str | None = Field(default=None, description="who declares it, where (free text)")


class DeclaredDPRow(ReportModel):
    """One operating point tested against a declared claim: an (ε, δ)-DP model lets no
    attack reach a TPR above ``max_tpr_allowed`` at a true FPR of ``fpr_upper``."""

    attack: str
    model: str
    fpr: str = Field(description="the target FPR of the attack's TPR")
    fpr_upper: float = Field(description="upper confidence bound of the true FPR there")
    tpr_ci_low: float
    max_tpr_allowed: float
    contradicts: bool


class DeclaredDPCheck(ReportModel):
    """A declared DP claim (``claim``) tested from below by the membership attacks: the claim
    is contradicted when an attack's TPR is above what (ε, δ)-DP allows, with confidence.
    Valid as a test only when members were drawn at random from the pool the non-members
    come from (the blind baseline checks the texts, it cannot prove the draw)."""

    claim: DeclaredDP
    rows: list[DeclaredDPRow] = Field(default_factory=list)
    contradicted: bool
    informative: bool = Field(description="False when no tested FPR could have shown the "
                              "claim false, even had the attack found every member")
    nonmembers_needed: int | None = Field(
        default=None, description="held-out non-members at which the smallest resolvable FPR "
        "could contradict the claim (10/FPR rule); None when informative")
