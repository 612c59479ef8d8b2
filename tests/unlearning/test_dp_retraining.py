"""Retraining after an erasure under DP reuses the run's noise and continues its accountants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from privaudit.audit.config import config_from_dict
from privaudit.audit.erase_run import privacy_of
from privaudit.audit.pipeline import run_audit
from privaudit.core.progress import PlainReporter
from privaudit.mechanisms.federated import privacy as privacy_module
from privaudit.mechanisms.federated.privacy import FEDERATION, PrivacyOutcome
from privaudit.mechanisms.federated.train import train_federation
from privaudit.reports.schema import Report
from tests.conftest import TINY, merge
from tests.unlearning.conftest import data_of

DP: dict[str, Any] = {"mode": "record", "target_epsilon": 4.0, "delta": 1e-5, "accountant": "rdp"}


@pytest.fixture(scope="module")
def dp_erased(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Path]:
    cfg_dict: dict[str, Any] = merge(TINY, {
        "privacy": {"dp": DP},
        "unlearning": {"methods": ["finetune_retain", "graddiff", "gradient_ascent", "sisa"],
                       "sisa": {"shards": 2, "slices": 2},
                       "requests": [{"id": "r1", "kind": "record", "ids": []}]},
    })
    probe = config_from_dict({**cfg_dict, "unlearning": {}})
    cfg_dict["unlearning"]["requests"][0]["ids"] = [data_of(probe).members[0].id]
    out = tmp_path_factory.mktemp("dp-erase") / "run"
    outcome = run_audit(config_from_dict(cfg_dict), out, reporter=PlainReporter(quiet=True))
    return outcome.report, out


def _by_method(report: Report) -> dict[str, Any]:
    return {u.method: u for u in report.unlearning or []}


def test_finetune_retain_under_dp_spends_more_than_the_run_on_the_retained_records(
    dp_erased: tuple[Report, Path],
) -> None:
    report, _ = dp_erased
    run_epsilon = report.privacy.dp.epsilon  # type: ignore[union-attr]
    retained = _by_method(report)["finetune_retain"].retained_epsilon
    assert retained is not None and run_epsilon is not None
    # one more round at the run's own σ: more than the run, far less than a second full ε
    assert run_epsilon < retained < 2 * run_epsilon


def test_graddiff_under_dp_is_flagged_as_stepping_outside_dp(
    dp_erased: tuple[Report, Path],
) -> None:
    u = _by_method(dp_erased[0])
    assert u["graddiff"].retained_epsilon is None
    assert any("without DP noise" in f for f in u["graddiff"].flags)
    assert u["gradient_ascent"].retained_epsilon == pytest.approx(
        dp_erased[0].privacy.dp.epsilon, rel=1e-6)  # type: ignore[union-attr]


def test_the_runs_own_accountants_are_untouched_by_retraining(
    dp_erased: tuple[Report, Path],
) -> None:
    report, out = dp_erased
    from privaudit.core.rundir import RunDir

    privacy = privacy_of(RunDir(out))
    assert privacy is not None
    assert privacy.epsilon() == pytest.approx(report.privacy.dp.epsilon, rel=1e-6)  # type: ignore[union-attr]


def test_train_federation_with_fixed_noise_does_not_calibrate(
    monkeypatch: pytest.MonkeyPatch, tiny_config_dict: dict[str, Any]
) -> None:
    from privaudit.audit.session import RunSession, build_model
    from privaudit.mechanisms.models import adapter_state

    cfg = config_from_dict(merge(tiny_config_dict, {"privacy": {"dp": DP}}))
    data = data_of(cfg)
    bundle = build_model(cfg, data, None)  # type: ignore[arg-type]
    encode = RunSession(cfg, data, bundle, adapter_state(bundle.model)).encode
    clients = {c: encode(r) for c, r in data.clients.items()}

    def no_calibration(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("calibrated although the noise was fixed")

    monkeypatch.setattr(privacy_module, "noise_multipliers", no_calibration)
    fixed = {c: 1.7 for c in clients}
    result = train_federation(cfg.recipe, bundle, clients, encode(data.test),
                              initial_state=adapter_state(bundle.model), seed=1, noise=fixed)
    assert result.privacy is not None and result.privacy.noise_multipliers == fixed
    assert FEDERATION not in result.privacy.noise_multipliers
    assert isinstance(result.privacy, PrivacyOutcome)


def test_sisa_ensemble_states_its_own_epsilon_and_the_composition_over_both_releases(
    dp_erased: tuple[Report, Path],
) -> None:
    report, _ = dp_erased
    sisa = _by_method(report)["sisa"]
    assert sisa.retained_epsilon is not None
    assert 0.9 * DP["target_epsilon"] <= sisa.retained_epsilon <= DP["target_epsilon"]
    assert any("second release" in f and "composes" in f for f in sisa.flags)
