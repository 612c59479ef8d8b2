"""The persistent per-client accountant against Opacus driven directly."""

from __future__ import annotations

import itertools
import json
import math
import warnings

import pytest
from opacus.accountants import GaussianAccountant, PRVAccountant, RDPAccountant
from opacus.accountants.analysis import rdp as rdp_analysis

from privaudit.core.errors import PrivacyBudgetError
from privaudit.mechanisms.dp import (
    ClientAccountant,
    federation_epsilon,
    federation_epsilon_per_round,
    group_privacy,
)

DELTA = 1e-5
# (σ, q, steps) of each round one client took part in; σ and q change once
ROUNDS = [(1.0, 0.1, 30), (1.0, 0.1, 30), (1.0, 0.1, 30), (1.3, 0.05, 40)]
OPACUS = {"prv": PRVAccountant, "rdp": RDPAccountant}


def _accountant(mechanism: str, rounds: list[tuple[float, float, int]]) -> ClientAccountant:
    acc = ClientAccountant(mechanism)
    for r, (sigma, q, steps) in enumerate(rounds):
        acc.step(noise_multiplier=sigma, sample_rate=q, num_steps=steps, round_index=r)
    return acc


@pytest.mark.parametrize("mechanism", ["prv", "rdp"])
def test_epsilon_after_rounds_equals_an_opacus_accountant_stepped_once_per_step(
    mechanism: str,
) -> None:
    independent = OPACUS[mechanism]()
    for sigma, q, steps in ROUNDS:
        for _ in range(steps):
            independent.step(noise_multiplier=sigma, sample_rate=q)
    acc = _accountant(mechanism, ROUNDS)
    assert acc.history == independent.history
    assert acc.epsilon(DELTA) == independent.get_epsilon(delta=DELTA)


def test_gdp_epsilon_equals_an_opacus_gaussian_accountant_and_warns() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        independent = GaussianAccountant()
    for _ in range(90):
        independent.step(noise_multiplier=1.0, sample_rate=0.1)
    with pytest.warns(UserWarning, match="under-report"):
        acc = _accountant("gdp", ROUNDS[:3])
    assert acc.epsilon(DELTA) == independent.get_epsilon(delta=DELTA)
    with pytest.raises(PrivacyBudgetError, match=r"privacy\.dp\.accountant"):
        acc.step(noise_multiplier=1.3, sample_rate=0.05, num_steps=40)


def test_rdp_epsilon_equals_the_rdp_analysis_functions() -> None:
    orders = RDPAccountant.DEFAULT_ALPHAS
    rdp = sum(
        rdp_analysis.compute_rdp(q=q, noise_multiplier=s, steps=n, orders=orders)
        for s, q, n in ROUNDS
    )
    expected, _ = rdp_analysis.get_privacy_spent(orders=orders, rdp=rdp, delta=DELTA)
    assert _accountant("rdp", ROUNDS).epsilon(DELTA) == pytest.approx(float(expected), rel=1e-9)


@pytest.mark.parametrize("mechanism", ["prv", "rdp"])
def test_epsilon_of_five_rounds_is_the_whole_history_not_the_last_round(mechanism: str) -> None:
    one_round = _accountant(mechanism, [(1.0, 0.1, 30)]).epsilon(DELTA)
    five = _accountant(mechanism, [(1.0, 0.1, 30)] * 5)
    single_run = _accountant(mechanism, [(1.0, 0.1, 150)])
    assert five.epsilon(DELTA) > 1.5 * one_round  # a fresh engine per round reports one_round
    assert five.epsilon(DELTA) == single_run.epsilon(DELTA)


@pytest.mark.parametrize("mechanism", ["prv", "rdp"])
def test_json_round_trip_preserves_epsilon_and_resumed_accounting(mechanism: str) -> None:
    acc = _accountant(mechanism, ROUNDS[:2])
    before = acc.epsilon(DELTA)
    resumed = ClientAccountant.from_dict(json.loads(json.dumps(acc.to_dict())))
    assert resumed.epsilon(DELTA) == before
    assert resumed.rounds == acc.rounds
    for a in (acc, resumed):  # the run continues after the resume
        a.step(noise_multiplier=1.3, sample_rate=0.05, num_steps=40, round_index=2)
    assert resumed.epsilon(DELTA) == acc.epsilon(DELTA) > before
    fresh = ClientAccountant.from_dict({**acc.to_dict(), "epsilon_trace": []})
    assert fresh.epsilon(DELTA) == acc.epsilon(DELTA)  # recomputed, not only cached


def test_resuming_a_state_of_another_format_is_refused() -> None:
    state = _accountant("rdp", ROUNDS[:1]).to_dict() | {"format": 99}
    with pytest.raises(PrivacyBudgetError, match="cannot be resumed"):
        ClientAccountant.from_dict(state)


def test_epsilon_per_round_grows_and_ends_at_the_reported_epsilon() -> None:
    acc = _accountant("rdp", ROUNDS)
    trace = acc.epsilon_per_round(DELTA)
    assert len(trace) == len(ROUNDS)
    assert all(a < b for a, b in itertools.pairwise(trace))
    assert trace[-1] == acc.epsilon(DELTA)
    assert trace[0] == _accountant("rdp", ROUNDS[:1]).epsilon(DELTA)


def test_federation_epsilon_is_the_max_over_clients() -> None:
    accs = {"a": _accountant("rdp", ROUNDS[:1]), "b": _accountant("rdp", ROUNDS)}
    assert federation_epsilon(accs, DELTA) == accs["b"].epsilon(DELTA)


def test_federation_trace_carries_a_skipped_round_forward() -> None:
    a = ClientAccountant("rdp")
    for r in (0, 2):  # not sampled in round 1
        a.step(noise_multiplier=1.0, sample_rate=0.1, num_steps=30, round_index=r)
    b = ClientAccountant("rdp")
    b.step(noise_multiplier=2.0, sample_rate=0.1, num_steps=30, round_index=1)
    trace = federation_epsilon_per_round({"a": a, "b": b}, DELTA)
    ea = a.epsilon_per_round(DELTA)
    assert trace == [ea[0], max(ea[0], b.epsilon(DELTA)), ea[1]]


def test_ten_clients_z1_fifty_rounds_give_the_reference_epsilon() -> None:
    """REFERENCE.md: DP-FedAvg, 10 clients all participating, z = 1, 50 rounds → ε ≈ 46–49."""
    prv, rdp = ClientAccountant("prv"), ClientAccountant("rdp")
    for r in range(50):
        for acc in (prv, rdp):
            acc.step(noise_multiplier=1.0, sample_rate=1.0, num_steps=1, round_index=r)
    assert 45.5 < prv.epsilon(1e-3) < rdp.epsilon(1e-3) < 49.5


def test_group_privacy_is_k_epsilon_and_k_exp_k_minus_1_epsilon_delta() -> None:
    eps, delta = group_privacy(0.5, 1e-6, 4)
    assert eps == 2.0
    assert delta == pytest.approx(4 * math.exp(1.5) * 1e-6, rel=1e-12)
    assert group_privacy(0.5, 1e-6, 1) == pytest.approx((0.5, 1e-6))


def test_group_privacy_with_a_vacuous_delta_warns_and_caps_delta_at_one() -> None:
    with pytest.warns(UserWarning, match="vacuous"):
        eps, delta = group_privacy(8.0, 1e-5, 50)
    assert (eps, delta) == (400.0, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"noise_multiplier": 0.0, "sample_rate": 0.1, "num_steps": 1}, "noise_multiplier"),
        ({"noise_multiplier": 1.0, "sample_rate": 1.5, "num_steps": 1}, "sample_rate"),
    ],
)
def test_a_step_without_noise_or_with_an_impossible_rate_is_refused(
    kwargs: dict[str, float], field: str
) -> None:
    with pytest.raises(PrivacyBudgetError, match=rf"privacy\.dp\.{field}"):
        ClientAccountant("rdp").step(**kwargs)  # type: ignore[arg-type]


def test_unknown_accountant_names_the_field() -> None:
    with pytest.raises(PrivacyBudgetError, match=r"privacy\.dp\.accountant.*'moments'"):
        ClientAccountant("moments")


def test_memoized_rdp_gives_opacus_values_and_serves_repeated_prv_epsilons() -> None:
    from opacus.accountants.analysis.prv import prvs

    rdp = rdp_analysis
    assert prvs._compute_rdp is rdp._compute_rdp  # PRV's domain bound goes through the memo
    original = rdp._compute_rdp.__wrapped__
    for q, sigma, alpha in [(1 / 3, 1.2695, 1.5), (0.01, 0.8, 32.0), (1.0, 2.0, 3.0)]:
        assert rdp._compute_rdp(q, sigma, alpha) == original(q, sigma, alpha)
    before = rdp._compute_rdp.cache_info().hits
    values = []
    for _ in range(2):
        acc = PRVAccountant()
        acc.history = [(1.2695, 1 / 3, 24)]
        values.append(acc.get_epsilon(1e-5))
    assert values[0] == values[1]
    assert rdp._compute_rdp.cache_info().hits > before
