"""``check_engine``: an engine moves values and holds no logic, so it must train what the
in-process engine trains.

An engine (``privaudit.mechanisms.federated.engine``) runs a
:class:`~privaudit.mechanisms.federated.engine.TrainingJob`'s rounds: each selected client's
update from the global adapter, the strategy's aggregation, the utility of the new adapter.
Where the clients run (this process, Ray actors, remote silos) is the engine's business; what
comes back is not. The check runs the same job (:func:`~privaudit.testing.toyjob.toy_job` by
default: a toy classifier, three clients, a second round that leaves one client out) through
the engine and through :class:`~privaudit.mechanisms.federated.engine.InProcessEngine`, from
the start and resumed from round 2, and compares what they return.

>>> from privaudit.mechanisms.federated.engine import InProcessEngine
>>> check_engine(InProcessEngine, name="inprocess")  # None when every property holds
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import torch

from privaudit.mechanisms.federated.engine import (
    Engine,
    InProcessEngine,
    TrainingJob,
    TrainingResult,
)
from privaudit.mechanisms.models import AdapterState
from privaudit.testing.findings import Findings
from privaudit.testing.toyjob import toy_job

__all__ = ["check_engine"]

#: what one run hands back: the result, and what ``on_round`` saw (round, client ids, state)
Run = tuple[TrainingResult, list[tuple[int, list[str], AdapterState]]]


def check_engine(
    engine_cls: type[Engine],
    *,
    name: str | None = None,
    make_job: Callable[[], TrainingJob] = toy_job,
    atol: float = 1e-6,
) -> None:
    """Check that ``engine_cls`` keeps the engine contract; AssertionError naming the engine
    and every property it fails.

    ``name``: the name it is registered under. ``make_job``: builds a fresh job, the same one
    on every call (its ``on_round`` is replaced by the check's). ``atol``: how far its adapters
    may be from the in-process ones (an engine whose clients use another thread count can
    differ in the last bits). The engine runs twice: one with a slow start pays it twice
    (Flower's Ray runtime: about 26 s a run on 2 cores).

    The properties:

    1. it is an :class:`Engine` subclass with a non-empty ``name`` (equal to ``name``), built
       without arguments, whose ``run`` takes one job;
    2. ``run`` returns a :class:`TrainingResult` whose rounds are the job's rounds, each
       trained by the clients the strategy selected, with the in-process round's utility;
    3. its final adapter has the initial adapter's tensors and is the in-process one (within
       ``atol``), and the job's initial adapter is left unchanged (no training in place);
    4. every record the in-process engine trained on is in ``seen_ids``, no other, and every
       client's state counts the same rounds and local steps;
    5. ``on_round`` is called once per round, in order, with the updates of that round's
       clients and the round's global adapter;
    6. resumed at round 2 (``start_round``, ``client_states``, the round-1 adapter), it runs
       round 2 only and ends where the in-process engine ends.
    """
    found = Findings(f"engine {getattr(engine_cls, 'name', '')!r} "
                     f"({getattr(engine_cls, '__qualname__', repr(engine_cls))})")
    engine = _build(engine_cls, name, found)
    if engine is not None:
        reference = _run(InProcessEngine(), make_job())
        first = make_job()
        before = {n: t.clone() for n, t in first.initial_state.items()}
        ran = _attempt(engine, first, "from round 1", found)
        if ran is not None:
            found.check(_close(first.initial_state, before, 0.0),
                        "leaves the job's initial adapter unchanged",
                        "run() changed job.initial_state in place")
            _compare(ran, reference, "from round 1", atol, found)
            resumed = _resumed(make_job, reference)
            ran = _attempt(engine, resumed(), "resumed at round 2", found)
            if ran is not None:
                _compare(ran, _run(InProcessEngine(), resumed()), "resumed at round 2", atol,
                         found)
    found.done()


def _build(engine_cls: type[Engine], name: str | None, found: Findings) -> Engine | None:
    if not found.check(isinstance(engine_cls, type) and issubclass(engine_cls, Engine),
                       "is a subclass of privaudit.mechanisms.federated.engine.Engine",
                       f"got {engine_cls!r}"):
        return None
    cls_name = engine_cls.name
    found.check(isinstance(cls_name, str) and bool(cls_name),
                "has a non-empty class attribute `name`", f"got {cls_name!r}")
    if name is not None:
        found.check(cls_name == name, "its `name` is the name it is registered under",
                    f"registered as {name!r}, name is {cls_name!r}")
    params = list(inspect.signature(engine_cls.run).parameters.values())[1:]
    required = [p for p in params if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
    found.check(len(params) >= 1 and len(required) <= 1,
                "its run(job) takes the job as its one required argument",
                f"run{inspect.signature(engine_cls.run)}")
    engine: Engine | None = None
    with found.step("builds without arguments (the registry calls cls())"):
        engine = engine_cls()
    return engine


def _run(engine: Engine, job: TrainingJob) -> Run:
    seen: list[tuple[int, list[str], AdapterState]] = []

    def on_round(r: int, state: AdapterState, updates: list[Any], record: Any) -> None:
        seen.append((r, [u.client_id for u in updates],
                     {n: t.detach().clone() for n, t in state.items()}))

    result = engine.run(dataclasses.replace(job, on_round=on_round))
    return result, seen


def _attempt(engine: Engine, job: TrainingJob, when: str, found: Findings) -> Run | None:
    ran: Run | None = None
    with found.step(f"runs the job {when}"):
        ran = _run(engine, job)
        if not found.check(isinstance(ran[0], TrainingResult),
                           "run() returns a TrainingResult", f"got {type(ran[0]).__name__}"):
            ran = None
    return ran


def _resumed(make_job: Callable[[], TrainingJob], reference: Run
             ) -> Callable[[], TrainingJob]:
    """The job continued at round 2 from the in-process engine's round-1 checkpoint."""
    result, seen = reference
    state = seen[0][2]
    clients = result.rounds[0].client_states

    def build() -> TrainingJob:
        return dataclasses.replace(make_job(), start_round=2, initial_state=dict(state),
                                   client_states=dict(clients))

    return build


def _close(a: AdapterState, b: AdapterState, atol: float) -> bool:
    return set(a) == set(b) and all(
        a[n].shape == b[n].shape and a[n].dtype == b[n].dtype
        and bool(torch.allclose(a[n].double(), b[n].double(), rtol=0.0, atol=atol)) for n in a)


def _compare(ran: Run, ref: Run, when: str, atol: float, found: Findings) -> None:
    (got, got_seen), (want, want_seen) = ran, ref
    found.check([r.round for r in got.rounds] == [r.round for r in want.rounds],
                f"{when}: returns one RoundRecord per round run, in order",
                f"rounds {[r.round for r in got.rounds]}, want {[r.round for r in want.rounds]}")
    found.check([r.clients for r in got.rounds] == [r.clients for r in want.rounds],
                f"{when}: each round is trained by the clients the strategy selected",
                f"{[r.clients for r in got.rounds]}, want {[r.clients for r in want.rounds]}")
    found.check([(r.utility_metric, round(r.utility, 6)) for r in got.rounds]
                == [(r.utility_metric, round(r.utility, 6)) for r in want.rounds],
                f"{when}: each round reports the utility of its global adapter",
                f"{[(r.utility_metric, r.utility) for r in got.rounds]}, want "
                f"{[(r.utility_metric, r.utility) for r in want.rounds]}")
    found.check(_close(got.final_state, want.final_state, atol),
                f"{when}: its final adapter is the in-process engine's (atol {atol:g})",
                _difference(got.final_state, want.final_state))
    found.check(got.seen_ids == want.seen_ids,
                f"{when}: seen_ids lists exactly the records the clients trained on",
                f"{len(got.seen_ids - want.seen_ids)} extra, "
                f"{len(want.seen_ids - got.seen_ids)} missing")
    counts = {c: (s.rounds_taken, s.steps_taken) for c, s in got.client_states.items()}
    wanted = {c: (s.rounds_taken, s.steps_taken) for c, s in want.client_states.items()}
    found.check(counts == wanted,
                f"{when}: every client's state counts the rounds and local steps it took",
                f"(rounds, steps) {counts}, want {wanted}")
    found.check([(r, ids) for r, ids, _ in got_seen] == [(r, ids) for r, ids, _ in want_seen]
                and all(_close(g[2], w[2], atol) for g, w in zip(got_seen, want_seen,
                                                                 strict=False)),
                f"{when}: on_round is called once per round with its updates and global adapter",
                f"calls {[(r, ids) for r, ids, _ in got_seen]}, want "
                f"{[(r, ids) for r, ids, _ in want_seen]}")


def _difference(a: AdapterState, b: AdapterState) -> str:
    if set(a) != set(b):
        return f"tensors {sorted(set(a) ^ set(b))[:3]} are in one adapter only"
    bad = [n for n in a if a[n].shape != b[n].shape or a[n].dtype != b[n].dtype]
    if bad:
        return f"{bad[0]}: {a[bad[0]].dtype}{tuple(a[bad[0]].shape)}, want " \
               f"{b[bad[0]].dtype}{tuple(b[bad[0]].shape)}"
    worst = max(float((a[n].double() - b[n].double()).abs().max()) for n in a)
    return f"largest difference {worst:.3g}"
