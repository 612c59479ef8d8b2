"""Up-front estimate of a run's cost, and the budget that refuses a run too large to start.

Before any training, ``privaudit run`` / ``demo`` print how many optimiser steps the run will
take — the target federation, the reference models (the battery's, and U-LiRA's 2·P when
that is more), the oracle retrainings, the other unlearning methods and U-LiRA's references
unlearning with each judged method — counted from the config and the prepared client sizes
(no model is built). A step is one local mini-batch on one client:

    steps of one federated training = rounds × Σ_clients local_epochs × ⌈n_k / B⌉

with ``B`` the batch the clients train with (``privacy.dp.batch_size`` in record mode). The
counts are upper bounds where the run decides at run time (gradient ascent stops early; a
SISA erasure retrains an affected shard from its first affected slice only, counted here as
the whole shard). The time is not estimated: it depends on the model, the machine and DP
(per-example gradients), so the step count is the honest unit.

``budget.max_training_steps`` and ``budget.max_reference_models`` (config) refuse a run whose
estimate exceeds them, with exit 2 and the knobs that shrink it.

>>> from privaudit.audit.config import config_from_dict
>>> cfg = config_from_dict({"federation": {"clients": 2, "rounds": 3, "local_epochs": 2,
...                         "batch_size": 10}, "attacks": {"references": {"count": 4}}})
>>> est = estimate_run(cfg, {"client-0": 25, "client-1": 20})
>>> est.target_steps  # 3 rounds × 2 epochs × (⌈25/10⌉ + ⌈20/10⌉)
30
>>> est.reference_models
4
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from privaudit.audit.config import AuditConfig, FederationConfig
from privaudit.core.errors import ConfigError
from privaudit.mechanisms.data.audit_canaries import resolve_kind
from privaudit.mechanisms.data.partition import even_split
from privaudit.mechanisms.data.splits import PreparedData


@dataclass(frozen=True)
class Estimate:
    """Optimiser steps of one run, by what spends them (see the module docstring)."""

    clients: dict[str, int]
    batch_size: int
    target_steps: int
    reference_models: int = 0
    reference_steps: int = 0
    requests: int = 0
    oracle_retrainings: int = 0
    oracle_steps: int = 0
    sisa_shards: int = 0
    sisa_steps: int = 0
    unlearning_steps: dict[str, int] = field(default_factory=dict)
    #: lines printed after the estimate (what the DP audit can show)
    notes: list[str] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return (self.target_steps + self.reference_steps + self.oracle_steps + self.sisa_steps
                + sum(self.unlearning_steps.values()))

    def lines(self) -> list[str]:
        """The estimate as printed before a run starts."""
        sizes = sorted(self.clients.values())
        out = [
            f"estimate: {self.total_steps:,} training steps in all (one step = one mini-batch "
            "on one client; upper bounds, no time estimate)",
            f"  target federation: {self.target_steps:,} steps ({len(self.clients)} clients, "
            f"{sizes[0] if sizes else 0}–{sizes[-1] if sizes else 0} records each, batch "
            f"{self.batch_size})",
        ]
        if self.reference_models:
            out.append(f"  reference models: {self.reference_models} "
                       f"({self.reference_steps:,} steps)")
        if self.oracle_retrainings:
            out.append(f"  oracle retrainings: {self.oracle_retrainings} "
                       f"({self.oracle_steps:,} steps)")
        if self.sisa_shards:
            out.append(f"  SISA: {self.sisa_shards} shards, trained and retrained per request "
                       f"({self.sisa_steps:,} steps)")
        for name, steps in self.unlearning_steps.items():
            out.append(f"  {name}: at most {steps:,} steps over {self.requests} request(s)")
        return out + self.notes


def federation_steps(sizes: Mapping[str, int], *, rounds: int, local_epochs: int,
                     batch_size: int) -> int:
    """rounds × Σ_k local_epochs × ⌈n_k / B⌉.

    >>> federation_steps({"a": 100, "b": 33}, rounds=2, local_epochs=3, batch_size=16)
    60
    """
    per_round = sum(local_epochs * math.ceil(n / batch_size) for n in sizes.values() if n > 0)
    return rounds * per_round


def _reference_federation(cfg: AuditConfig) -> FederationConfig:
    """The references' federation: ``attacks.references.overrides`` merged over the target's."""
    overrides: dict[str, Any] = cfg.attacks.references.overrides
    fed = cfg.recipe.training_federation()
    patch = dict(overrides.get("federation") or {})
    dp_batch = (overrides.get("privacy") or {}).get("dp", {}).get("batch_size")
    if dp_batch is not None and cfg.privacy.dp.mode == "record":
        patch["batch_size"] = dp_batch
    if not patch:
        return fed
    try:
        return FederationConfig.model_validate(fed.model_dump() | patch)
    except ValidationError:  # the references' own validation reports it, naming the field
        return fed


def _spread(total: int, k: int) -> dict[str, int]:
    """``total`` records over ``k`` clients, as evenly as possible."""
    return {f"c{i}": n for i, n in enumerate(even_split(total, k))}


def estimate_run(cfg: AuditConfig, client_sizes: Mapping[str, int], *,
                 nonmembers: int | None = None) -> Estimate:
    """Steps of ``cfg``'s run for clients of ``client_sizes`` records (see module)."""
    from privaudit.unlearning.base import get_unlearner  # here: the unlearners load torch

    fed = cfg.recipe.training_federation()
    sizes = dict(client_sizes)
    k = max(1, len(sizes))
    n_train = sum(sizes.values())
    audit = cfg.attacks.dp_audit
    if audit is not None and audit.canaries and resolve_kind(
            audit.kind, cfg.model.task, cfg.privacy.dp.mode) != "gradient":
        # each DP-audit input canary joins the training with probability 1/2 (gradient
        # canaries are no records: they ride in DP-SGD's clipped gradients)
        extra = _spread(audit.canaries // 2, k)
        sizes_target = {c: n + extra[f"c{i}"] for i, (c, n) in enumerate(sizes.items())}
    else:
        sizes_target = sizes
    target = federation_steps(sizes_target, rounds=fed.rounds, local_epochs=fed.local_epochs,
                              batch_size=fed.batch_size)

    u = cfg.unlearning
    n_req = len(u.requests)
    # U-LiRA's 2·P references are the battery's first ones: more are trained when 2·P > count
    ulira = [m for m in u.verify.ulira_methods if m in u.methods] \
        if n_req and u.verify.ulira_references else []
    refs = cfg.attacks.references
    n_refs = max(refs.count, 2 * u.verify.ulira_references) if ulira else refs.count
    rfed = _reference_federation(cfg)
    held = cfg.data.audit.nonmembers if nonmembers is None else nonmembers
    population = (n_train + held if refs.population == "training"
                  else cfg.data.audit.members + held)
    half = _spread(math.ceil(population / 2), rfed.clients)
    one_ref = federation_steps(half, rounds=rfed.rounds, local_epochs=rfed.local_epochs,
                               batch_size=rfed.batch_size)
    ref_steps = n_refs * one_ref

    oracle_n = n_req if (u.oracle and n_req) else 0
    plain = federation_steps(sizes, rounds=fed.rounds, local_epochs=fed.local_epochs,
                             batch_size=fed.batch_size)
    per_round = plain // fed.rounds
    sisa_shards = sisa_steps = 0
    other: dict[str, int] = {}
    for method in u.methods:
        unlearner = get_unlearner(method)(u)
        if unlearner.trains:  # SISA: its shards, trained ahead and retrained per request
            shards, steps = unlearner.estimate_training(sizes, fed, u.requests)
            sisa_shards, sisa_steps = sisa_shards + shards, sisa_steps + steps
        elif n_req:
            other[method] = n_req * unlearner.estimate_steps(
                fed, clients=k, per_round=per_round, retraining=plain)
    for method in ulira:  # each of the 2·P references unlearns with the method, per request
        other[f"U-LiRA {method}"] = n_req * 2 * u.verify.ulira_references * get_unlearner(
            method)(u).estimate_steps(rfed, clients=rfed.clients,
                                      per_round=one_ref // rfed.rounds, retraining=one_ref)
    return Estimate(
        clients=sizes,
        batch_size=fed.batch_size,
        target_steps=target,
        reference_models=n_refs,
        reference_steps=ref_steps,
        requests=n_req,
        oracle_retrainings=oracle_n,
        oracle_steps=oracle_n * plain,
        sisa_shards=sisa_shards,
        sisa_steps=sisa_steps,
        unlearning_steps=other,
    )


def budget_problems(cfg: AuditConfig, est: Estimate) -> list[str]:
    """Every budget the estimate exceeds, as ``budget.knob: reason (got N)`` with what to turn."""
    problems: list[str] = []
    budget = cfg.budget
    if budget.max_training_steps is not None and est.total_steps > budget.max_training_steps:
        parts = {"target federation (federation.rounds, federation.local_epochs, "
                 "federation.batch_size)": est.target_steps,
                 "references (attacks.references.count)": est.reference_steps,
                 "oracle (unlearning.requests, unlearning.oracle)": est.oracle_steps,
                 "SISA (unlearning.sisa.shards, unlearning.sisa.slices)": est.sisa_steps,
                 "unlearning methods (unlearning.methods, unlearning.verify.ulira_*)":
                     sum(est.unlearning_steps.values())}
        biggest = sorted(((v, k) for k, v in parts.items() if v), reverse=True)
        turn = "; ".join(f"{k}: {v:,}" for v, k in biggest[:3])
        problems.append(
            f"budget.max_training_steps: the run needs about {est.total_steps:,} training "
            f"steps, more than the budget of {budget.max_training_steps:,}; shrink the "
            f"largest parts — {turn} — or raise budget.max_training_steps")
    if budget.max_reference_models is not None and est.reference_models > \
            budget.max_reference_models:
        problems.append(
            f"budget.max_reference_models: the run trains {est.reference_models} reference "
            f"models, more than the budget of {budget.max_reference_models}; lower "
            "attacks.references.count (and unlearning.verify.ulira_references, whose 2·P "
            "references are the battery's) or raise budget.max_reference_models")
    return problems


def check_budget(cfg: AuditConfig, est: Estimate) -> None:
    """Raise ConfigError (exit 2) listing every budget the estimate exceeds."""
    problems = budget_problems(cfg, est)
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1
                          else f"{len(problems)} budget(s) exceeded", problems)


def plan_run(cfg: AuditConfig) -> Estimate:
    """Run every pre-flight check (:func:`~privaudit.audit.preflight.preflight`: the data
    prepared as the run will, requests, DP and secure aggregation; exit 2 before anything is
    written) and estimate the run on the real client sizes."""
    from privaudit.audit.preflight import preflight

    data = preflight(cfg)
    est = estimate_run(cfg, {c: len(recs) for c, recs in data.clients.items()},
                       nonmembers=len(data.nonmembers))
    return replace(est, notes=list(data.warnings) + dp_audit_power_lines(cfg)
                   + tpr_resolution_lines(cfg, nonmembers=len(data.nonmembers))
                   + erasure_power_lines(cfg, data))


def tpr_resolution_lines(cfg: AuditConfig, *, nonmembers: int) -> list[str]:
    """The smallest FPR the held-out non-members resolve (10/n), from the design alone, and
    the configured FPRs below it, whose TPR the report will give as an upper bound only.

    >>> from privaudit.audit.config import config_from_dict
    >>> lines = tpr_resolution_lines(config_from_dict({}), nonmembers=400)
    >>> lines[0]
    'membership attacks: 400 held-out non-members resolve FPRs down to 0.025'
    >>> lines[1].split(":")[0]
    '  TPR at FPR 0.01, 0.001 will be NOT ESTIMABLE (an upper bound only)'
    """
    from privaudit.attacks.resolution import min_resolvable_fpr, nonmembers_needed, resolves

    if not cfg.attacks.battery:
        return []
    fprs = cfg.attacks.fprs
    out = [f"membership attacks: {nonmembers} held-out non-members resolve FPRs down to "
           f"{min_resolvable_fpr(nonmembers):.3g}"]
    below = [f for f in fprs if not resolves(nonmembers, f)]
    if below:
        out.append(f"  TPR at FPR {', '.join(f'{f:g}' for f in below)} will be NOT "
                   f"ESTIMABLE (an upper bound only): {min(below):g} needs at least "
                   f"{nonmembers_needed(min(below))} held-out non-members")
    return out


def dp_audit_power_lines(cfg: AuditConfig) -> list[str]:
    """What the configured DP audit can show at most, from its design alone (canaries,
    guesses, confidence, δ), against the claimed ε when the config fixes it: printed before
    anything trains, so an audit that cannot test the claim is known before it runs."""
    from privaudit.attacks.dp_audit import canaries_needed, max_provable_epsilon
    from privaudit.attacks.fdp_audit import fdp_canaries_needed, fdp_ceiling
    from privaudit.audit.stages.dp_audit import dp_audit_kind, guess_counts

    audit, dp = cfg.attacks.dp_audit, cfg.privacy.dp
    kind = dp_audit_kind(cfg)
    if audit is None or kind is None:
        return []
    m = audit.canaries
    r = max(1, sum(guess_counts(cfg)))
    delta, p_star = float(dp.delta or 0.0), 1 - audit.confidence
    # before training, half the canaries are expected in (each with probability 1/2)
    eps_dp = max_provable_epsilon(r=r, m=m, n_included=m // 2, delta=delta,
                                  confidence=audit.confidence)
    fdp = kind == "gradient" and delta > 0
    f_dp = fdp_ceiling(m=m, guesses=r, delta=delta, p_value=p_star) if fdp else 0.0
    ceiling = max(eps_dp, f_dp)
    out = [f"DP audit: {m} {kind} canaries, {r} guesses: it can show at most "
           f"ε ≥ {ceiling:.3g} (at δ = {delta:g}, confidence {audit.confidence:g}), whatever "
           "the training does"]
    if fdp:
        out.append(f"  per estimator: one-run ε-DP and ROC at most {eps_dp:.3g}, one-run f-DP "
                   f"at most {f_dp:.3g}; the Gaussian estimate has no ceiling but is no proof")
    claimed = dp.target_epsilon if dp.mode != "none" else None
    if claimed is not None and claimed >= ceiling:
        find = fdp_canaries_needed if fdp else canaries_needed
        needed = find(claimed, guess_fraction=r / m, delta=delta, p_value=p_star)
        every = find(claimed, guess_fraction=1.0, delta=delta, p_value=p_star)
        how = (f"about {needed} canaries with the same guess fraction" if needed else
               "more canaries than any run holds with this guess fraction")
        how += f", or about {every} with every canary guessed" if every else \
            ", and no canary count with every one guessed"
        out.append(f"  the claimed ε = {claimed:g} is beyond it: the DP audit will be NOT "
                   f"INFORMATIVE (testing the claim needs {how})")
    return out


def erasure_power_lines(cfg: AuditConfig, data: PreparedData) -> list[str]:
    """What each configured erasure request can show, from its size alone: the smallest
    |PrivLeak| its forget records vs the held-out ones can tell from retraining (before
    training the oracle's AUC is taken as 0.5), NOT INFORMATIVE at 100% or more — at the
    verifier's own confidence, so the dry run and the run state the same floor."""
    from privaudit.unlearning.power import privleak_floor, records_needed
    from privaudit.unlearning.requests import resolve_requests

    if not cfg.unlearning.requests or not cfg.unlearning.oracle:
        return []
    m, confidence = len(data.nonmembers), cfg.attacks.confidence
    out = []
    for req in resolve_requests(cfg.unlearning.requests, data):
        n = len(req.record_ids)
        floor = privleak_floor(n, m, 0.5, confidence)
        line = (f"erasure {req.id}: {n} forget vs {m} held-out records: PrivLeak can show "
                f"departures beyond ±{floor:.0f}% only (oracle AUC 0.5 assumed)")
        if floor >= 100:
            line += (f"; NOT INFORMATIVE: not even total memorisation shows (at least "
                     f"{records_needed(m, 0.5, confidence)} records needed)")
        out.append(line)
    return out
