"""DP-FedAvg pieces: clipping to S, uniform weights, fixed denominator, noise z·S."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from privaudit.core.errors import InternalError, PrivacyBudgetError
from privaudit.mechanisms.dp import (
    add_noise_to_sum,
    clip_delta,
    noisy_uniform_aggregate,
    sample_clients,
)


def _norm(delta: dict[str, torch.Tensor]) -> float:
    return float(torch.sqrt(sum(t.double().pow(2).sum() for t in delta.values())))


@settings(max_examples=60, deadline=None)
@given(
    scale=st.floats(min_value=1e-3, max_value=1e3),
    clip=st.floats(min_value=1e-2, max_value=10.0),
    seed=st.integers(0, 2**16),
)
def test_clipped_delta_has_norm_at_most_s_and_keeps_its_direction(
    scale: float, clip: float, seed: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    delta = {"a": torch.randn(3, 4, generator=g) * scale, "b": torch.randn(5, generator=g)}
    clipped, norm = clip_delta(delta, clip_norm=clip)
    assert norm == pytest.approx(_norm(delta), rel=1e-6)
    assert _norm(clipped) <= clip * (1 + 1e-5)
    factor = min(1.0, clip / norm)
    for k in delta:  # one factor for all tensors: the global norm, not per tensor
        torch.testing.assert_close(clipped[k], delta[k] * factor)


def test_noise_std_is_z_times_s_over_the_expected_number_of_clients() -> None:
    z, s, expected = 1.5, 0.8, 4.0
    zeros = {"w": torch.zeros(400_000)}
    out = add_noise_to_sum(
        zeros,
        clip_norm=s,
        noise_multiplier=z,
        expected_clients=expected,
        generator=torch.Generator().manual_seed(0),
    )
    assert float(out["w"].std()) == pytest.approx(z * s / expected, rel=0.01)
    assert abs(float(out["w"].mean())) < 0.01 * z * s / expected


def test_clients_weigh_the_same_whatever_their_size_and_the_denominator_is_fixed() -> None:
    s = 1.0
    # two clients turned up out of an expected four; their example counts play no part
    deltas = [{"w": torch.tensor([s, 0.0])}, {"w": torch.tensor([0.0, s])}]
    out = noisy_uniform_aggregate(
        deltas,
        clip_norm=s,
        noise_multiplier=1e-9,
        expected_clients=4.0,
        generator=torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(out["w"], torch.tensor([0.25, 0.25]), atol=1e-6, rtol=0)


def test_an_unclipped_delta_is_refused() -> None:
    with pytest.raises(InternalError, match="norm 2 > clip_norm 1"):
        noisy_uniform_aggregate(
            [{"w": torch.tensor([2.0, 0.0])}],
            clip_norm=1.0,
            noise_multiplier=1.0,
            expected_clients=1.0,
        )


def test_a_round_with_no_client_sampled_releases_noise_only() -> None:
    like = {"w": torch.zeros(50_000)}
    out = noisy_uniform_aggregate(
        [], clip_norm=1.0, noise_multiplier=2.0, expected_clients=2.0, like=like
    )
    assert float(out["w"].std()) == pytest.approx(1.0, rel=0.03)
    with pytest.raises(InternalError, match="needs `like`"):
        noisy_uniform_aggregate([], clip_norm=1.0, noise_multiplier=2.0, expected_clients=2.0)


def test_clients_are_poisson_sampled_at_rate_q() -> None:
    g = torch.Generator().manual_seed(0)
    counts = [len(sample_clients(20, sample_rate=0.3, generator=g)) for _ in range(2000)]
    assert sum(counts) / len(counts) == pytest.approx(6.0, rel=0.03)
    assert len(set(counts)) > 5  # the number varies: Poisson, not a fixed-size draw
    assert sample_clients(7, sample_rate=1.0) == list(range(7))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"noise_multiplier": 0.0}, "noise_multiplier"),
        ({"clip_norm": 0.0}, "clip_norm"),
        ({"expected_clients": 0.0}, "client_sample_rate"),
    ],
)
def test_noise_without_a_positive_scale_is_refused(kwargs: dict[str, float], field: str) -> None:
    args = {"clip_norm": 1.0, "noise_multiplier": 1.0, "expected_clients": 2.0} | kwargs
    with pytest.raises(PrivacyBudgetError, match=rf"privacy\.dp\.{field}"):
        add_noise_to_sum({"w": torch.zeros(3)}, **args)
