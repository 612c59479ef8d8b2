"""The DP audit stage: plant canaries before training, score them after, bound ε.

:func:`plant_dp_audit` draws the canaries of ``attacks.dp_audit`` and seals which are trained
on (:mod:`privaudit.mechanisms.data.audit_canaries`); the pipeline appends the included ones to
their clients' data for the ONE target training. :func:`score_dp_audit` scores all m canaries
by their loss drop from the model training started from to the trained model (LOSS calibrated
per canary; references never contain canaries, so LiRA/RMIA cannot calibrate them),
fixes the guesses from the scores, and only then opens the inclusion; both lower bounds of
:mod:`privaudit.attacks.dp_audit` use the run's δ. The headline is the larger; it is a
violation when it exceeds the accountant's ε.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from privaudit.attacks.dp_audit import (
    canaries_needed,
    count_correct,
    guesses_from_scores,
    max_provable_epsilon,
    one_run_epsilon_lower_bound,
    roc_epsilon_lower_bound,
)
from privaudit.attacks.scores.loss import loss_scores
from privaudit.attacks.signals import compute_signals
from privaudit.audit.config import AuditConfig
from privaudit.audit.session import RunSession
from privaudit.audit.stages.train import TrainedModel
from privaudit.core.errors import ConfigError
from privaudit.core.progress import Reporter
from privaudit.core.rundir import RunDir, write_json_atomic
from privaudit.mechanisms.data.audit_canaries import (
    AuditCanaryPlan,
    plan_audit_canaries,
    resolve_kind,
)
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.data.splits import PreparedData
from privaudit.mechanisms.federated.canary_client import canary_cosines
from privaudit.mechanisms.models import AdapterState, set_adapter_state
from privaudit.reports.schema import DpAuditPoint, DpAuditResult
from privaudit.unlearning.ledger import dp_guarantee

__all__ = ["canary_clients", "dp_audit_result", "plant_dp_audit", "score_dp_audit"]

ATTACK = "loss calibrated by the model before fine-tuning"
CLIENT_ATTACK = ("cosine of the model's change with each canary client's random update "
                 "(Andrew et al. 2024)")
ROC_LABEL = "canary ROC"
METHOD = "one-run (Steinke, Nasr, Jagielski 2023) and ROC with Clopper-Pearson"


def canary_clients(cfg: AuditConfig) -> bool:
    """Client-level DP protects clients: each canary is then a whole client of its own."""
    return cfg.privacy.dp.mode == "client"


def plant_dp_audit(cfg: AuditConfig, data: PreparedData) -> AuditCanaryPlan | None:
    """The canaries of ``attacks.dp_audit`` with their sealed inclusion; None when off."""
    audit = cfg.attacks.dp_audit
    if audit is None or audit.canaries == 0:
        return None
    m = audit.canaries
    k_pos, k_neg = guess_counts(cfg)
    if k_pos < 1 or k_neg < 1:
        raise ConfigError(
            f"attacks.dp_audit.guesses: {audit.guesses.positive} and "
            f"{audit.guesses.negative} of {m} canaries must each give at least one guess"
        )
    return plan_audit_canaries(
        m,
        kind=resolve_kind(audit.kind, cfg.model.task),
        labels=data.labels,
        vocabulary=[],
        clients=sorted(data.clients),
        seed=cfg.seed,
        canary_clients=canary_clients(cfg),
    )


def guess_counts(cfg: AuditConfig) -> tuple[int, int]:
    audit = cfg.attacks.dp_audit
    if audit is None:
        return 0, 0
    m = audit.canaries
    return round(audit.guesses.positive * m), round(audit.guesses.negative * m)


def score_dp_audit(
    model: nn.Module,
    canaries: list[Record],
    *,
    task: str,
    encode: Callable[[list[Record]], Any],
    initial_state: AdapterState,
    trained_state: AdapterState,
    client_level: bool = False,
) -> np.ndarray:
    """Each canary's loss before fine-tuning minus after (higher = more likely IN): the
    LOSS attack calibrated by the model the training started from, which removes how hard
    each random canary is by itself. The model is left with ``trained_state``.

    ``client_level``: the canaries were whole clients sending random directions
    (:mod:`~privaudit.mechanisms.federated.canary_client`); the score is then the cosine of
    the model's total change with each canary's direction."""
    if client_level:
        set_adapter_state(model, trained_state)
        return canary_cosines([r.id for r in canaries], initial_state, trained_state)
    encoded = encode(canaries)
    texts = [r.text for r in canaries]
    set_adapter_state(model, initial_state)
    before = compute_signals(model, encoded, task=task, texts=texts).loss
    set_adapter_state(model, trained_state)
    after = compute_signals(model, encoded, task=task, texts=texts).loss
    return loss_scores(after) + np.asarray(before, dtype=np.float64)


def _roc_points(scores: np.ndarray, included: np.ndarray, n: int = 25) -> list[DpAuditPoint]:
    order = np.argsort(-scores, kind="stable")
    inc = included[order]
    tp, fp = np.cumsum(inc), np.cumsum(~inc)
    pos, neg = max(int(inc.sum()), 1), max(int((~inc).sum()), 1)
    picks = np.unique(np.linspace(0, len(scores) - 1, n).round().astype(int))
    return [DpAuditPoint(fpr=float(fp[i] / neg), tpr=float(tp[i] / pos), label=ROC_LABEL)
            for i in picks]


def _needed_words(claimed: float, fraction: float, delta: float, needed: int | None,
                  needed_all: int | None) -> str:
    ask = f"To be able to refute ε = {claimed:.3g} at δ = {delta:g}, a one-run audit needs "
    with_guesses = (f"about {needed} canaries with the same {fraction:.0%} of them guessed"
                    if needed else f"more canaries than any run can hold with {fraction:.0%} "
                    "of them guessed")
    every = (f"; about {needed_all} if every canary is guessed, all correctly"
             if needed_all else "; no canary count suffices even if every one is guessed")
    return ask + with_guesses + every + "."


def dp_audit_result(
    cfg: AuditConfig,
    plan: AuditCanaryPlan,
    scores: np.ndarray,
    *,
    claimed_epsilon: float | None,
    delta: float | None,
) -> DpAuditResult:
    """Guesses fixed from ``scores``, then the inclusion opened and both bounds computed."""
    audit = cfg.attacks.dp_audit
    if audit is None:
        raise ConfigError("attacks.dp_audit: not configured")
    k_pos, k_neg = guess_counts(cfg)
    guesses = guesses_from_scores(scores, k_pos, k_neg)  # before the reveal
    included = plan.sealed.reveal(scores=scores)
    r, v = count_correct(guesses, included)
    d = float(delta or 0.0)
    m = plan.sealed.n_canaries
    one_run = one_run_epsilon_lower_bound(r=r, v=v, m=m, delta=d, p_value=1 - audit.confidence)
    roc = roc_epsilon_lower_bound(scores, included, delta=d, confidence=audit.confidence,
                                  seed=cfg.seed)
    lb = max(one_run, roc.epsilon)
    violation = claimed_epsilon is not None and lb > claimed_epsilon
    # what the design could show at most, whatever the training did
    p_star = 1 - audit.confidence
    ceiling = max_provable_epsilon(r=r, m=m, n_included=int(included.astype(bool).sum()),
                                   delta=d, confidence=audit.confidence)
    informative = claimed_epsilon is None or violation or claimed_epsilon < ceiling
    needed = needed_all = None
    if claimed_epsilon is not None and not informative:
        needed = canaries_needed(claimed_epsilon, guess_fraction=r / m, delta=d, p_value=p_star)
        needed_all = canaries_needed(claimed_epsilon, guess_fraction=1.0, delta=d,
                                     p_value=p_star)
    if claimed_epsilon is None:
        words = (f"No DP claim: ε ≥ {lb:.3g} is an empirical leakage lower bound of the "
                 "trained model.")
    elif not informative:
        words = (f"NOT INFORMATIVE: with {m} canaries and {r} guesses this audit can show at "
                 f"most ε ≥ {ceiling:.3g}, below the claimed ε = {claimed_epsilon:.3g}, so it "
                 "could not have failed: even a training with no noise at all would pass it. "
                 + _needed_words(claimed_epsilon, r / m, d, needed, needed_all))
    elif violation:
        words = (f"ε ≥ {lb:.3g} measured, above the claimed ε = {claimed_epsilon:.3g}: the "
                 "measured leakage is impossible under the claimed guarantee: the DP "
                 "implementation or its accounting is broken.")
    else:
        words = (f"ε ≥ {lb:.3g} measured, within the claimed ε = {claimed_epsilon:.3g}; an "
                 "audit can only bound ε from below.")
    points = _roc_points(scores, included)
    points.append(DpAuditPoint(fpr=roc.fpr, tpr=1 - roc.fnr, label="ROC-bound threshold"))
    return DpAuditResult(
        method=METHOD,
        attack=CLIENT_ATTACK if canary_clients(cfg) else ATTACK,
        kind=plan.kind,
        claimed_epsilon=claimed_epsilon,
        delta=d,
        epsilon_lower_bound=lb,
        one_run_epsilon_lower_bound=one_run,
        roc_epsilon_lower_bound=roc.epsilon,
        confidence=audit.confidence,
        n_canaries=m,
        n_included=plan.sealed.n_included,
        guesses=r,
        guesses_positive=k_pos,
        guesses_negative=k_neg,
        correct=v,
        violation=violation,
        max_provable_epsilon=ceiling,
        informative=informative,
        canaries_needed=needed,
        canaries_needed_all_guessed=needed_all,
        interpretation=words,
        commitment_sha256=plan.sealed.commitment_sha256,
        points=points,
    )


def dp_audit_stage(session: RunSession, plan: AuditCanaryPlan, trained: TrainedModel, run: RunDir,
                   reporter: Reporter) -> DpAuditResult:
    """Score the planted canaries on the trained model, open their inclusion, bound ε (the
    opening and the scores go to ``attacks/dp-audit.json``)."""
    cfg = session.cfg
    scores = score_dp_audit(session.bundle.model, plan.canaries, task=cfg.model.task,
                            encode=session.encode, initial_state=session.initial_state,
                            trained_state=trained.state, client_level=canary_clients(cfg))
    guarantee = dp_guarantee(trained.privacy)
    result = dp_audit_result(cfg, plan, scores,
                             claimed_epsilon=guarantee[0] if guarantee else None,
                             delta=guarantee[1] if guarantee else None)
    write_json_atomic(run.path("attacks", "dp-audit.json"),
                      plan.sealed.opening() | {"scores": scores.tolist()})
    reporter.info(f"[dp-audit] {result.interpretation}")
    return result


def record_planted(run: RunDir, plan: AuditCanaryPlan) -> None:
    """``data/dp-audit-canaries.json``: the canaries' ids and kind, and the commitment to
    which of them the training included (sealed until the audit opens it)."""
    write_json_atomic(run.path("data", "dp-audit-canaries.json"), {
        "ids": [r.id for r in plan.canaries],
        "kind": plan.kind,
        "inclusion_commitment_sha256": plan.sealed.commitment_sha256,
    })
