"""The attacks section is checked against the task and the rest of the config before any
work starts; every finding names its config path."""

from __future__ import annotations

import pytest

from privaudit.audit.config import config_from_dict
from privaudit.core.errors import ConfigError
from tests.conftest import TINY, merge


def _problems(patch: dict) -> list[str]:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as err:
        config_from_dict(merge(TINY, patch))
    return err.value.problems


def test_every_problem_of_the_battery_is_reported_at_once() -> None:
    problems = _problems({"attacks": {"battery": [
        {"name": "lira"}, {"name": "min_k"}, {"name": "rmia", "params": {"bogus": 1}},
        {"name": "nope"}]}})
    text = "\n".join(problems)
    assert "attack 'lira' needs at least 4 reference models; got 0" in text
    assert "attacks.battery[1] (min_k): needs token_logprobs" in text
    assert "attacks.battery[2] (rmia): attacks.rmia has no parameter 'bogus'" in text
    assert "attacks.battery[3] (nope): attacks: unknown attack 'nope'" in text


def test_an_attack_needing_a_signal_the_task_lacks_is_refused() -> None:
    lm = {"model": {"task": "causal-lm"}, "data": {"public_records": 20}}
    problems = _problems(merge(lm, {"attacks": {"references": {"count": 4},
                                                "battery": [{"name": "rmia"}]}}))
    assert any("needs prob_true, which a causal-lm model does not produce" in p
               for p in problems)


def test_lira_runs_on_a_causal_lm_with_the_sequence_loss_as_its_statistic() -> None:
    lm = {"model": {"task": "causal-lm"}, "data": {"public_records": 20}}
    cfg = config_from_dict(merge(TINY, merge(lm, {"attacks": {
        "references": {"count": 4}, "battery": [{"name": "lira"}]}})))
    assert [s.key for s in cfg.attacks.battery] == ["lira"]


def test_two_entries_with_the_same_report_name_are_refused_and_labels_fix_it() -> None:
    dup = {"attacks": {"references": {"count": 2}, "battery": [
        {"name": "rmia"}, {"name": "rmia", "params": {"gamma": 2.0}}]}}
    assert any("appear twice" in p for p in _problems(dup))
    dup["attacks"]["battery"][1]["label"] = "rmia-gamma2"
    cfg = config_from_dict(merge(TINY, dup))
    assert [s.key for s in cfg.attacks.battery] == ["rmia", "rmia-gamma2"]


def test_offline_variants_get_their_own_name() -> None:
    cfg = config_from_dict(merge(TINY, {"attacks": {"references": {"count": 4}, "battery": [
        {"name": "lira"}, {"name": "lira", "params": {"mode": "offline"}}]}}))
    assert [s.key for s in cfg.attacks.battery] == ["lira", "lira-offline"]


def test_rmia_needs_two_references_and_reference_attack_via_references_needs_them() -> None:
    assert any("'rmia' needs at least 2" in p
               for p in _problems({"attacks": {"battery": [{"name": "rmia"}]}}))
    assert any("'reference' needs at least 2" in p for p in _problems(
        {"attacks": {"reference_model": "references", "battery": [{"name": "reference"}]}}))
