from __future__ import annotations

import pytest
import torch

from privaudit.core.errors import ConfigError
from privaudit.mechanisms.federated import ClientUpdate, FedAvg


def _update(client: str, n: int, delta: list[float]) -> ClientUpdate:
    return ClientUpdate(
        client_id=client, round=1, delta={"w": torch.tensor(delta)}, n_examples=n, metrics={}
    )


def test_fedavg_of_known_updates_equals_the_hand_computed_weighted_mean() -> None:
    global_state = {"w": torch.tensor([1.0, 1.0])}
    updates = [_update("a", 1, [3.0, 0.0]), _update("b", 3, [-1.0, 4.0])]
    new = FedAvg(weighting="examples").aggregate(global_state, updates)
    # 1 + (1·3 + 3·(−1)) / 4 = 1.0 ; 1 + (1·0 + 3·4) / 4 = 4.0
    assert torch.allclose(new["w"], torch.tensor([1.0, 4.0]))


def test_uniform_weighting_ignores_example_counts() -> None:
    global_state = {"w": torch.tensor([0.0])}
    updates = [_update("a", 1, [2.0]), _update("b", 99, [4.0])]
    new = FedAvg(weighting="uniform").aggregate(global_state, updates)
    assert torch.allclose(new["w"], torch.tensor([3.0]))


def test_unknown_weighting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"federation\.weighting"):
        FedAvg(weighting="votes")
