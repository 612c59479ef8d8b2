"""The DP card: the report's ``privacy.dp`` section, with the items NIST SP 800-226
("Guidelines for Evaluating Differential Privacy Guarantees", 2025) asks a deployment to
state: definition, neighbouring relation, unit of privacy, ε, δ (against 1/N), accountant,
composition scope, sampling assumption, clip norm, noise multiplier, steps, sample rate and
trust model. ε is the guarantee of the whole federation, never a per-round figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from privaudit.audit.errors import InternalError, PrivacyBudgetError
from privaudit.mechanisms.dp.accounting import (
    ClientAccountant,
    federation_epsilon_per_round,
    group_privacy,
)
from privaudit.mechanisms.dp.config import DPConfig

DEFINITION = "approximate DP ((ε, δ))"
_RECORD = {
    "neighbouring_relation": "add/remove one record",
    "composition_scope": (
        "every noisy step of every round of each client over the whole federation (one "
        "accountant per client); federation ε = max over clients (disjoint data); released "
        "models are post-processing"
    ),
    "sampling_assumption": "Poisson (records, per local step)",
    "trust_model": (
        "each client trusts only itself with its records; the guarantee holds against the "
        "server, the other clients and anyone who sees the released models; secure "
        "aggregation hides single updates but does not lower ε"
    ),
}
_CLIENT = {
    "neighbouring_relation": "add/remove one client (all of its records)",
    "composition_scope": "every round of the federation (one federation accountant)",
    "sampling_assumption": "Poisson (clients, per round)",
    "trust_model": (
        "the aggregator (the key holder under secure aggregation) is trusted to clip, weight "
        "uniformly with a fixed denominator and add the noise; the guarantee holds against "
        "the other clients and anyone who sees the released models"
    ),
}


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


def _client_entry(cid: str, acc: ClientAccountant, delta: float, n: int) -> ClientDP:
    rounds = [e for e in acc.rounds if e.num_steps > 0]
    return ClientDP(
        client_id=cid,
        epsilon=acc.epsilon(delta),
        steps=acc.total_steps,
        sample_rate=max((e.sample_rate for e in rounds), default=None),
        noise_multiplier=min((e.noise_multiplier for e in rounds), default=None),
        n_records=n,
    )


def _delta_vs_n(delta: float, n: int) -> DeltaVsN:
    return DeltaVsN(
        n=n, one_over_n=1 / n, delta_times_n=delta * n, delta_below_1_over_n=delta * n < 1
    )


def build_dp_card(
    cfg: DPConfig,
    accountants: Mapping[str, ClientAccountant],
    client_sizes: Mapping[str, int],
    max_records_per_subject: int,
    *,
    max_clients_per_subject: int | None = None,
) -> DPCard:
    """The card of a finished (or resumed) run. Record mode: ``accountants`` maps each client
    id to its accountant. Client mode: one entry, the federation accountant; the
    subject-level guarantee is group privacy over the clients one subject's records can
    span (``max_clients_per_subject``, else at most min(records per subject, clients))."""
    if cfg.mode == "none":
        return DPCard(enabled=False)
    if cfg.delta is None:
        raise PrivacyBudgetError(f"privacy.dp.delta: required with mode={cfg.mode} (got None)")
    if not accountants:
        raise InternalError("build_dp_card needs the accountants of the run")
    mechanisms = {acc.mechanism for acc in accountants.values()}
    if len(mechanisms) != 1:
        raise InternalError(f"the run's accountants use different mechanisms: {sorted(mechanisms)}")
    delta = cfg.delta
    ids = list(client_sizes)
    if cfg.mode == "record":
        if set(accountants) != set(ids):
            raise InternalError("record mode needs one accountant per client of client_sizes")
        clients = [_client_entry(c, accountants[c], delta, client_sizes[c]) for c in ids]
        worst = max(clients, key=lambda c: c.epsilon)
        group_k, n_units, text = max_records_per_subject, min(client_sizes.values()), _RECORD
    else:
        if len(accountants) != 1:
            raise InternalError("client mode takes one federation accountant")
        worst = _client_entry("federation", next(iter(accountants.values())), delta, 0)
        clients = [
            worst.model_copy(update={"client_id": c, "n_records": client_sizes[c]}) for c in ids
        ]
        group_k = max_clients_per_subject or min(max_records_per_subject, len(ids))
        n_units, text = len(ids), _CLIENT
    subject_eps, subject_delta = group_privacy(worst.epsilon, delta, group_k)
    return DPCard(
        enabled=True,
        epsilon=worst.epsilon,
        delta=delta,
        unit_of_privacy=cfg.mode,
        subject_level_epsilon=subject_eps,
        subject_level_delta=subject_delta,
        accountant=mechanisms.pop(),
        noise_multiplier=worst.noise_multiplier,
        max_grad_norm=cfg.max_grad_norm if cfg.mode == "record" else None,
        clip_norm=cfg.clip_norm if cfg.mode == "client" else None,
        sample_rate=worst.sample_rate,
        steps=worst.steps,
        clients=clients,
        definition=DEFINITION,
        neighbouring_relation=text["neighbouring_relation"],
        composition_scope=text["composition_scope"],
        sampling_assumption=text["sampling_assumption"],
        delta_vs_1_over_n=_delta_vs_n(delta, n_units),
        trust_model=text["trust_model"],
        epsilon_per_round=federation_epsilon_per_round(accountants, delta),
        max_records_per_subject=max_records_per_subject,
    )
