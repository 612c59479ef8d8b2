"""Secure aggregation across a whole run: the report section, a failed round that leaves no
checkpoint, and insecure parameters refused (exit 2) unless allow_insecure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from privaudit.audit.cli import main
from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.mechanisms.federated import secure
from privaudit.mechanisms.secagg import THREAT_MODEL, EncryptedUpdate, InsecureParametersWarning
from tests.conftest import TINY, merge

HE = {"secure_aggregation": {"enabled": True, "masking": "none"}, "federation": {"clients": 3}}


def _write(tmp_path: Path, patch: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(merge(TINY, patch)), encoding="utf-8")
    return path


def test_he_run_reports_parameters_measured_error_expansion_and_threat_model(
    tmp_path: Path,
) -> None:
    dp = {"privacy": {"dp": {"mode": "record", "noise_multiplier": 1.0, "delta": 1e-5}}}
    outcome = run_audit(config_from_dict(merge(TINY, HE | dp)), tmp_path / "run")
    section = json.loads((outcome.run_dir / "report.json").read_text())["secure_aggregation"]
    assert section["enabled"] is True and section["scheme"] == "ckks"
    assert section["poly_modulus_degree"] == 8192 and section["coeff_mod_bit_sizes"] == [60, 40]
    assert section["scale_bits"] == 40 and section["security_bits"] == 256
    assert 0 < section["max_abs_error"] < 1e-7  # measured on the run's rounds
    assert section["expansion_ratio"] >= 8.0  # never under the CKKS floor
    assert section["threat_model"] == list(THREAT_MODEL)
    assert section["rejections"] == [] and section["insecure"] is False
    rounds = json.loads((outcome.run_dir / "models/global/training.json").read_text())
    logs = rounds["privacy"]["secure_aggregation"]["rounds"]
    assert [log["accepted"] for log in logs] == [["client-0", "client-1", "client-2"]] * 2
    assert outcome.report.privacy.dp.enabled  # composed with record-level DP


def test_a_round_under_min_clients_fails_cleanly_and_writes_no_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def lose_client_2_in_round_2(update: EncryptedUpdate) -> Sequence[EncryptedUpdate]:
        lost = (update.manifest.client_id, update.manifest.round) == ("client-2", 2)
        return () if lost else (update,)

    monkeypatch.setattr(secure, "_deliver", lose_client_2_in_round_2)
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, HE)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "round 2: 2 update(s) accepted, min_clients is 3" in err and "client-2" in err
    assert (out / "models/global/round-001/adapter.safetensors").is_file()
    assert not (out / "models/global/round-002").exists()
    assert not (out / "stages/train.json").exists() and not (out / "report.json").exists()


@pytest.mark.parametrize(
    "he, field",
    [
        ({"min_clients": 2}, "secure_aggregation.min_clients: must be >= 3"),
        ({"poly_modulus_degree": 4096, "coeff_mod_bit_sizes": [60, 40, 40]},
         "secure_aggregation.coeff_mod_bit_sizes: total 140 bits exceeds the 128-bit"),
    ],
)
def test_insecure_parameters_exit_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], he: dict[str, Any], field: str
) -> None:
    config = _write(tmp_path, {"secure_aggregation": {"enabled": True} | he})
    assert main(["config", "validate", str(config)]) == 2
    assert field in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out)]) == 2
    assert field in capsys.readouterr().err
    assert not (out / "models").exists()


def test_allow_insecure_runs_with_a_warning_and_marks_the_report(tmp_path: Path) -> None:
    he = {"secure_aggregation": {"enabled": True, "min_clients": 2, "allow_insecure": True}}
    out = tmp_path / "out"
    with pytest.warns(InsecureParametersWarning, match=r"secure_aggregation\.min_clients"):
        assert main(["run", str(_write(tmp_path, he)), "--out", str(out)]) in (0, 1)
    section = json.loads((out / "report.json").read_text())["secure_aggregation"]
    assert section["insecure"] is True and section["min_clients"] == 2


def test_a_pairwise_masked_run_reports_bfv_its_quantization_bound_and_the_masked_threat_model(
    tmp_path: Path,
) -> None:
    from privaudit.mechanisms.secagg.results import MASKED_THREAT_MODEL

    masked = {"secure_aggregation": {"enabled": True, "masking": "pairwise"},
              "federation": {"clients": 3}}
    outcome = run_audit(config_from_dict(merge(TINY, masked)), tmp_path / "run")
    section = json.loads((outcome.run_dir / "report.json").read_text())["secure_aggregation"]
    assert section["scheme"] == "bfv" and section["masking"] == "pairwise"
    assert section["coeff_mod_bit_sizes"] == [60, 60] and section["security_bits"] >= 128
    assert 0 <= section["max_abs_error"] <= section["quantization_error_bound"] < 1e-6
    assert section["dropped"] == []  # (the tiny adapter fills one ciphertext of 8192 slots)
    assert section["threat_model"] == list(MASKED_THREAT_MODEL)
    control = next(c for c in outcome.report.verdict.controls  # type: ignore[union-attr]
                   if c.id == "secure-aggregation")
    assert control.status == "PASS" and "pairwise-masked" in control.reason
