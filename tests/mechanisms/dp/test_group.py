"""Subject-level DP accounted directly (k records as one mixture-of-Gaussians mechanism per
step): agrees with the record-level accountant at k = 1, is never looser than group privacy
where that one says anything, and always states its δ."""

from __future__ import annotations

import math

import pytest

from privaudit.core.errors import PrivacyBudgetError
from privaudit.mechanisms.dp.accounting import ClientAccountant, group_privacy
from privaudit.mechanisms.dp.group import subject_epsilon, subject_table

DEMO = ((1.2695, 1 / 3, 24),)  # the demo's σ, q and steps per client


def test_one_record_accounted_directly_equals_opacus_prv_record_level_epsilon() -> None:
    acc = ClientAccountant("prv")
    acc.step(noise_multiplier=1.2695, sample_rate=1 / 3, num_steps=24)
    assert subject_epsilon(DEMO, 1, 1e-5) == pytest.approx(acc.epsilon(1e-5), rel=0.02)


@pytest.mark.parametrize(("k", "expected"), [(2, 18.7), (3, 32.1), (4, 47.8)])
def test_the_demos_subject_level_epsilon_at_delta_1e5_matches_the_direct_accounting(
    k: int, expected: float
) -> None:
    assert subject_epsilon(DEMO, k, 1e-5) == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("k", [2, 3])
def test_direct_accounting_is_never_looser_than_group_privacy_at_group_privacys_delta(
    k: int,
) -> None:
    history = ((4.0, 0.05, 200),)  # a strong record-level guarantee, so group privacy is finite
    acc = ClientAccountant("prv")
    acc.step(noise_multiplier=4.0, sample_rate=0.05, num_steps=200)
    eps1 = acc.epsilon(1e-6)
    naive_eps, naive_delta = group_privacy(eps1, 1e-6, k)
    assert naive_delta < 1
    assert subject_epsilon(history, k, naive_delta) <= naive_eps


def test_more_records_of_one_subject_never_get_a_smaller_epsilon() -> None:
    table = subject_table([DEMO], 4, 1e-5)
    assert [k for k, _ in table] == [1, 2, 3, 4]
    eps = [e for _, e in table]
    assert eps == sorted(eps) and all(math.isfinite(e) for e in eps)


def test_the_worst_client_sets_each_row_of_the_table() -> None:
    weak, strong = ((1.0, 0.5, 40),), ((3.0, 0.1, 40),)
    table = dict(subject_table([strong, weak], 2, 1e-5))
    assert table[2] == subject_epsilon(weak, 2, 1e-5) > subject_epsilon(strong, 2, 1e-5)


@pytest.mark.parametrize(("k", "delta"), [(0, 1e-5), (2, 0.0), (2, 1.0)])
def test_a_meaningless_subject_size_or_delta_is_refused(k: int, delta: float) -> None:
    with pytest.raises(PrivacyBudgetError, match="subject-level DP"):
        subject_epsilon(DEMO, k, delta)


def test_a_gate_on_the_subject_level_epsilon_sees_no_guarantee_as_infinite() -> None:
    from privaudit.gate.metrics import resolve_metric

    doc = {"privacy": {"dp": {"enabled": True, "epsilon": 8.0, "delta": 1e-5,
                              "subject_level_none": "group privacy over 4 units gives δ = 1"}}}
    for name in ("dp.subject_level_epsilon", "dp.subject_level_delta"):
        (obs,) = resolve_metric(doc, name)
        assert obs.point == math.inf and "no subject-level guarantee" in obs.note
