"""Erasure as a deployment serves it: request after request, each on the model the one before
produced. Where each result sits in that sequence (``unlearning[].sequence``).

For request k served by a method, the point records what the sequence has done so far: the
method's cumulative cost (its seconds and examples over requests 1..k), and whether what was
erased *earlier* (requests 1..k−1) stays erased in the model after request k — the LOSS attack
on every earlier erased record against the held-out records matched to them, under this model
and under request k's oracle (retrained without everything erased so far, so it never saw any
of them): the earlier records' forget AUC, PrivLeak, and the earlier request whose records
look most member-like relative to the oracle. Points carry no interval: each request's own
certificate carries its intervals; the sequence shows whether an early erasure comes back.
Utility and the retained ε of each point are the result's own (``retain.utility``,
``retained_epsilon``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from privaudit.mechanisms.tasks import EncodedSet
from privaudit.unlearning.base import UnlearnedModel, UnlearningContext, oracle_name
from privaudit.unlearning.evidence import privleak
from privaudit.unlearning.paired import match_nonmembers
from privaudit.unlearning.probe_results import SequencePoint
from privaudit.unlearning.results import UnlearningResult

__all__ = ["loss_auc", "sequence_point"]

Losses = Callable[[UnlearnedModel, EncodedSet], np.ndarray]


def loss_auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """The LOSS attack's AUC (score = −loss) of ``members`` against ``nonmembers``.

    >>> loss_auc(np.array([0.1, 0.2]), np.array([0.5, 0.05]))
    0.5
    """
    scores = -np.r_[members, nonmembers]
    labels = np.r_[np.ones(members.size), np.zeros(nonmembers.size)]
    return float(roc_auc_score(labels, scores))


def sequence_point(
    ctx: UnlearningContext, result: UnlearningResult, *, model: UnlearnedModel,
    oracle: UnlearnedModel | None, earlier: Sequence[Mapping[str, Any]],
    before: Sequence[UnlearningResult], losses: Losses,
) -> SequencePoint:
    """``result``'s place in the sequence: ``earlier`` = the ledger's requests served before
    it, ``before`` = the results already recorded (every method)."""
    mine = [r for r in before if r.method == result.method]
    point = SequencePoint(
        position=len(earlier) + 1, earlier_requests=len(earlier),
        cumulative_seconds=sum(r.seconds for r in mine) + result.seconds,
        cumulative_examples=sum(r.examples_processed for r in mine)
        + result.examples_processed)
    ids = [i for req in earlier for i in req["record_ids"]]
    if not ids or oracle is None or result.method == oracle_name() or not len(ctx.nonmembers):
        return point
    union = ctx.records(frozenset(ids))
    match = match_nonmembers(union, ctx.nonmembers)
    pick = list(match.indices) if match.matched else list(range(len(ctx.nonmembers)))
    mine_f, theirs_f = losses(model, union), losses(oracle, union)
    mine_h, theirs_h = losses(model, ctx.nonmembers)[pick], losses(oracle, ctx.nonmembers)[pick]
    point.earlier_records = len(union)
    point.earlier_auc = loss_auc(mine_f, mine_h)
    point.earlier_auc_oracle = loss_auc(theirs_f, theirs_h)
    point.earlier_privleak = privleak(point.earlier_auc, point.earlier_auc_oracle)
    where = {rid: i for i, rid in enumerate(union.record_ids)}
    gaps = []
    for req in earlier:
        rows = [where[i] for i in req["record_ids"] if i in where]
        if rows:
            gaps.append((loss_auc(mine_f[rows], mine_h) - loss_auc(theirs_f[rows], theirs_h),
                         str(req["id"])))
    if gaps:
        point.worst_difference, point.worst_request = max(gaps)
    return point
