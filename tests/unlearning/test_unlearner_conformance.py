"""The unlearning contract beyond what every registered method is checked for in
``tests/test_common.py`` (the public kit's ``check_unlearner``): one name per method, the
step cap, the result's fields."""

from __future__ import annotations

import math

from privaudit.audit.stages.erase import make_target
from privaudit.reports.schema import UnlearningResult
from privaudit.unlearning.ascent import GradientAscent
from privaudit.unlearning.base import ErasureTarget, available_unlearners, get_unlearner
from privaudit.unlearning.ledger import erased_so_far, read_ledger
from privaudit.unlearning.requests import ErasureRequest, resolve_requests
from tests.unlearning.conftest import SisaRun


def _target(sisa_run: SisaRun, name: str, *, client: str = "client-0") -> ErasureTarget:
    ctx = sisa_run.ctx
    ledger = read_ledger(sisa_run.run)
    gone = erased_so_far(ledger)
    record = next(r.id for r in ctx.data.clients[client] if r.id not in gone)
    request = ErasureRequest(id=f"conf-{name}", kind="record", ids=[record])
    (req,) = resolve_requests([request], ctx.data, erased=gone)
    unlearner = get_unlearner(name)(ctx.ucfg)
    # an unreachable stopping target: gradient methods run until their step cap
    return make_target(ctx, ledger, name, unlearner, req, reference=math.inf)


def test_every_method_has_its_own_registered_name() -> None:
    names = ["oracle", *available_unlearners()]
    assert len({get_unlearner(n) for n in names}) == len(names)
    assert set(available_unlearners()) == {
        "gradient_ascent", "graddiff", "npo", "sisa", "finetune_retain", "federaser"}
    assert "oracle" not in available_unlearners()  # it always runs, first


def test_step_cap_stops_gradient_ascent_and_the_result_says_so(sisa_run: SisaRun) -> None:
    ctx = sisa_run.ctx
    ucfg = ctx.ucfg.model_copy(update={"ascent": ctx.ucfg.ascent.model_copy(
        update={"max_steps": 2})})
    target = _target(sisa_run, "gradient_ascent")
    outcome = GradientAscent(ucfg).unlearn(ctx, target, read_ledger(sisa_run.run))
    assert outcome.stopping_reason is not None
    assert outcome.stopping_reason.startswith("client-0: step cap (2 steps)")
    assert outcome.examples_processed == 2 * len(target.forget)


def test_an_ascent_that_takes_no_step_says_so_in_its_flags(sisa_run: SisaRun) -> None:
    import torch

    ctx = sisa_run.ctx
    target = _target(sisa_run, "gradient_ascent")
    target = make_target(ctx, read_ledger(sisa_run.run), "gradient_ascent",
                         GradientAscent(ctx.ucfg), target.request, reference=0.0)  # reached
    outcome = GradientAscent(ctx.ucfg).unlearn(ctx, target, read_ledger(sisa_run.run))
    assert any("gradient_ascent took no step" in f for f in outcome.flags), outcome.flags
    assert outcome.examples_processed == 0
    (after,) = outcome.model.states
    assert all(torch.equal(after[k], v) for k, v in target.start.states[0].items())


def test_result_round_trips_through_json() -> None:
    fields = UnlearningResult.model_json_schema()["properties"]
    for key in ("request_id", "kind", "method", "exactness", "seconds", "speedup_vs_oracle",
                "model_sha256_before", "model_sha256_after", "forget", "retain", "flags",
                "stopping_reason", "examples_processed", "dp_bound"):
        assert key in fields
