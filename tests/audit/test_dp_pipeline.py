"""DP across a whole run: the DP card in report.json, accountants persisted per round,
validation before any training (exit 2) and a resumed run that continues the accounting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from privaudit.audit.cli import main
from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.mechanisms.dp import ClientAccountant, federation_epsilon
from privaudit.mechanisms.federated import engine
from privaudit.reports.schema import Report
from tests.conftest import TINY, merge

DELTA = 1e-5
RECORD = {"privacy": {"dp": {"mode": "record", "target_epsilon": 4.0, "delta": DELTA}},
          "federation": {"rounds": 3}}


def _run(tmp_path: Path, patch: dict[str, Any], name: str = "run", **kw: Any) -> Any:
    return run_audit(config_from_dict(merge(TINY, patch)), tmp_path / name, **kw)


def test_record_run_reports_the_federation_card_and_persists_accountants_per_round(
    tmp_path: Path,
) -> None:
    outcome = _run(tmp_path, RECORD)
    report = Report.from_file(outcome.run_dir / "report.json")
    assert report.privacy is not None
    card = report.privacy.dp
    assert card.enabled and card.unit_of_privacy == "record" and card.accountant == "prv"
    assert card.epsilon is not None and 0.95 * 4.0 <= card.epsilon <= 4.0
    k = report.data.max_records_per_subject
    assert k > 1 and card.subject_level_method == "direct"
    assert card.subject_level_delta == card.delta and card.subject_level_table[-1].k == k
    assert card.subject_level_epsilon == card.subject_level_table[-1].epsilon > card.epsilon
    assert len(card.epsilon_per_round) == 3 and card.epsilon_per_round[-1] == card.epsilon
    assert card.epsilon_per_round == sorted(set(card.epsilon_per_round))  # strictly growing
    assert card.delta_vs_1_over_n is not None and card.delta_vs_1_over_n.delta_below_1_over_n
    assert len(card.clients) == 2 and card.noise_multiplier and card.sample_rate and card.steps
    for r in (1, 2, 3):
        saved = json.loads((outcome.run_dir / f"models/global/round-{r:03d}/privacy.json")
                           .read_text())
        accountants = {c: ClientAccountant.from_dict(a) for c, a in saved["accountants"].items()}
        assert saved["epsilon"] == pytest.approx(federation_epsilon(accountants, DELTA))
        assert {len(a.rounds) for a in accountants.values()} == {r}  # the whole history
    assert saved["epsilon"] == pytest.approx(card.epsilon)


def test_no_dp_run_says_dp_is_off(tmp_path: Path) -> None:
    report = _run(tmp_path, {}).report
    assert report.privacy is not None and report.privacy.dp.enabled is False
    assert report.privacy.dp.epsilon is None


def _write(tmp_path: Path, patch: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(merge(TINY, patch)), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "dp, field",
    [
        ({"noise_multiplier": -1.0}, "privacy.dp.noise_multiplier: must be > 0"),
        ({"noise_multiplier": 1.0, "delta": 0.05},
         "privacy.dp.delta: must be < 1/(smallest client size)"),
        ({"target_epsilon": 0.001, "delta": 1e-9}, "privacy.dp.target_epsilon: unreachable"),
        ({"noise_multiplier": 1.0, "max_grad_norm": 0}, "privacy.dp.max_grad_norm: must be > 0"),
    ],
)
def test_bad_dp_settings_exit_2_naming_the_field_before_any_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dp: dict[str, Any], field: str
) -> None:
    config = _write(tmp_path, {"privacy": {"dp": {"mode": "record", "delta": DELTA} | dp}})
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err
    assert not (out / "models" / "global").exists()  # nothing trained, nothing written


def test_client_sample_rate_outside_0_1_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dp = {"mode": "client", "noise_multiplier": 1.0, "delta": 0.01, "client_sample_rate": 1.5}
    assert main(["run", str(_write(tmp_path, {"privacy": {"dp": dp}})),
                 "--out", str(tmp_path / "out")]) == 2
    assert "privacy.dp.client_sample_rate: must be in (0, 1]" in capsys.readouterr().err


def test_an_interrupted_run_resumes_with_the_same_accounting_and_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch = {"privacy": {"dp": {"mode": "record", "noise_multiplier": 1.2, "delta": DELTA}},
             "federation": {"rounds": 3}}
    whole = _run(tmp_path, patch, "whole")
    real = engine.evaluate_utility
    calls = {"n": 0}

    def crash_in_round_2(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("power cut in round 2")
        return real(*args, **kw)

    monkeypatch.setattr(engine, "evaluate_utility", crash_in_round_2)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, patch, "cut")
    monkeypatch.setattr(engine, "evaluate_utility", real)
    cut = tmp_path / "cut"
    assert (cut / "models/global/round-001/privacy.json").is_file()
    assert not (cut / "models/global/round-002").exists()
    resumed = _run(tmp_path, patch, "cut", resume=True)
    assert resumed.report.run.final_adapter_sha256 == whole.report.run.final_adapter_sha256
    card, want = resumed.report.privacy.dp, whole.report.privacy.dp
    assert card.epsilon == pytest.approx(want.epsilon) and card.steps == want.steps
    assert card.epsilon_per_round == pytest.approx(want.epsilon_per_round)
    history = json.loads((cut / "models/global/training.json").read_text())["privacy"]
    assert all(len(a["rounds"]) == 3 for a in history["accountants"].values())
