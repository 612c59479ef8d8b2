"""White-box gradient canaries in record-level DP-SGD: the planted design, and sabotage caught
at the claims users make (ε = 8): noise scaled to 0 or 0.25 while the accountant books the
calibrated σ, and an accountant told q/10, are violations; honest runs on two seeds are not."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.core.errors import ConfigError
from privaudit.mechanisms.dp.gradient_canaries import CanaryObserver, plan_gradient_canaries
from privaudit.mechanisms.federated import record_dp
from tests.conftest import OVERFIT_PATCH, TINY, merge

#: 6000 canaries, 21% guessed, mostly IN (an included canary that Poisson sampling never
#: picked looks excluded, so OUT guesses are the weaker ones): the f-DP ceiling (10.2) tops
#: the claimed ε = 7.92
GRADIENT_AUDIT: dict[str, Any] = {
    "federation": {"rounds": 4, "local_epochs": 2},
    "attacks": {"dp_audit": {"canaries": 6000, "guesses": {"positive": 0.2, "negative": 0.01}}},
    "report": {"formats": []},
    "privacy": {"dp": {"mode": "record", "target_epsilon": 8.0, "delta": 1e-5,
                       "max_grad_norm": 1.0, "batch_size": 8, "learning_rate": 0.02}},
}


def _config(seed: int = 0, *patches: dict[str, Any]) -> Any:
    d = merge(merge(merge(TINY, OVERFIT_PATCH), GRADIENT_AUDIT), {"seed": seed})
    for p in patches:
        d = merge(d, p)
    return config_from_dict(d)


def _run(tmp_path: Path, seed: int = 0, *patches: dict[str, Any]) -> Any:
    return run_audit(_config(seed, *patches), tmp_path / f"run-{seed}-{len(patches)}")


def _sabotage(monkeypatch: pytest.MonkeyPatch, *, noise: float = 1.0,
              accounted_rate: float = 1.0) -> None:
    real = record_dp.make_private

    def broken(*args: Any, **kwargs: Any) -> Any:
        run = real(*args, **kwargs)
        run.optimizer.noise_multiplier *= noise  # the accountant still books σ
        run.sample_rate *= accounted_rate  # what the accountant is told q is
        return run

    monkeypatch.setattr(record_dp, "make_private", broken)


@pytest.mark.parametrize("seed", [0, 1])
def test_honest_dp_sgd_at_eps_8_is_no_violation_and_the_audit_could_have_failed(
    tmp_path: Path, seed: int
) -> None:
    out = _run(tmp_path, seed)
    a = out.report.dp_audit
    assert a.kind == "gradient" and a.informative and not a.violation
    assert a.max_provable_epsilon > a.claimed_epsilon > 7.5
    assert a.fdp_epsilon_lower_bound is not None and a.fdp_epsilon_lower_bound > 1.0
    assert a.fdp_epsilon_lower_bound >= a.one_run_epsilon_lower_bound
    assert a.gaussian_epsilon_estimate is not None and a.release_contains_canaries is False
    planted = json.loads((out.run_dir / "data" / "dp-audit-canaries.json").read_text())
    assert len(planted["coordinates"]) == 6000 and "included" not in planted


@pytest.mark.parametrize("scale", [0.0, 0.25])
def test_noise_scaled_down_under_the_accountant_is_a_violation_at_eps_8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scale: float
) -> None:
    _sabotage(monkeypatch, noise=scale)
    a = _run(tmp_path).report.dp_audit
    assert a.violation, a.interpretation
    assert a.fdp_epsilon_lower_bound > a.claimed_epsilon > 7.5
    assert a.estimate_above_claim


def test_an_accountant_told_a_tenth_of_the_sampling_rate_is_a_violation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sabotage(monkeypatch, accounted_rate=0.1)
    a = _run(tmp_path).report.dp_audit
    assert a.violation, a.interpretation
    assert a.epsilon_lower_bound > a.claimed_epsilon


def test_a_separate_audit_training_leaves_the_released_model_as_without_any_audit(
    tmp_path: Path
) -> None:
    separate = _run(tmp_path, 0)
    plain = _run(tmp_path, 0, {"attacks": {"dp_audit": None}})
    same = _run(tmp_path, 0, {"attacks": {"dp_audit": {"run": "same"}}}, {})
    assert plain.report.dp_audit is None
    assert separate.report.run.final_adapter_sha256 == plain.report.run.final_adapter_sha256
    assert same.report.run.final_adapter_sha256 != plain.report.run.final_adapter_sha256
    assert same.report.dp_audit.release_contains_canaries is True
    assert (separate.run_dir / "attacks" / "dp-audit-training" / "round-004.json").is_file()
    assert not (separate.run_dir / "models" / "global" / "round-004"
                / "canary-gradients.json").exists()


def test_separate_run_for_input_canaries_is_refused_naming_the_field(tmp_path: Path) -> None:
    cfg = _config(0, {"privacy": {"dp": {"mode": "none"}},
                      "attacks": {"dp_audit": {"run": "separate", "canaries": 200}}})
    with pytest.raises(ConfigError, match=re.escape("attacks.dp_audit.run: 'separate'")):
        run_audit(cfg, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def test_gradient_canaries_take_distinct_coordinates_and_their_placement_is_the_inclusion(
) -> None:
    like = {"a": torch.zeros(30, 20), "b": torch.zeros(100)}
    plan = plan_gradient_canaries(500, like=like, clients=["c1", "c2", "c3"], seed=4, norm=2.0)
    assert len(set(zip(plan.params, plan.indices.tolist(), strict=True))) == 500
    placed = sum(int(v.numel()) for p in plan.placement.values() for v in p.values())
    observed = sum(int(v.numel()) for p in plan.observed.values() for v in p.values())
    assert placed == plan.sealed.n_included and observed == 500
    again = plan_gradient_canaries(500, like=like, clients=["c1", "c2", "c3"], seed=4, norm=2.0)
    assert again.sealed.commitment_sha256 == plan.sealed.commitment_sha256
    obs = CanaryObserver(plan)
    obs.record(1, "c1", {n: torch.ones(len(i)) for n, i in plan.observed["c1"].items()})
    row = obs.pop_round(1)
    assert row.sum() == sum(1 for c in plan.clients if c == "c1")
    too_many = re.escape("attacks.dp_audit.canaries: 800 gradient canaries")
    with pytest.raises(ConfigError, match=too_many):
        plan_gradient_canaries(800, like=like, clients=["c1"], seed=0, norm=1.0)


def test_gradient_canaries_without_record_level_dp_are_refused_naming_the_field() -> None:
    from privaudit.mechanisms.data.audit_canaries import resolve_kind

    with pytest.raises(ConfigError, match=re.escape("attacks.dp_audit.kind: 'gradient'")):
        resolve_kind("gradient", "classification", "client")
    assert resolve_kind("auto", "classification", "record") == "gradient"
    assert resolve_kind("auto", "classification", "none") == "mislabeled"


def test_gradient_canaries_on_an_out_of_process_engine_are_refused_before_any_work(
    tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=re.escape("--engine: gradient canaries")):
        run_audit(_config(0), tmp_path / "refused", engine="flower")
    assert not (tmp_path / "refused").exists()


def test_more_gradient_canaries_than_trainable_coordinates_is_refused_before_the_run_dir(
    tmp_path: Path
) -> None:
    cfg = _config(0, {"attacks": {"dp_audit": {"canaries": 100_000}}})
    with pytest.raises(ConfigError, match=re.escape(
            "attacks.dp_audit.canaries: 100000 gradient canaries need 100000 distinct trainable "
            "coordinates; the model has 8708")):
        run_audit(cfg, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
