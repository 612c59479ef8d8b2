"""The README's own-data example, run as written: ``examples/own-data/config.yaml`` on its
ticket file (other column names, mapped by ``data.columns``) with the bundled MiniLM — the dry
run, the run, and a later erasure request from ``examples/own-data/request.yaml``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from privaudit.audit.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own-data"


def test_the_own_data_example_dry_runs_runs_and_serves_a_later_erasure(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "own-data"
    config, request = str(EXAMPLE / "config.yaml"), str(EXAMPLE / "request.yaml")
    assert main(["run", config, "--out", str(out), "--dry-run"]) == 0
    said = capsys.readouterr()
    assert "nothing written" in said.out and not out.exists()
    assert "data: " in said.err and "are in no role" in said.err  # the roles' warnings

    assert main(["run", config, "--out", str(out)]) in (0, 1)  # 1: a control failed
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["source"] == "tickets.jsonl" and report["data"]["warnings"]
    assert report["secure_aggregation"]["masking"] == "pairwise"
    served = {(u["request_id"], u["method"]) for u in report["unlearning"]}
    assert {("req-0001", "oracle"), ("req-0001", "gradient_ascent")} <= served
    first = next(u for u in report["unlearning"] if u["method"] == "gradient_ascent")
    assert first["forget"]["auc_difference"] is not None
    assert "not estimated" in first["forget"]["oracle_variability"]
    assert any(a["auc_within_label"] is not None for a in report["attacks"])

    assert main(["erase", str(out), "--request", request]) in (0, 1)
    again = json.loads((out / "report.json").read_text())
    assert ("req-0002", "gradient_ascent") in {(u["request_id"], u["method"])
                                               for u in again["unlearning"]}
