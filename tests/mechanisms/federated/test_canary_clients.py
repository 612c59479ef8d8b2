"""Canary clients of a client-level DP audit send a fixed direction of norm S, untrained."""

from __future__ import annotations

import numpy as np
import torch

from privaudit.mechanisms.federated.canary_client import (
    CanaryClient,
    canary_cosines,
    canary_direction,
)
from privaudit.mechanisms.federated.client import ClientState, ClientUpdate


def test_a_canary_direction_has_the_clip_norm_and_depends_only_on_the_canary_id() -> None:
    like = {"a": torch.zeros(5, 3), "b": torch.zeros(7)}
    one = canary_direction("dp-canary-0001", like, norm=3.0)
    again = canary_direction("dp-canary-0001", like, norm=3.0)
    other = canary_direction("dp-canary-0002", like, norm=3.0)
    norm = torch.cat([v.flatten().double() for v in one.values()]).norm()
    assert abs(float(norm) - 3.0) < 1e-5
    assert all(torch.equal(one[k], again[k]) for k in like)
    assert not torch.equal(one["a"], other["a"])


def test_canary_cosine_is_one_for_its_own_direction_and_near_zero_for_others() -> None:
    like = {"w": torch.zeros(4000)}
    start = {"w": torch.zeros(4000)}
    trained = {"w": canary_direction("in", like, norm=1.0)["w"]}
    cos = canary_cosines(["in", "out"], start, trained)
    assert abs(cos[0] - 1.0) < 1e-6
    assert abs(cos[1]) < 4 / np.sqrt(4000)  # ~N(0, 1/d)


def test_a_canary_client_sends_its_direction_and_data_clients_train() -> None:
    calls: list[str] = []

    def inner(model, global_state, data, cfg, state, *, task, round_index, seed):  # type: ignore[no-untyped-def]
        calls.append(state.client_id)
        return ClientUpdate(client_id=state.client_id, round=round_index, delta={},
                            n_examples=1, metrics={"train_loss": 0.0}), state

    class _Data:
        record_ids = ("dp-canary-0007",)

        def __len__(self) -> int:
            return 1

    fn = CanaryClient(inner, clip_norm=2.0)
    g = {"w": torch.zeros(10)}
    update, state = fn(None, g, _Data(), None, ClientState("canary-client-0007"),  # type: ignore[arg-type]
                       task="classification", round_index=1, seed=0)
    assert calls == [] and state.rounds_taken == 1
    assert torch.allclose(update.delta["w"], canary_direction("dp-canary-0007", g, norm=2.0)["w"])
    fn(None, g, _Data(), None, ClientState("client-0"), task="classification",  # type: ignore[arg-type]
       round_index=1, seed=0)
    assert calls == ["client-0"]
