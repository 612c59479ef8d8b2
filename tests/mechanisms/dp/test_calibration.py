"""Noise calibrated to a target ε over the whole schedule."""

from __future__ import annotations

import pytest
import torch
from opacus.data_loader import DPDataLoader
from torch.utils.data import DataLoader, TensorDataset

from privaudit.core.errors import PrivacyBudgetError
from privaudit.mechanisms.dp import (
    ClientAccountant,
    DPConfig,
    calibrate_noise,
    client_noise_multiplier,
    poisson_schedule,
    record_noise_multipliers,
)

DELTA = 1e-5


def _epsilon(mechanism: str, sigma: float, q: float, steps: int) -> float:
    acc = ClientAccountant(mechanism)
    acc.step(noise_multiplier=sigma, sample_rate=q, num_steps=steps)
    return acc.epsilon(DELTA)


@pytest.mark.parametrize(
    ("mechanism", "target", "q", "steps"),
    [
        ("prv", 1.0, 0.1, 500),
        ("prv", 8.0, 0.25, 200),
        ("rdp", 0.5, 0.25, 40),
        ("rdp", 3.0, 1.0, 20),
    ],
)
def test_calibrated_noise_spends_at_most_the_target_and_within_five_percent(
    mechanism: str, target: float, q: float, steps: int
) -> None:
    sigma = calibrate_noise(
        target_epsilon=target, delta=DELTA, sample_rate=q, steps=steps, accountant=mechanism
    )
    assert 0.95 * target <= _epsilon(mechanism, sigma, q, steps) <= target


def test_noise_calibrated_per_round_overspends_the_whole_schedule() -> None:
    rounds, q, per_round = 5, 0.25, 8
    sigma_round = calibrate_noise(
        target_epsilon=2.0, delta=DELTA, sample_rate=q, steps=per_round, accountant="rdp"
    )
    sigma_all = calibrate_noise(
        target_epsilon=2.0, delta=DELTA, sample_rate=q, steps=rounds * per_round, accountant="rdp"
    )
    assert sigma_all > sigma_round
    assert _epsilon("rdp", sigma_round, q, rounds * per_round) > 2.0 * 1.5


def test_an_unreachable_target_names_target_epsilon() -> None:
    with pytest.raises(PrivacyBudgetError, match=r"privacy\.dp\.target_epsilon.*unreachable"):
        calibrate_noise(
            target_epsilon=1e-4, delta=DELTA, sample_rate=1.0, steps=50, accountant="rdp"
        )


def test_bad_calibration_inputs_are_all_reported() -> None:
    with pytest.raises(PrivacyBudgetError) as err:
        calibrate_noise(target_epsilon=-1, delta=2.0, sample_rate=0.0, steps=0, accountant="x")
    fields = ["target_epsilon", "delta", "sample_rate", "steps", "accountant"]
    assert [p.split(":")[0] for p in err.value.problems] == [f"privacy.dp.{f}" for f in fields]


@pytest.mark.parametrize(("n", "batch"), [(100, 32), (93, 1), (20, 64), (256, 16)])
def test_poisson_schedule_matches_the_opacus_loader_and_never_undercounts_steps(
    n: int, batch: int
) -> None:
    loader = DataLoader(TensorDataset(torch.zeros(n, 1)), batch_size=batch)
    dp = DPDataLoader.from_data_loader(loader)
    q, steps = poisson_schedule(n_records=n, batch_size=batch, local_epochs=1)
    assert q == dp.sample_rate
    assert len(dp) <= steps <= len(dp) + 1


def test_each_client_gets_noise_for_its_own_schedule_within_the_target() -> None:
    cfg = DPConfig(mode="record", target_epsilon=2.0, delta=DELTA, accountant="rdp")
    sizes = [40, 40, 200]
    sigmas = record_noise_multipliers(
        cfg, client_sizes=sizes, rounds=3, local_epochs=2, batch_size=8
    )
    assert sigmas[0] == sigmas[1] != sigmas[2]
    for n, sigma in zip(sizes, sigmas, strict=True):
        q, steps = poisson_schedule(n_records=n, batch_size=8, local_epochs=2, rounds=3)
        assert 1.9 <= _epsilon("rdp", sigma, q, steps) <= 2.0


def test_a_given_noise_multiplier_is_used_as_is() -> None:
    cfg = DPConfig(mode="record", noise_multiplier=1.1, delta=DELTA)
    assert record_noise_multipliers(
        cfg, client_sizes=[10, 20], rounds=2, local_epochs=1, batch_size=4
    ) == [1.1, 1.1]


def test_client_mode_noise_is_calibrated_over_rounds_at_the_client_rate() -> None:
    cfg = DPConfig(
        mode="client", target_epsilon=4.0, delta=1e-3, client_sample_rate=0.5, accountant="rdp"
    )
    z = client_noise_multiplier(cfg, rounds=20)
    acc = ClientAccountant("rdp")
    acc.step(noise_multiplier=z, sample_rate=0.5, num_steps=20)
    assert 3.8 <= acc.epsilon(1e-3) <= 4.0
