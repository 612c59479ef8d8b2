"""Every registered attack, unlearner and engine passes the public conformance kit
(``privaudit.testing``, STYLE 11): a new member is tested by being registered. The kit is
also shown to catch broken members, naming the member and the property it fails."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch

from privaudit.attacks.scores import AttackInputs, LossAttack
from privaudit.attacks.scores.base import ATTACKS
from privaudit.mechanisms.federated.engine import ENGINES, InProcessEngine, TrainingJob
from privaudit.mechanisms.federated.strategy import FedAvg
from privaudit.mechanisms.models import adapter_state, set_adapter_state
from privaudit.mechanisms.tasks import forward
from privaudit.testing import World, attack_world, check_attack, check_engine, check_unlearner
from privaudit.testing import null_world as make_null_world
from privaudit.unlearning.base import (
    UNLEARNERS,
    ErasureTarget,
    MethodOutcome,
    UnlearnedModel,
    Unlearner,
    UnlearningContext,
)
from tests.unlearning.conftest import SisaRun, sisa_run  # noqa: F401  (the tiny SISA run)

#: engines whose runtime this test swaps for a stand-in, and why
TRANSPORT_STANDINS = {
    "flower": "Flower's Ray runtime starts in ~26 s per run on 2 cores (the check runs the job "
              "twice); the ServerApp/ClientApp message flow runs on the loopback Grid of "
              "tests/mechanisms/federated/test_flower.py instead (Ray itself: "
              "test_flower_simulation.py)",
}


@pytest.fixture(scope="module")
def world() -> World:
    return attack_world()


@pytest.fixture(scope="module")
def null_world() -> World:
    return make_null_world()


@pytest.mark.parametrize("name", ATTACKS.names())
def test_every_registered_attack_keeps_the_attack_contract(
    name: str, world: World, null_world: World
) -> None:
    check_attack(ATTACKS.get(name), world=world, null=null_world)


@pytest.mark.parametrize("name", UNLEARNERS.names())
def test_every_registered_unlearner_keeps_the_unlearning_contract(
    name: str, sisa_run: SisaRun  # noqa: F811
) -> None:
    check_unlearner(UNLEARNERS.get(name), sisa_run.ctx, name=name)


@pytest.mark.parametrize("name", ENGINES.names())
def test_every_registered_engine_trains_what_the_in_process_engine_trains(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name in TRANSPORT_STANDINS:
        _flower_on_a_loopback_grid(monkeypatch)
    check_engine(ENGINES.get(name), name=name)


def _flower_on_a_loopback_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower's simulation runtime replaced by in-process ClientApp calls (see
    ``TRANSPORT_STANDINS``); skipped when the optional ``flower`` extra is not installed."""
    reason = 'the flower engine needs the optional extra: pip install "privaudit[flower]"'
    pytest.importorskip("flwr", reason=reason)
    pytest.importorskip("ray", reason=reason)
    from flwr.supercore.task_identity import TaskIdentity

    from privaudit.mechanisms.federated.flower import engine
    from privaudit.mechanisms.federated.flower.client_app import make_client_app
    from privaudit.mechanisms.federated.flower.server_app import Served, serve
    from privaudit.mechanisms.federated.flower.workload import ClientSide, ServerSide
    from tests.mechanisms.federated.test_flower import LoopbackGrid

    for key, value in (("_run_id", 1), ("_node_id", 0), ("_task_id", 1)):  # as a SuperLink sets
        monkeypatch.setattr(TaskIdentity, key, value)

    def runtime(clients: ClientSide, server: ServerSide, on_round: Any, _: Any) -> Served:
        grid = LoopbackGrid(make_client_app(lambda ctx: clients), len(clients.order))
        return serve(grid, server, on_round)

    monkeypatch.setattr(engine, "simulate", runtime)


# -- the kit catches broken members ------------------------------------------------------


class _Inverted(LossAttack):
    """Higher loss = member: the score convention backwards."""

    name = "inverted"

    def compute(self, inputs: AttackInputs) -> np.ndarray:
        return -super().compute(inputs)


class _OrderBlind(LossAttack):
    """Scores sorted: a score no longer belongs to its example."""

    name = "order_blind"

    def compute(self, inputs: AttackInputs) -> np.ndarray:
        return np.sort(super().compute(inputs))


@pytest.mark.parametrize(("attack", "claim"), [
    (_Inverted, "members score higher than non-members on a memorising world"),
    (_OrderBlind, "scores follow their examples when the examples are reordered"),
], ids=["inverted", "order-blind"])
def test_the_kit_names_the_attack_and_the_property_it_breaks(
    attack: type[LossAttack], claim: str, world: World, null_world: World
) -> None:
    with pytest.raises(AssertionError) as err:
        check_attack(attack, world=world, null=null_world)
    message = str(err.value)
    assert message.startswith(f"attack {attack.name!r} ({attack.__qualname__})")
    assert claim in message


class _IgnoresSelection(InProcessEngine):
    """Trains every client every round, whatever the strategy selected."""

    name = "ignores_selection"

    def run(self, job: TrainingJob) -> Any:
        return super().run(type(job)(**{**vars(job), "strategy": FedAvg()}))


def test_the_kit_names_the_engine_that_ignores_the_strategys_selection() -> None:
    with pytest.raises(AssertionError) as err:
        check_engine(_IgnoresSelection)
    message = str(err.value)
    assert message.startswith("engine 'ignores_selection' (_IgnoresSelection)")
    assert "each round is trained by the clients the strategy selected" in message


class _LeakyFinetune(Unlearner):
    """One descent step on the erased records themselves, reported as nothing trained."""

    name = "leaky_finetune"

    def unlearn(self, ctx: UnlearningContext, target: ErasureTarget,
                ledger: Mapping[str, Any]) -> MethodOutcome:
        model = ctx.bundle.model
        set_adapter_state(model, target.start.states[0])
        data = ctx.records(target.erased)
        forward(model, data.batch(range(len(data))), ctx.recipe.task).loss.mean().backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= 0.1 * p.grad
                    p.grad = None
        out = UnlearnedModel(states=[adapter_state(model)])
        set_adapter_state(model, ctx.trained_state)
        return MethodOutcome(model=out, examples_processed=len(data), stopping_reason="1 step")


def test_the_kit_catches_an_unlearner_that_trains_on_erased_records(
    sisa_run: SisaRun,  # noqa: F811
) -> None:
    with pytest.raises(AssertionError) as err:
        check_unlearner(_LeakyFinetune, sisa_run.ctx)
    message = str(err.value)
    assert message.startswith("unlearner 'leaky_finetune' (_LeakyFinetune) fails 3 ")
    for claim in ("never trains on an erased record", "reports what it used",
                  "reports every record it trained on"):
        assert claim in message
