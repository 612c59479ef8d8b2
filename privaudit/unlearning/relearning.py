"""The relearning probe: after a few steps of fine-tuning on part of what was erased, does
the unlearned model know the rest better than a model that never saw it?

The unlearned model and the oracle are fine-tuned identically — same steps, batches, order,
learning rate, dropout seed — on a relearning set (``unlearning.robustness.relearning``): a
share of the forget set (``source: forget``; the evidence is measured on the forget records
not relearned on, as relearning attacks do), or the retained training records of the forget
records' data subjects (``source: subjects``; measured on every forget record). A forget set of
several data subjects is split by subject: relearning one person's records would otherwise
teach the other records of that person legitimately (they share names, details, labels), which
an oracle learns as fast as a model that remembers. Then the
measured records are attacked under both fine-tuned models exactly as at fp32: LOSS AUC against
the held-out records matched to them, and the paired difference of the two AUCs on the same
records (:func:`~privaudit.unlearning.paired.auc_difference`: paired-bootstrap interval, its
coverage checked by simulation in tests/unlearning/test_paired.py, and the paired swap test).
That difference is the ``recovery``: > 0 = the relearned unlearned model treats the erased
records more like members than the relearned oracle does. ``relearnable`` when its interval
lies above 0 and the swap test rejects at the run's confidence.

Scoring the final models against held-out records (not raw loss drops) is deliberate: an
oracle starts far from the trained model on the erased records and a few steps move its losses
a long way for reasons that have nothing to do with memory (its records' subjects share
details); what an attacker sees after relearning is how member-like the erased records are.
The interval covers the sampling of records, not another fine-tuning run: both models are
fine-tuned with the same batches so that run's randomness is shared, not averaged.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from privaudit.attacks.metrics import AttackMetrics
from privaudit.attacks.references import preserved_adapter
from privaudit.mechanisms.federated.client import make_optimizer
from privaudit.mechanisms.models import AdapterState, adapter_state, set_adapter_state
from privaudit.mechanisms.tasks import EncodedSet, forward
from privaudit.unlearning.base import (
    UnlearnedModel,
    UnlearningContext,
    concat_sets,
    derive_seed,
)
from privaudit.unlearning.comparison import LossPair
from privaudit.unlearning.config import RelearningConfig
from privaudit.unlearning.evaluate import in_length_order, per_example_loss
from privaudit.unlearning.paired import auc_difference, match_nonmembers
from privaudit.unlearning.power import auc_margin
from privaudit.unlearning.probe_results import RelearningEvidence
from privaudit.unlearning.results import VerificationFlag

__all__ = ["fine_tune", "fresh_losses", "judge_recovery", "probe_relearning", "relearnable_flag"]

Losses = Callable[[UnlearnedModel, EncodedSet], np.ndarray]


def fine_tune(ctx: UnlearningContext, state: AdapterState, data: EncodedSet,
              cfg: RelearningConfig, *, seed: int) -> AdapterState:
    """``cfg.steps`` optimiser steps on batches of ``data`` from ``state`` (the federation's
    optimiser at ``cfg.learning_rate``); the same ``seed`` gives the same batches."""
    net, task = ctx.bundle.model, ctx.recipe.task
    lr = cfg.learning_rate or ctx.recipe.federation.learning_rate
    with preserved_adapter(net):
        set_adapter_state(net, state)
        was_training = net.training
        net.train()
        torch.manual_seed(seed)  # dropout
        params = [p for p in net.parameters() if p.requires_grad]
        optimizer = make_optimizer(params, ctx.recipe.federation.model_copy(
            update={"learning_rate": lr}))
        generator = torch.Generator().manual_seed(seed)
        for _ in range(cfg.steps):
            idx = torch.randperm(len(data), generator=generator)[: cfg.batch_size].tolist()
            loss = forward(net, data.batch(idx), task).loss.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        net.train(was_training)
        return adapter_state(net)


def _sets(ctx: UnlearningContext, forget: EncodedSet, erased: frozenset[str],
          cfg: RelearningConfig) -> tuple[EncodedSet, list[int]] | str:
    """(relearning set, the measured records' indices in ``forget``), or why there are
    none."""
    if cfg.source == "subjects":
        subjects = {r.subject_id for r in ctx.data.training if r.id in set(forget.record_ids)}
        ids = frozenset(r.id for r in ctx.data.training
                        if r.subject_id in subjects and r.id not in erased)
        if not ids:
            return ("the forget records' data subjects have no retained training records "
                    "(source: subjects)")
        return ctx.records(ids), list(range(len(forget)))
    n = len(forget)
    k = max(1, round(cfg.fraction * n))
    subject = {r.id: r.subject_id for r in ctx.data.training}
    groups: dict[str, list[int]] = {}
    for i, rid in enumerate(forget.record_ids):  # by data subject when there are several
        groups.setdefault(subject.get(rid, rid), []).append(i)
    if len(groups) < 2:
        groups = {rid: [i] for i, rid in enumerate(forget.record_ids)}
    rng = np.random.default_rng(ctx.recipe.seed)
    picked: set[int] = set()
    for g in rng.permutation(sorted(groups)).tolist()[:-1]:  # one group is always measured
        if len(picked) >= k:
            break
        picked |= set(groups[g])
    if n - len(picked) < 2:
        return (f"{n} forget record(s): relearning on {len(picked)} leaves fewer than 2 to "
                "measure (source: forget)")
    return forget.subset(sorted(picked)), [i for i in range(n) if i not in picked]


def probe_relearning(
    ctx: UnlearningContext, *, model: UnlearnedModel, oracle: UnlearnedModel | None,
    forget: EncodedSet, erased: frozenset[str], losses: Losses,
    auc: Callable[[np.ndarray, np.ndarray], AttackMetrics], request_id: str,
    memo: dict[tuple[str, int, tuple[str, ...]], tuple[np.ndarray, np.ndarray]] | None = None,
) -> RelearningEvidence | None:
    """The relearning evidence of ``model`` against ``oracle``; None when off. ``losses``:
    per-example losses of a model (cached); ``auc``: the LOSS attack's AUC of members vs
    held-out losses; ``memo``: the relearned models' losses, kept across methods (the oracle
    is relearned once per request)."""
    cfg = ctx.ucfg.robustness.relearning
    memo = {} if memo is None else memo
    if cfg.steps == 0:
        return None
    lr = cfg.learning_rate or ctx.recipe.federation.learning_rate
    sets = _sets(ctx, forget, erased, cfg)
    if isinstance(sets, str):
        return RelearningEvidence(steps=cfg.steps, learning_rate=lr, source=cfg.source,
                                  relearn_records=0, eval_records=0, reason=sets)
    relearn, picked = sets
    measured = forget.subset(picked)
    ev = RelearningEvidence(steps=cfg.steps, learning_rate=lr, source=cfg.source,
                            relearn_records=len(relearn), eval_records=len(measured))
    why = _not_probed(model, oracle, ctx)
    if why or oracle is None:
        ev.reason = why
        return ev
    match = match_nonmembers(measured, ctx.nonmembers)
    kept = list(match.indices) if match.matched else list(range(len(ctx.nonmembers)))
    held = ctx.nonmembers.subset(kept)
    seed = derive_seed(ctx.recipe.seed, "relearning", request_id)
    pairs = {}
    for name, m in (("unlearned", model), ("oracle", oracle)):
        key = (m.sha256, seed, tuple(relearn.record_ids))  # the oracle's: one per request
        if key not in memo:
            after = UnlearnedModel(states=[fine_tune(ctx, m.states[0], relearn, cfg,
                                                     seed=seed)])
            both = fresh_losses(ctx, after, concat_sets([measured, held],
                                                             pad_id=held.pad_id))
            memo[key] = (both[:len(measured)], both[len(measured):])
        pairs[name] = memo[key]
        ev_auc = auc(*pairs[name]).auc
        setattr(ev, "auc_after" if name == "unlearned" else "auc_oracle_after", ev_auc)
        # before: the model's fp32 losses, computed (and cached) for its forget evidence
        before = auc(losses(m, forget)[picked], losses(m, ctx.nonmembers)[kept]).auc
        setattr(ev, "auc_before" if name == "unlearned" else "auc_oracle_before", before)
    judge_recovery(ev, pairs["unlearned"], pairs["oracle"], confidence=ctx.attacks.confidence,
                   n_resamples=ctx.attacks.bootstrap, seed=seed)
    return ev


def judge_recovery(ev: RelearningEvidence, unlearned: LossPair, oracle: LossPair, *,
                   confidence: float, n_resamples: int, seed: int) -> RelearningEvidence:
    """Fill ``ev``'s recovery from the relearned models' (measured, held-out) losses: the
    paired AUC difference with its interval and swap test, and ``relearnable`` when the
    interval lies above 0 and the test rejects at 1 − ``confidence`` (in place)."""
    ev.recovery_floor = auc_margin(len(unlearned[0]), len(unlearned[1]), confidence)
    d = auc_difference(unlearned, oracle, confidence=confidence, n_resamples=n_resamples,
                       seed=seed)
    if d is None:
        ev.reason = "too few records or no bootstrap resamples for an interval"
        return ev
    ev.recovery, ev.recovery_ci_low, ev.recovery_ci_high, ev.recovery_pvalue = \
        d.value, d.ci_low, d.ci_high, d.p_value
    ev.relearnable = bool(d.ci_low > 0 and d.p_value < 1 - confidence)
    return ev


def _not_probed(model: UnlearnedModel, oracle: UnlearnedModel | None,
                ctx: UnlearningContext) -> str | None:
    if oracle is None:
        return "no oracle ran: nothing to compare the relearned model with"
    if model.sha256 == oracle.sha256:
        return "byte-identical to its oracle (exact): fine-tuning moves both alike"
    if model.is_ensemble or oracle.is_ensemble:
        return "a SISA ensemble: its shards would be fine-tuned one by one (not probed)"
    return None


def fresh_losses(ctx: UnlearningContext, model: UnlearnedModel, data: EncodedSet
                 ) -> np.ndarray:
    """Per-example losses of a model that is not kept (no signal cache), batched by
    length."""
    net = ctx.bundle.model
    with preserved_adapter(net):
        return in_length_order(data, lambda d: per_example_loss(net, model.states, d,
                                                                ctx.recipe.task))


def relearnable_flag(ev: RelearningEvidence | None, *, confidence: float
                     ) -> VerificationFlag | None:
    """``relearnable`` when the recovery's interval lies above 0 (swap test too)."""
    if ev is None or not ev.relearnable or ev.recovery is None:
        return None
    return VerificationFlag(
        name="relearnable", value=ev.recovery, threshold=0.0,
        parameter="unlearning.robustness.relearning",
        message=f"relearnable: after {ev.steps} identical fine-tuning step(s) on "
        f"{ev.relearn_records} record(s), the other {ev.eval_records} erased records' forget "
        f"AUC is {ev.auc_after:.3f} under the unlearned model vs {ev.auc_oracle_after:.3f} "
        f"under the oracle (before: {ev.auc_before:.3f} vs {ev.auc_oracle_before:.3f}); "
        f"paired difference {ev.recovery:+.3f}, {confidence:.0%} interval "
        f"{ev.recovery_ci_low:+.3f} to {ev.recovery_ci_high:+.3f}, swap test p = "
        f"{ev.recovery_pvalue:.2g}")
