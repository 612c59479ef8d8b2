from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from privaudit.audit.cli import load_preset, main
from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.core.errors import ConfigError


def _write(tmp_path: Path, cfg: Any, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg) if not isinstance(cfg, str) else cfg, encoding="utf-8")
    return path


def test_demo_preset_validates() -> None:
    cfg = load_preset("demo")
    assert isinstance(cfg, AuditConfig)
    assert cfg.model.base == "minilm"
    assert cfg.federation.clients == 4


def test_config_validate_exits_0_on_a_valid_file(
    tmp_path: Path, tiny_config_dict: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "validate", str(_write(tmp_path, tiny_config_dict))]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (
            {"federation": {"clients": "four"}},
            "federation.clients: Input should be a valid integer",
        ),
        (
            {"federation": {"clients": 1}},
            "federation.clients: Input should be greater than or equal to 2 (got 1)",
        ),
        (
            {"federation": {"learning_rate": -0.1}},
            "federation.learning_rate: Input should be greater than 0 (got -0.1)",
        ),
        ({"attacks": {"fprs": [-0.01]}}, "attacks.fprs: every FPR must be in (0, 1); got [-0.01]"),
        (
            {"federation": {"colour": "red"}},
            "federation.colour: unknown key (not part of the config schema)",
        ),
        ({"bogus_section": {}}, "bogus_section: unknown key"),
        (
            {"data": {"source": "file", "path": "missing.jsonl"}},
            "data.path: file not found (got 'missing.jsonl')",
        ),
        (
            {"model": {"task": "translation"}},
            "model.task: Input should be 'classification' or 'causal-lm'",
        ),
    ],
)
def test_invalid_config_exits_2_naming_the_field_without_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tiny_config_dict: dict[str, Any],
    patch: dict[str, Any],
    expected: str,
) -> None:
    from tests.conftest import merge

    code = main(["config", "validate", str(_write(tmp_path, merge(tiny_config_dict, patch)))])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err
    assert "Traceback" not in err


def test_every_problem_is_listed_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = {"federation": {"clients": 1, "rounds": 0}, "seed": -1}
    assert main(["config", "validate", str(_write(tmp_path, cfg))]) == 2
    err = capsys.readouterr().err
    for field in ("federation.clients", "federation.rounds", "seed"):
        assert field in err


def test_not_yaml_and_missing_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "validate", str(_write(tmp_path, "a: [unclosed"))]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["config", "validate", str(tmp_path / "nope.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["config", "validate", str(_write(tmp_path, "- a list"))]) == 2


def test_run_with_an_invalid_config_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(["run", str(_write(tmp_path, {"federation": {"clients": 1}})), "--out", str(out)])
    assert code == 2
    assert not out.exists()


def test_config_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "AuditConfig"
    assert {"data", "model", "federation", "privacy", "attacks"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_unknown_command_is_a_usage_error() -> None:
    assert main(["frobnicate"]) == 2


def test_internal_error_exits_3_never_0(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_config_dict: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    import privaudit.audit.pipeline as pipeline

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(pipeline, "run_audit", boom)
    code = main(["run", str(_write(tmp_path, tiny_config_dict)), "--out", str(tmp_path / "r")])
    assert code == 3
    assert "internal error" in capsys.readouterr().err


def test_config_error_lists_problems_in_path_reason_got_form() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"federation": {"batch_size": 0}})
    assert info.value.problems == [
        "federation.batch_size: Input should be greater than or equal to 1 (got 0)"
    ]


def test_console_script_exit_code_reaches_the_shell(tmp_path: Path) -> None:
    cfg = _write(tmp_path, {"federation": {"clients": 1}})
    done = subprocess.run(
        [sys.executable, "-m", "privaudit", "config", "validate", str(cfg)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "federation.clients" in done.stderr
    assert "Traceback" not in done.stderr
