"""The DP card: the report's ``privacy.dp`` section, with the items NIST SP 800-226
("Guidelines for Evaluating Differential Privacy Guarantees", 2025) asks a deployment to
state: definition, neighbouring relation, unit of privacy, ε, δ (against 1/N), accountant,
composition scope, sampling assumption, clip norm, noise multiplier, steps, sample rate and
trust model. ε is the guarantee of the whole federation, never a per-round figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privaudit.core.errors import InternalError, PrivacyBudgetError
from privaudit.mechanisms.dp.accounting import (
    ClientAccountant,
    federation_epsilon_per_round,
    group_privacy,
)
from privaudit.mechanisms.dp.config import DPConfig
from privaudit.mechanisms.dp.group import group_delta_is_vacuous, subject_epsilon
from privaudit.mechanisms.dp.results import ClientDP as ClientDP
from privaudit.mechanisms.dp.results import DeltaVsN as DeltaVsN
from privaudit.mechanisms.dp.results import DPCard as DPCard
from privaudit.mechanisms.dp.results import SubjectLevelRow as SubjectLevelRow

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


#: the subject-level table lists k = 1..this (and the largest subject's k)
_TABLE_K = 8


def _direct_subject_level(accountants: Mapping[str, ClientAccountant], delta: float, k: int,
                          spread: int | None, record_epsilon: float) -> dict[str, Any]:
    """Record mode: each client's history accounted for k records at once. When one
    subject's records span c > 1 clients, each of those releases composes: every client's
    history is taken c times (each client holds at most k of the records). k = 1 is the
    record-level ε of the run's own accountant, and no row is below it."""
    c = max(1, spread or 1)
    histories = [tuple(acc.history) * c for acc in accountants.values()]
    ks = sorted({*range(1, min(k, _TABLE_K) + 1), k})
    table = [SubjectLevelRow(k=j, epsilon=record_epsilon if j == 1 else max(
        record_epsilon, *(subject_epsilon(h, j, delta) for h in histories)), delta=delta)
        for j in ks]
    return {"subject_level_epsilon": table[-1].epsilon, "subject_level_delta": delta,
            "subject_level_method": "direct", "subject_level_table": table}


def _group_subject_level(epsilon: float, delta: float, k: int) -> dict[str, Any]:
    """Client mode: group privacy over the clients one subject spans; none when δ ≥ 1."""
    eps_k, delta_k = group_privacy(epsilon, delta, k)
    if group_delta_is_vacuous(delta_k):
        return {"subject_level_method": "group_privacy",
                "subject_level_none": f"group privacy over {k} units gives δ = "
                f"{delta_k:.3g} ≥ 1, which rules out nothing: there is no subject-level "
                "guarantee"}
    return {"subject_level_epsilon": eps_k, "subject_level_delta": delta_k,
            "subject_level_method": "group_privacy",
            "subject_level_table": [SubjectLevelRow(k=k, epsilon=eps_k, delta=delta_k)]}


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
    if cfg.mode == "record":
        subject = _direct_subject_level(accountants, delta, group_k, max_clients_per_subject,
                                        worst.epsilon)
    else:
        subject = _group_subject_level(worst.epsilon, delta, group_k)
    return DPCard(
        enabled=True,
        epsilon=worst.epsilon,
        delta=delta,
        unit_of_privacy=cfg.mode,
        **subject,
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
