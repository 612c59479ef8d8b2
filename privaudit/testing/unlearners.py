"""``check_unlearner``: the contract every unlearning method keeps.

A method (``privaudit.unlearning.base``) turns an erasure request into an unlearned model:
:meth:`~privaudit.unlearning.base.Unlearner.unlearn` gets the records to forget, every record
erased so far and the model to start from, and returns a
:class:`~privaudit.unlearning.base.MethodOutcome`. The check serves one request with the method
the way the erase stage does (the target built by
:func:`~privaudit.audit.stages.erase.make_target`, with an unreachable stopping target so that
iterative methods run to their step cap) on the context of a finished run, and watches every
batch built with gradients on while it runs: what the method really trained on, not only what
it reports.

The context is what :func:`~privaudit.audit.erase_run.open_run_context` returns for a run
directory; the run must have trained what the method trains ahead (its ``trains``: SISA's
shards). The request is not written to the run's ledger, so one run serves every check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch

from privaudit.audit.stages.erase import make_target
from privaudit.mechanisms.models import state_sha256
from privaudit.mechanisms.tasks import Batch, EncodedSet
from privaudit.testing.findings import Findings
from privaudit.unlearning.base import (
    ErasureTarget,
    MethodOutcome,
    Unlearner,
    UnlearningContext,
)
from privaudit.unlearning.ledger import erased_so_far, read_ledger
from privaudit.unlearning.requests import ErasureRequest, resolve_requests

__all__ = ["check_unlearner"]


def check_unlearner(
    unlearner_cls: type[Unlearner],
    ctx: UnlearningContext,
    *,
    name: str | None = None,
    request: ErasureRequest | None = None,
) -> None:
    """Check that ``unlearner_cls`` keeps the unlearning contract on the finished run ``ctx``;
    AssertionError naming the method and every property it fails.

    ``name``: the name it is registered under (default its ``name``). ``request``: the request
    to serve (default: one record of the first client, not erased before).

    The properties:

    1. it is an :class:`Unlearner` subclass with a non-empty ``name`` (equal to ``name``) and an
       ``exactness`` of ``exact`` or ``approximate``, built from the run's unlearning config;
    2. it returns a :class:`MethodOutcome` whose model has one state per starting state, each
       with the trained adapter's tensor names and shapes, and differs from the start;
    3. no batch it trains on (built with gradients on) holds an erased record, except forget
       records it reports as gradient-ascended, and it reports no erased record as trained on;
    4. its lineage is complete: it reports what it used (``trained_ids | ascended_ids`` not
       empty) and every record it trained on is in it; what it ascended is in the forget set;
    5. it reports the examples it processed (> 0) and why it stopped;
    6. it leaves the run's trained adapter unchanged (other methods start from it).
    """
    name = name if name is not None else getattr(unlearner_cls, "name", "")
    found = Findings(f"unlearner {name!r} "
                     f"({getattr(unlearner_cls, '__qualname__', repr(unlearner_cls))})")
    unlearner = _build(unlearner_cls, name, ctx, found)
    if unlearner is not None:
        _serve(unlearner, name, ctx, request, found)
    found.done()


def _build(unlearner_cls: type[Unlearner], name: str, ctx: UnlearningContext,
           found: Findings) -> Unlearner | None:
    if not found.check(isinstance(unlearner_cls, type) and issubclass(unlearner_cls, Unlearner),
                       "is a subclass of privaudit.unlearning.base.Unlearner",
                       f"got {unlearner_cls!r}"):
        return None
    found.check(bool(unlearner_cls.name) and unlearner_cls.name == name,
                "has a non-empty `name`, the name it is registered under",
                f"name is {unlearner_cls.name!r}, registered as {name!r}")
    found.check(unlearner_cls.exactness in ("exact", "approximate"),
                "declares `exactness` 'exact' or 'approximate'",
                f"got {unlearner_cls.exactness!r}")
    unlearner: Unlearner | None = None
    with found.step("builds from the run's unlearning config (cls(ctx.ucfg))"):
        unlearner = unlearner_cls(ctx.ucfg)
    return unlearner


def _target(ctx: UnlearningContext, name: str, unlearner: Unlearner,
            request: ErasureRequest | None) -> ErasureTarget:
    ledger = read_ledger(ctx.run)
    gone = erased_so_far(ledger)
    if request is None:
        first = next(iter(ctx.data.clients.values()))
        record = next(r.id for r in first
                      if r.id not in gone and r.id not in ctx.audit_canary_ids)
        request = ErasureRequest(id=f"conformance-{name}", kind="record", ids=[record])
    (req,) = resolve_requests([request], ctx.data, erased=gone)
    # an unreachable stopping target: iterative methods run until their step cap
    return make_target(ctx, ledger, name, unlearner, req, reference=math.inf)


@contextmanager
def _watching_training() -> Iterator[set[str]]:
    """The record ids of every batch built from an :class:`EncodedSet` with gradients on."""
    touched: set[str] = set()
    original: Callable[[EncodedSet, Sequence[int]], Batch] = EncodedSet.batch

    def batch(data: EncodedSet, indices: Sequence[int]) -> Batch:
        if torch.is_grad_enabled():
            touched.update(data.record_ids[i] for i in indices)
        return original(data, indices)

    setattr(EncodedSet, "batch", batch)  # noqa: B010  (every instance, for this block only)
    try:
        yield touched
    finally:
        setattr(EncodedSet, "batch", original)  # noqa: B010


def _serve(unlearner: Unlearner, name: str, ctx: UnlearningContext,
           request: ErasureRequest | None, found: Findings) -> None:
    trained_sha = state_sha256(ctx.trained_state)
    target: ErasureTarget | None = None
    with found.step("the erase stage can build its target (start model, forget set)"):
        target = _target(ctx, name, unlearner, request)
    if target is None:
        return
    outcome: MethodOutcome | None = None
    with found.step("serves a request (unlearn)"), _watching_training() as touched:
        outcome = unlearner.unlearn(ctx, target, read_ledger(ctx.run))
    found.check(state_sha256(ctx.trained_state) == trained_sha,
                "leaves the run's trained adapter unchanged", "ctx.trained_state was modified")
    if outcome is None:
        return
    if not found.check(isinstance(outcome, MethodOutcome), "unlearn() returns a MethodOutcome",
                       f"got {type(outcome).__name__}"):
        return
    _check_model(outcome, target, ctx, found)
    _check_lineage(outcome, target, touched, found)
    found.check(outcome.examples_processed > 0, "reports the examples it processed (> 0)",
                f"examples_processed = {outcome.examples_processed!r}")
    found.check(bool(outcome.stopping_reason), "says why it stopped (stopping_reason)",
                f"got {outcome.stopping_reason!r}")


def _check_model(outcome: MethodOutcome, target: ErasureTarget, ctx: UnlearningContext,
                 found: Findings) -> None:
    shapes = {n: tuple(t.shape) for n, t in ctx.trained_state.items()}
    states = outcome.model.states
    wrong = [k for k, s in enumerate(states) if {n: tuple(t.shape) for n, t in s.items()}
             != shapes]
    found.check(bool(states) and not wrong,
                "returns a model whose every state has the trained adapter's tensors and shapes",
                f"{len(states)} state(s); state(s) {wrong} differ" if states else "no state")
    found.check(len(states) == len(target.start.states),
                "returns one state per state of the model it started from",
                f"{len(states)} state(s), started from {len(target.start.states)}")
    if states and not wrong:
        found.check(outcome.model.sha256 != target.start.sha256,
                    "changes the model it started from", "the returned model is the start")


def _check_lineage(outcome: MethodOutcome, target: ErasureTarget, touched: set[str],
                   found: Findings) -> None:
    erased, forget = target.erased, target.forget
    reported = outcome.trained_ids | outcome.ascended_ids
    found.check(not outcome.trained_ids & erased,
                "reports no erased record among those it trained on (trained_ids)",
                f"{len(outcome.trained_ids & erased)} erased record(s) in trained_ids, "
                f"e.g. {sorted(outcome.trained_ids & erased)[:3]}")
    found.check(touched & erased <= outcome.ascended_ids,
                "never trains on an erased record (except forget records it ascends)",
                f"batches with gradients on held erased records "
                f"{sorted((touched & erased) - outcome.ascended_ids)[:3]}")
    found.check(bool(reported), "reports what it used (trained_ids or ascended_ids)",
                "both are empty")
    found.check(touched <= reported,
                "reports every record it trained on (lineage: trained_ids | ascended_ids)",
                f"{len(touched - reported)} record(s) trained on but not reported, "
                f"e.g. {sorted(touched - reported)[:3]}")
    found.check(outcome.ascended_ids <= forget,
                "ascends only records of the forget set",
                f"ascended_ids outside it: {sorted(outcome.ascended_ids - forget)[:3]}")
