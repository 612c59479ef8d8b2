"""The DP card states the federation's guarantee, never a per-round figure."""

from __future__ import annotations

import doctest
import importlib

import pytest

from privaudit.core.errors import InternalError
from privaudit.mechanisms.dp import (
    ClientAccountant,
    DPCard,
    DPConfig,
    build_dp_card,
    federation_epsilon,
)
from privaudit.mechanisms.dp.group import subject_epsilon

DESIGN_KEYS = {
    "enabled", "epsilon", "delta", "unit_of_privacy", "subject_level_epsilon", "accountant",
    "noise_multiplier", "max_grad_norm", "sample_rate", "steps", "clients",
}  # fmt: skip
NIST_KEYS = {
    "definition", "neighbouring_relation", "composition_scope", "sampling_assumption",
    "delta_vs_1_over_n", "trust_model", "epsilon_per_round", "max_records_per_subject",
}  # fmt: skip


def _record_run() -> tuple[DPConfig, dict[str, ClientAccountant], dict[str, int]]:
    cfg = DPConfig(mode="record", noise_multiplier=2.0, delta=1e-5, accountant="rdp")
    small, large = ClientAccountant("rdp"), ClientAccountant("rdp")
    for r in range(3):
        small.step(noise_multiplier=2.0, sample_rate=0.25, num_steps=8, round_index=r)
        large.step(noise_multiplier=2.0, sample_rate=0.1, num_steps=20, round_index=r)
    return cfg, {"c0": small, "c1": large}, {"c0": 40, "c1": 100}


def test_record_card_reports_the_federation_max_and_the_subject_level_guarantee() -> None:
    cfg, accs, sizes = _record_run()
    card = build_dp_card(cfg, accs, sizes, max_records_per_subject=3)
    eps = federation_epsilon(accs, 1e-5)
    assert card.epsilon == eps == accs["c0"].epsilon(1e-5) > accs["c1"].epsilon(1e-5)
    # direct accounting of a 3-record subject on each client, the worst client's, at the run's δ
    direct = max(subject_epsilon(tuple(a.history), 3, 1e-5) for a in accs.values())
    assert (card.subject_level_epsilon, card.subject_level_delta) == (direct, 1e-5)
    assert card.subject_level_method == "direct" and card.subject_level_none is None
    assert [(r.k, r.delta) for r in card.subject_level_table] == [(1, 1e-5), (2, 1e-5),
                                                                  (3, 1e-5)]
    assert card.subject_level_table[0].epsilon == eps  # one record: the run's own accountant
    assert (card.noise_multiplier, card.sample_rate, card.steps) == (2.0, 0.25, 24)
    assert card.subject_level_delta is not None and card.subject_level_delta < 1.0
    assert card.epsilon_per_round[-1] == eps and len(card.epsilon_per_round) == 3
    assert card.delta_vs_1_over_n is not None and card.delta_vs_1_over_n.n == 40
    assert card.delta_vs_1_over_n.delta_below_1_over_n
    assert [(c.client_id, c.n_records, c.steps) for c in card.clients] == [
        ("c0", 40, 24),
        ("c1", 100, 60),
    ]
    assert card.unit_of_privacy == "record" and card.neighbouring_relation is not None
    assert "one record" in card.neighbouring_relation and card.max_grad_norm == 1.0


def test_card_has_the_design_and_nist_keys_and_survives_json() -> None:
    card = build_dp_card(*_record_run(), max_records_per_subject=2)
    dumped = card.model_dump(mode="json")
    assert dumped.keys() >= DESIGN_KEYS | NIST_KEYS
    assert dumped["definition"] == "approximate DP ((ε, δ))"
    assert dumped["sampling_assumption"].startswith("Poisson")
    assert DPCard.model_validate_json(card.model_dump_json()) == card


def test_client_card_reports_client_level_epsilon_from_the_federation_accountant() -> None:
    cfg = DPConfig(mode="client", noise_multiplier=1.0, delta=1e-3, client_sample_rate=1.0)
    fed = ClientAccountant("prv")
    for r in range(50):
        fed.step(noise_multiplier=1.0, sample_rate=1.0, num_steps=1, round_index=r)
    sizes = {f"c{i}": 100 + i for i in range(10)}
    with pytest.warns(UserWarning, match="vacuous"):  # a subject across 5 clients at ε≈46
        card = build_dp_card(cfg, {"federation": fed}, sizes, max_records_per_subject=5)
    # group privacy over 5 clients gives δ ≥ 1: no guarantee, said as such, never a number
    assert card.subject_level_epsilon is None and card.subject_level_delta is None
    assert card.subject_level_none is not None and "no subject-level guarantee" in \
        card.subject_level_none
    assert card.unit_of_privacy == "client" and card.neighbouring_relation is not None
    assert "one client" in card.neighbouring_relation
    assert 45.5 < card.epsilon < 49.5  # type: ignore[operator]
    assert card.clip_norm == 1.0 and card.max_grad_norm is None
    assert card.delta_vs_1_over_n is not None and card.delta_vs_1_over_n.n == 10
    assert [c.n_records for c in card.clients] == list(sizes.values())
    one = build_dp_card(
        cfg, {"federation": fed}, sizes, max_records_per_subject=5, max_clients_per_subject=1
    )
    assert (one.subject_level_epsilon, one.subject_level_delta) == (card.epsilon, 1e-3)


def test_no_dp_card_claims_nothing() -> None:
    card = build_dp_card(DPConfig(), {}, {"c0": 10}, max_records_per_subject=1)
    assert not card.enabled and card.epsilon is None and card.clients == []


def test_a_client_without_an_accountant_is_an_internal_error() -> None:
    cfg, accs, sizes = _record_run()
    with pytest.raises(InternalError, match="one accountant per client"):
        build_dp_card(cfg, {"c0": accs["c0"]}, sizes, max_records_per_subject=1)


@pytest.mark.parametrize("module", ["accounting", "calibration", "client_level"])
def test_worked_numbers_in_docstrings_hold(module: str) -> None:
    mod = importlib.import_module(f"privaudit.mechanisms.dp.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
