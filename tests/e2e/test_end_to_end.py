from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from privaudit.audit.cli import main
from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.core.progress import PlainReporter
from privaudit.reports.schema import Report
from tests.conftest import MEMORISES_AUC


def _run(cfg: dict[str, Any], out: Path, **kw: Any) -> Report:
    return run_audit(config_from_dict(cfg), out, reporter=PlainReporter(quiet=True), **kw).report


def test_tiny_run_writes_the_run_directory_contract(
    tiny_config_dict: dict[str, Any], run_dir: Path
) -> None:
    report = _run(tiny_config_dict, run_dir)
    rounds = tiny_config_dict["federation"]["rounds"]
    for rel in ("config.yaml", "report.json", "report.html", "data/audit-members.json"):
        assert (run_dir / rel).is_file(), rel
    for r in range(1, rounds + 1):
        assert (run_dir / f"models/global/round-{r:03d}/adapter.safetensors").is_file()
        assert (run_dir / f"models/global/round-{r:03d}/updates/client-0.safetensors").is_file()
    reloaded = Report.model_validate_json((run_dir / "report.json").read_text())
    assert reloaded == report
    assert report.run.rounds == rounds and len(report.utility.per_round) == rounds
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["federation"]["optimizer"] == "adamw"  # defaults are filled in


def test_report_json_validates_against_the_published_json_schema(
    tiny_config_dict: dict[str, Any], run_dir: Path
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    _run(tiny_config_dict, run_dir)
    schema = Report.model_json_schema()
    jsonschema.validate(json.loads((run_dir / "report.json").read_text()), schema)


def test_loss_attack_finds_members_of_an_overfitted_model(
    overfit_config_dict: dict[str, Any], run_dir: Path
) -> None:
    report = _run(overfit_config_dict, run_dir)
    loss = next(a for a in report.attacks if a.attack == "loss")
    assert loss.auc >= MEMORISES_AUC, f"LOSS AUC {loss.auc:.3f} on a memorising model"
    assert loss.n_members == 40 and loss.n_nonmembers == 40
    assert set(loss.tpr_at_fpr) == {"0.01", "0.001"}
    assert any("not estimable" in w for w in loss.warnings)  # 40 non-members < 10/0.01


def test_html_report_is_self_contained(tiny_config_dict: dict[str, Any], run_dir: Path) -> None:
    _run(tiny_config_dict, run_dir)
    html = (run_dir / "report.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert "data:image/svg+xml;base64," in html


def test_same_config_twice_gives_the_same_final_adapter(
    tiny_config_dict: dict[str, Any], tmp_path: Path
) -> None:
    a = _run(tiny_config_dict, tmp_path / "a")
    b = _run(tiny_config_dict, tmp_path / "b")
    assert a.run.final_adapter_sha256 == b.run.final_adapter_sha256
    assert a.attacks[0].auc == b.attacks[0].auc


def test_resume_skips_training_when_checkpoints_are_intact(
    tiny_config_dict: dict[str, Any], run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run(tiny_config_dict, run_dir)
    import privaudit.audit.stages.train as train_stage

    def no_training(*_: object, **__: object) -> None:
        raise AssertionError("training ran again on resume")

    monkeypatch.setattr(train_stage, "train_federation", no_training)
    second = _run(tiny_config_dict, run_dir, resume=True)
    assert second.run.final_adapter_sha256 == first.run.final_adapter_sha256


def test_cli_run_on_the_bundled_minilm_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = {
        "name": "minilm-smoke",
        "data": {
            "synthetic": {"subjects": 50, "min_records": 2, "max_records": 2},
            "test_records": 20,
            "audit": {"members": 20, "nonmembers": 20},
        },
        "model": {"base": "minilm", "max_length": 48},
        "federation": {"clients": 2, "rounds": 1, "batch_size": 16},
        "attacks": {"bootstrap": 20},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "utility (accuracy)" in out and "loss attack AUC" in out
    report = Report.model_validate_json((tmp_path / "run" / "report.json").read_text())
    assert report.run.base_model == "minilm" and report.utility.value > 0.25
