"""The DP audit stage: plant canaries before training, score them after, bound ε.

:func:`plant_dp_audit` draws the canaries of ``attacks.dp_audit`` and seals which are trained
on. Input canaries (:mod:`privaudit.mechanisms.data.audit_canaries`) are appended to their
clients' data for the ONE target training and scored by their loss drop from the model
training started from to the trained model (LOSS calibrated per canary; references never
contain canaries, so LiRA/RMIA cannot calibrate them). Gradient canaries
(:mod:`privaudit.mechanisms.dp.gradient_canaries`, the default under record-level DP) ride in
DP-SGD's clipped gradients and are scored from their clients' own stored updates.

The guesses are fixed from the scores, and only then is the inclusion opened. Three
estimators read the same guesses and scores, all at the run's δ: the one-run ε-DP bound and
the ROC bound (:mod:`privaudit.attacks.dp_audit`), the one-run f-DP bound and the Gaussian
estimate (:mod:`privaudit.attacks.fdp_audit`). The headline ``epsilon_lower_bound`` is the
largest rigorous bound; a violation is a rigorous bound above the accountant's ε. The Gaussian
estimate is not a proof: its interval above the claim is a warning with its own words.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
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
from privaudit.attacks.fdp_audit import (
    fdp_canaries_needed,
    fdp_ceiling,
    fdp_mu_lower_bound,
    gaussian_estimate,
    gdp_epsilon,
)
from privaudit.attacks.scores.loss import loss_scores
from privaudit.attacks.signals import compute_signals
from privaudit.audit.config import AuditConfig
from privaudit.audit.session import RunSession
from privaudit.audit.stages.train import TrainedModel, canary_gradients_path
from privaudit.core.errors import ConfigError, InternalError
from privaudit.core.progress import Reporter
from privaudit.core.rundir import RunDir, write_json_atomic
from privaudit.mechanisms.data.audit_canaries import (
    AuditCanaryPlan,
    plan_audit_canaries,
    resolve_kind,
)
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.data.splits import PreparedData
from privaudit.mechanisms.dp.gradient_canaries import (
    CanaryObserver,
    GradientCanaryPlan,
    gradient_canary_scores,
    plan_gradient_canaries,
)
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
GRADIENT_METHOD = ("one-run ε-DP (Steinke, Nasr, Jagielski 2023), one-run f-DP against Gaussian "
                   "trade-off curves (Mahloujifar, Melis, Chaudhuri 2025), ROC with "
                   "Clopper-Pearson, and the Gaussian estimate (Andrew et al. 2024)")
GRADIENT_ATTACK = ("white-box: each gradient canary's coordinate in the noisy gradient sums its "
                   "client's DP-SGD released, added over every step")
GRADIENT_SOURCE = ("the canary clients' own noisy DP-SGD gradients, recorded each round "
                   "(models/global/round-*/canary-gradients.json); the clients hold them, the "
                   "server sees only the secure sum of the updates")

Plan = AuditCanaryPlan | GradientCanaryPlan


def canary_clients(cfg: AuditConfig) -> bool:
    """Client-level DP protects clients: each canary is then a whole client of its own."""
    return cfg.privacy.dp.mode == "client"


def dp_audit_kind(cfg: AuditConfig) -> str | None:
    """The canary kind of the run's DP audit (``auto`` resolved); None when off."""
    audit = cfg.attacks.dp_audit
    if audit is None or audit.canaries == 0:
        return None
    return resolve_kind(audit.kind, cfg.model.task, cfg.privacy.dp.mode)


def dp_audit_run(cfg: AuditConfig) -> str | None:
    """Where the DP audit's canaries train: "same" (the released model) or "separate"."""
    audit, kind = cfg.attacks.dp_audit, dp_audit_kind(cfg)
    if audit is None or kind is None:
        return None
    if audit.run == "auto":
        return "separate" if kind == "gradient" else "same"
    if audit.run == "separate" and kind != "gradient":
        raise ConfigError(
            f"attacks.dp_audit.run: 'separate' trains gradient canaries in an audit training; "
            f"{kind} canaries train in the released model (use 'same' or 'auto'; got "
            "'separate')")
    return audit.run


def plant_dp_audit(cfg: AuditConfig, data: PreparedData,
                   like: AdapterState | None = None) -> Plan | None:
    """The canaries of ``attacks.dp_audit`` with their sealed inclusion; None when off.
    Gradient canaries are placed on the trainable coordinates of ``like`` (the adapter the
    training starts from); without it (the preflight, before a model is built) only the
    settings are checked and None is returned: they add no records to any client."""
    audit = cfg.attacks.dp_audit
    kind = dp_audit_kind(cfg)
    if audit is None or kind is None:
        return None
    m = audit.canaries
    k_pos, k_neg = guess_counts(cfg)
    if k_pos < 1 or k_neg < 1:
        raise ConfigError(
            f"attacks.dp_audit.guesses: {audit.guesses.positive} and "
            f"{audit.guesses.negative} of {m} canaries must each give at least one guess"
        )
    dp_audit_run(cfg)  # a run setting the kind cannot have is refused here
    if kind == "gradient":
        if like is None:
            return None
        return plan_gradient_canaries(m, like=like, clients=sorted(data.clients), seed=cfg.seed,
                                      norm=cfg.privacy.dp.max_grad_norm)
    return plan_audit_canaries(
        m,
        kind=kind,
        labels=data.labels,
        vocabulary=[],
        clients=sorted(data.clients),
        seed=cfg.seed,
        canary_clients=canary_clients(cfg),
    )


def gradient_placement(plan: Plan | None, separate: bool = False) -> CanaryObserver | None:
    """What the training adds to DP-SGD's clipped gradients and reports back: the gradient
    canaries' observer (None for input canaries, no audit, or canaries that train in the
    ``separate`` audit training)."""
    return CanaryObserver(plan) if isinstance(plan, GradientCanaryPlan) and not separate \
        else None


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


class _Bounds:
    """Every estimator on one set of guesses and scores."""

    def __init__(self, cfg: AuditConfig, plan: Plan, scores: np.ndarray, delta: float,
                 included: np.ndarray, guesses: np.ndarray) -> None:
        audit = cfg.attacks.dp_audit
        if audit is None:
            raise InternalError("dp audit bounds computed without attacks.dp_audit")
        self.p_star = p_star = 1 - audit.confidence
        self.m = m = plan.sealed.n_canaries
        self.r, self.v = r, v = count_correct(guesses, included)
        self.one_run = one_run_epsilon_lower_bound(r=r, v=v, m=m, delta=delta, p_value=p_star)
        self.roc = roc_epsilon_lower_bound(scores, included, delta=delta,
                                           confidence=audit.confidence, seed=cfg.seed)
        self.gradient = plan.kind == "gradient"
        self.fdp_mu = self.fdp = self.gauss = None
        ceiling = max_provable_epsilon(r=r, m=m, n_included=int(included.sum()), delta=delta,
                                       confidence=audit.confidence)
        if self.gradient and delta > 0:
            self.fdp_mu = fdp_mu_lower_bound(m=m, guesses=r, correct=v, p_value=p_star)
            self.fdp = gdp_epsilon(self.fdp_mu, delta)
            self.gauss = gaussian_estimate(scores, included, delta=delta,
                                           confidence=audit.confidence)
            ceiling = max(ceiling, fdp_ceiling(m=m, guesses=r, delta=delta, p_value=p_star))
        self.ceiling = ceiling
        self.lb = max(self.one_run, self.roc.epsilon, self.fdp or 0.0)

    def needed(self, claimed: float, delta: float) -> tuple[int | None, int | None]:
        """Canaries (this guess fraction; every canary guessed) whose ceiling tops the claim."""
        find = fdp_canaries_needed if self.fdp is not None else canaries_needed
        f = self.r / self.m
        return (find(claimed, guess_fraction=f, delta=delta, p_value=self.p_star),
                find(claimed, guess_fraction=1.0, delta=delta, p_value=self.p_star))


def _words(b: _Bounds, claimed: float | None, delta: float, informative: bool,
           violation: bool, needed: tuple[int | None, int | None]) -> str:
    if claimed is None:
        return (f"No DP claim: ε ≥ {b.lb:.3g} is an empirical leakage lower bound of the "
                "trained model.")
    if not informative:
        return (f"NOT INFORMATIVE: with {b.m} canaries and {b.r} guesses this audit can show at "
                f"most ε ≥ {b.ceiling:.3g}, below the claimed ε = {claimed:.3g}, so it could "
                "not have failed: even a training with no noise at all would pass it. "
                + _needed_words(claimed, b.r / b.m, delta, *needed))
    if violation:
        words = (f"ε ≥ {b.lb:.3g} measured, above the claimed ε = {claimed:.3g}: the measured "
                 "leakage is impossible under the claimed guarantee: the DP implementation or "
                 "its accounting is broken.")
    else:
        words = (f"ε ≥ {b.lb:.3g} measured, within the claimed ε = {claimed:.3g}; an audit can "
                 "only bound ε from below.")
    g = b.gauss
    if g is not None and g.epsilon_low > claimed:
        words += (f" WARNING: the Gaussian estimate ε ≈ {g.epsilon:.3g} (interval "
                  f"[{g.epsilon_low:.3g}, {g.epsilon_high:.3g}]) lies above the claim; it "
                  "assumes Gaussian canary scores, so it is a sign to investigate, not a proof.")
    return words


def dp_audit_result(
    cfg: AuditConfig,
    plan: Plan,
    scores: np.ndarray,
    *,
    claimed_epsilon: float | None,
    delta: float | None,
    release_contains_canaries: bool = True,
) -> DpAuditResult:
    """Guesses fixed from ``scores``, then the inclusion opened and every bound computed."""
    audit = cfg.attacks.dp_audit
    if audit is None:
        raise ConfigError("attacks.dp_audit: not configured")
    k_pos, k_neg = guess_counts(cfg)
    guesses = guesses_from_scores(scores, k_pos, k_neg)  # before the reveal
    included = plan.sealed.reveal(scores=scores).astype(bool)
    d = float(delta or 0.0)
    b = _Bounds(cfg, plan, scores, d, included, guesses)
    violation = claimed_epsilon is not None and b.lb > claimed_epsilon
    informative = claimed_epsilon is None or violation or claimed_epsilon < b.ceiling
    needed: tuple[int | None, int | None] = (None, None)
    if claimed_epsilon is not None and not informative:
        needed = b.needed(claimed_epsilon, d)
    points = _roc_points(scores, included)
    points.append(DpAuditPoint(fpr=b.roc.fpr, tpr=1 - b.roc.fnr, label="ROC-bound threshold"))
    g = b.gauss
    return DpAuditResult(
        method=GRADIENT_METHOD if b.gradient else METHOD,
        attack=GRADIENT_ATTACK if b.gradient else
        CLIENT_ATTACK if canary_clients(cfg) else ATTACK,
        kind=plan.kind, claimed_epsilon=claimed_epsilon, delta=d,
        epsilon_lower_bound=b.lb, one_run_epsilon_lower_bound=b.one_run,
        roc_epsilon_lower_bound=b.roc.epsilon, fdp_epsilon_lower_bound=b.fdp,
        fdp_mu_lower_bound=b.fdp_mu,
        gaussian_epsilon_estimate=g.epsilon if g else None,
        gaussian_epsilon_interval=[g.epsilon_low, g.epsilon_high] if g else None,
        gaussian_mu_estimate=g.mu if g else None,
        estimate_above_claim=(g.epsilon_low > claimed_epsilon
                              if g and claimed_epsilon is not None else None),
        score_source=GRADIENT_SOURCE if b.gradient else None,
        release_contains_canaries=release_contains_canaries,
        canary_memory_bytes=plan.memory_bytes if isinstance(plan, GradientCanaryPlan) else None,
        confidence=audit.confidence, n_canaries=b.m, n_included=plan.sealed.n_included,
        guesses=b.r, guesses_positive=k_pos, guesses_negative=k_neg, correct=b.v,
        violation=violation, max_provable_epsilon=b.ceiling, informative=informative,
        canaries_needed=needed[0], canaries_needed_all_guessed=needed[1],
        interpretation=_words(b, claimed_epsilon, d, informative, violation, needed),
        commitment_sha256=plan.sealed.commitment_sha256, points=points,
    )


def score_gradient_canaries(paths: list[Path], m: int) -> np.ndarray:
    """Each gradient canary's noisy gradient sums, added over the rounds' records."""
    return gradient_canary_scores([json.loads(p.read_text())["sums"] for p in paths], m)


def dp_audit_stage(session: RunSession, plan: Plan, trained: TrainedModel, run: RunDir,
                   reporter: Reporter, *, audit_rounds: list[Path] | None = None
                   ) -> DpAuditResult:
    """Score the planted canaries, open their inclusion, bound ε (the opening and the scores
    go to ``attacks/dp-audit.json``). ``audit_rounds``: the separate audit training's canary
    sums (``run: separate``); else gradient canaries are read from the target training."""
    cfg = session.cfg
    if isinstance(plan, GradientCanaryPlan):
        rounds = audit_rounds or [canary_gradients_path(run, r)
                                  for r in range(1, cfg.federation.rounds + 1)]
        scores = score_gradient_canaries(rounds, plan.sealed.n_canaries)
    else:
        scores = score_dp_audit(session.bundle.model, plan.canaries, task=cfg.model.task,
                                encode=session.encode, initial_state=session.initial_state,
                                trained_state=trained.state, client_level=canary_clients(cfg))
    guarantee = dp_guarantee(trained.privacy)
    result = dp_audit_result(cfg, plan, scores,
                             claimed_epsilon=guarantee[0] if guarantee else None,
                             delta=guarantee[1] if guarantee else None,
                             release_contains_canaries=audit_rounds is None)
    write_json_atomic(run.path("attacks", "dp-audit.json"),
                      plan.sealed.opening() | {"scores": scores.tolist()})
    reporter.info(f"[dp-audit] {result.interpretation}")
    return result


def record_planted(run: RunDir, plan: Plan) -> None:
    """``data/dp-audit-canaries.json``: the canaries' ids and kind, and the commitment to
    which of them the training included (sealed until the audit opens it)."""
    write_json_atomic(run.path("data", "dp-audit-canaries.json"), {
        "ids": plan.ids if isinstance(plan, GradientCanaryPlan) else [r.id for r in plan.canaries],
        "kind": plan.kind,
        "inclusion_commitment_sha256": plan.sealed.commitment_sha256,
    } | (_coordinates(plan) if isinstance(plan, GradientCanaryPlan) else {}))


def _coordinates(plan: GradientCanaryPlan) -> dict[str, object]:
    """Where each gradient canary lives (public: only the inclusion is sealed), so anyone
    holding the clients' updates can recompute the scores."""
    return {"norm": plan.norm, "coordinates": [
        {"tensor": t, "index": int(i), "client": c}
        for t, i, c in zip(plan.params, plan.indices, plan.clients, strict=True)]}
