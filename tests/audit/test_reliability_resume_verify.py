"""On --resume, files read back from the run directory are checked against the manifest that
lists them: an altered one stops the run naming the file (exit 1), a missing one is
recomputed; temporaries that a killed process left behind are removed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from privaudit.audit.cli import main
from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.core.errors import VerificationError
from privaudit.core.progress import PlainReporter
from privaudit.core.rundir import RunDir, sha256_file, verify_outputs
from tests.conftest import TINY

QUIET = PlainReporter(quiet=True)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    run_audit(config_from_dict(TINY), out, reporter=QUIET)
    return out


def test_resume_refuses_a_checkpoint_altered_after_the_stage_completed(finished: Path) -> None:
    _flip_last_byte(finished / "models/global/round-002/adapter.safetensors")
    with pytest.raises(VerificationError) as info:
        run_audit(config_from_dict(TINY), finished, resume=True, reporter=QUIET)
    message = str(info.value)
    assert message.startswith("models/global/round-002/adapter.safetensors: sha256 ")
    assert "recorded in stages/train.json" in message


def test_resume_of_an_interrupted_training_refuses_an_altered_round(finished: Path) -> None:
    (finished / "stages/train.json").unlink()  # as if killed before training completed
    _flip_last_byte(finished / "models/global/round-001/privacy.json")
    with pytest.raises(VerificationError) as info:
        run_audit(config_from_dict(TINY), finished, resume=True, reporter=QUIET)
    assert "models/global/round-001/privacy.json" in str(info.value)
    assert "recorded in models/global/progress.json" in str(info.value)


def test_a_missing_checkpoint_is_recomputed_to_the_same_model(finished: Path) -> None:
    before = sha256_file(finished / "models/global/round-002/adapter.safetensors")
    (finished / "models/global/round-002/adapter.safetensors").unlink()
    outcome = run_audit(config_from_dict(TINY), finished, resume=True, reporter=QUIET)
    assert sha256_file(finished / "models/global/round-002/adapter.safetensors") == before
    assert outcome.report.run.final_adapter_sha256 == outcome.report.utility.per_round[-1] \
        .global_sha256


def test_cli_resume_on_an_altered_run_exits_1_naming_the_file(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    _flip_last_byte(finished / "models/global/training.json")
    code = main(["run", str(config), "--out", str(finished), "--resume"])
    assert code == 1
    assert "models/global/training.json: sha256" in capsys.readouterr().err


def test_verify_outputs_rejects_a_manifest_entry_outside_the_run(tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="outside the run directory"):
        verify_outputs(tmp_path, {"../elsewhere": "0" * 64}, manifest="stages/x.json")


def test_temporaries_of_dead_processes_are_removed_when_the_run_is_reopened(
    tmp_path: Path,
) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    stale = tmp_path / "run" / "models" / f".adapter.safetensors.tmp-{dead_pid}"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a file")
    mine = tmp_path / "run" / f".report.json.tmp-{__import__('os').getpid()}"
    mine.write_bytes(b"being written")
    kept = tmp_path / "run" / "data.tmp-1"  # not a temporary of ours: no leading dot
    kept.write_bytes(b"user file")
    RunDir(tmp_path / "run").create()
    assert not stale.exists()
    assert mine.exists() and kept.exists()


def test_the_pretrained_base_cache_is_checked_before_it_is_loaded(tmp_path: Path) -> None:
    from privaudit.audit.pipeline import build_model
    from privaudit.mechanisms.data import prepare_data

    raw = {"name": "tiny-lm", "seed": 5,
           "data": {"synthetic": {"subjects": 30, "min_records": 2, "max_records": 2},
                    "test_records": 6, "public_records": 12,
                    "audit": {"members": 6, "nonmembers": 6}},
           "model": {"task": "causal-lm", "base": "tiny", "max_length": 24,
                     "pretrain": {"epochs": 1},
                     "tiny": {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64}},
           "federation": {"clients": 2, "rounds": 1},
           "attacks": {"battery": [{"name": "loss"}]}}
    cfg = config_from_dict(raw)
    data = prepare_data(cfg.data, task=cfg.model.task, k=2, seed=cfg.seed)
    run = RunDir(tmp_path / "run").create()
    first = build_model(cfg, data, run)
    [digests] = list((tmp_path / "run/models/base").glob("*/sha256.json"))
    weights = digests.parent / "model.safetensors"
    again = build_model(cfg, data, run)  # loaded from the checked cache: the same base
    assert again.base_sha256 == first.base_sha256
    _flip_last_byte(weights)
    with pytest.raises(VerificationError, match="model.safetensors: sha256 .* recorded in "
                                                r"base/[0-9a-f]+/sha256\.json"):
        build_model(cfg, data, run)
