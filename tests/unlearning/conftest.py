"""Fixtures for the unlearning tests: one tiny run that memorises, served three requests with
every method while every example id a training step touches is recorded; and one fast tiny
run trained in SISA mode."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.audit.erase_run import open_run_context
from privaudit.audit.pipeline import run_audit
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.data import PreparedData, prepare_data
from privaudit.mechanisms.tasks import Batch, EncodedSet
from privaudit.reports.schema import Report
from privaudit.unlearning.base import UnlearningContext, available_unlearners
from tests.conftest import TINY, merge

ALL_METHODS = available_unlearners()

# Memorises (label noise 0.5, many local epochs): erased records have a far lower loss than
# held-out non-members, so unlearning has something to remove. Three clients, so that a
# client request leaves a federation.
MEMORISE: dict[str, Any] = {
    "data": {"synthetic": {"label_noise": 0.5}},
    "federation": {"clients": 3, "rounds": 2, "local_epochs": 20, "learning_rate": 0.01,
                   "batch_size": 8},
    "model": {"lora": {"rank": 16, "alpha": 32}, "tiny": {"hidden": 128, "intermediate": 256}},
    "unlearning": {"methods": ALL_METHODS, "sisa": {"shards": 2, "slices": 2}},
}


def best_fit_subjects(ctx: UnlearningContext, *, worst: bool = False) -> list[str]:
    """The training records of the third of data subjects the trained model fits best (lowest
    mean loss): a forget set the model demonstrably remembers, whose subjects the oracle never
    saw (erasing single records would leave their subject's other records, which share names
    and contact details, in the oracle's training data). ``worst``: the third it fits worst."""
    ranked = ranked_subjects(ctx)
    ranked = ranked[::-1] if worst else ranked
    chosen = set(ranked[: len(ranked) // 3])
    subject = {r.id: r.subject_id for r in ctx.data.training}
    return [r for d in ctx.clients.values() for r in d.record_ids if subject[r] in chosen]


def ranked_subjects(ctx: UnlearningContext) -> list[str]:
    """The data subjects of the training clients, best fit first (lowest mean loss under the
    trained model; ties by id)."""
    from privaudit.unlearning.evaluate import per_example_loss

    subject = {r.id: r.subject_id for r in ctx.data.training}
    losses: dict[str, list[float]] = defaultdict(list)
    for d in ctx.clients.values():
        for rid, loss in zip(d.record_ids, per_example_loss(
                ctx.bundle.model, [ctx.trained_state], d, ctx.recipe.task), strict=True):
            losses[subject[rid]].append(float(loss))
    return sorted(losses, key=lambda s: (sum(losses[s]) / len(losses[s]), s))


def data_of(cfg: AuditConfig) -> PreparedData:
    return prepare_data(cfg.data, task=cfg.model.task, k=cfg.federation.clients, seed=cfg.seed,
                        canaries=cfg.attacks.canaries)


class TouchRecorder:
    """Every record id a batch is built from while gradients are on (a training step, not an
    evaluation), grouped by the erase job (request, method) that was running."""

    def __init__(self) -> None:
        self.active = False
        self.pending: set[str] = set()
        self.by_job: dict[tuple[str, str], set[str]] = defaultdict(set)

    def wrap(self, original: Any) -> Any:
        recorder = self

        def batch(data: EncodedSet, indices: Sequence[int]) -> Batch:
            if recorder.active and torch.is_grad_enabled():
                recorder.pending.update(data.record_ids[i] for i in indices)
            return original(data, indices)  # type: ignore[no-any-return]

        return batch

    # the Reporter protocol: the erase stage announces each finished job
    @contextmanager
    def stage(self, name: str, total: int) -> Iterator[Any]:
        self.active = name == "erase"
        recorder = self

        class _Progress:
            def advance(self, message: str = "") -> None:
                if recorder.active:
                    match = re.match(r"(\S+): (\S+) ", message)
                    if match:
                        recorder.by_job[(match[1], match[2])] |= recorder.pending
                    recorder.pending = set()

        yield _Progress()
        self.active = False

    def info(self, message: str) -> None:
        pass


@dataclass
class ErasedRun:
    cfg: AuditConfig
    run_dir: Path
    report: Report
    data: PreparedData
    requests: dict[str, list[str]]  # request id → erased record ids
    touched: dict[tuple[str, str], set[str]] = field(default_factory=dict)


@pytest.fixture(scope="session")
def erased_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErasedRun]:
    """The memorising run with a subject, a record and a client request, every method."""
    base = config_from_dict(merge(TINY, MEMORISE))
    data = data_of(base)
    run_dir = tmp_path_factory.mktemp("erased") / "run"
    subject, record = _memorised(base, data, run_dir)
    requests = [
        {"id": "cli", "kind": "client", "ids": ["client-2"]},
        {"id": "subj", "kind": "subject", "ids": [subject]},
        {"id": "rec", "kind": "record", "ids": [record]},
    ]
    cfg = config_from_dict(merge(TINY, merge(MEMORISE, {"unlearning": {"requests": requests}})))
    recorder = TouchRecorder()
    mp = pytest.MonkeyPatch()
    mp.setattr(EncodedSet, "batch", recorder.wrap(EncodedSet.batch))
    try:  # the probe's training is this run's (the same config sections): resumed, not redone
        outcome = run_audit(cfg, run_dir, reporter=recorder, resume=True)
    finally:
        mp.undo()
    erased = {
        "subj": [r.id for r in data.training if r.subject_id == subject],
        "rec": [record],
        "cli": [r.id for r in data.clients["client-2"]],
    }
    yield ErasedRun(cfg=cfg, run_dir=run_dir, report=outcome.report, data=data,
                    requests=erased, touched=dict(recorder.by_job))


def _memorised(cfg: AuditConfig, data: PreparedData, probe: Path) -> tuple[str, str]:
    """The client-0 subject and the client-1 record the trained model fits best: training
    is deterministic, so a probe run without requests shows what the real run memorises."""
    from privaudit.core.progress import PlainReporter
    from privaudit.unlearning.evaluate import per_example_loss

    run_audit(cfg.model_copy(update={"unlearning": cfg.unlearning.model_copy(
        update={"methods": []})}), probe, reporter=PlainReporter(quiet=True))
    ctx, _ = open_run_context(RunDir(probe))
    task = cfg.model.task
    by_subject: dict[str, list[float]] = defaultdict(list)
    d0 = ctx.clients["client-0"]
    for rid, loss in zip(d0.record_ids, per_example_loss(ctx.bundle.model, [ctx.trained_state],
                                                         d0, task), strict=True):
        by_subject[rid.split("-r")[0]].append(float(loss))
    subject = min(by_subject, key=lambda s: sum(by_subject[s]) / len(by_subject[s]))
    d1 = ctx.clients["client-1"]
    losses = per_example_loss(ctx.bundle.model, [ctx.trained_state], d1, task)
    record = d1.record_ids[int(losses.argmin())]
    assert any(r.subject_id == subject for r in data.clients["client-0"])
    return subject, record


@dataclass
class SisaRun:
    ctx: UnlearningContext
    run: RunDir


@pytest.fixture(scope="session")
def sisa_run(tmp_path_factory: pytest.TempPathFactory) -> SisaRun:
    """A fast tiny run trained in SISA mode (2 shards × 3 slices), opened as a context."""
    cfg = config_from_dict(merge(TINY, {"unlearning": {
        "methods": ["sisa"], "sisa": {"shards": 2, "slices": 3, "epochs_per_slice": 2}}}))
    run_dir = tmp_path_factory.mktemp("sisa") / "run"
    from privaudit.core.progress import PlainReporter

    run_audit(cfg, run_dir, reporter=PlainReporter(quiet=True))
    run = RunDir(run_dir)
    ctx, _ = open_run_context(run)
    return SisaRun(ctx=ctx, run=run)
