"""The gate's CI outputs: JUnit XML, SARIF 2.1.0 (validated against the OASIS schema), the
GitHub job summary and annotations, and the pytest plugin."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.reports.cli_helpers import run_cli
from tests.reports.jsonschema_lite import validate
from tests.reports.samples import full_document

#: The OASIS SARIF 2.1.0 schema (errata01, sarif-spec Schemata/sarif-schema-2.1.0.json).
SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json")
                          .read_text())

RULES: list[dict[str, Any]] = [
    {"id": "dp-budget", "metric": "dp.epsilon", "max": 1.0},                      # fails
    {"id": "mia-auc", "metric": "attacks.loss.auc", "statistic": "point", "max": 0.6,
     "max_increase": 0.05},                                                        # passes
    {"id": "privleak", "metric": "unlearning.*.forget.privleak", "min": -10, "max": 10},
    {"id": "dp-audit", "metric": "dp_audit.epsilon_lower_bound", "max": 0.1,
     "severity": "warning"},                                                       # warns
    {"id": "exposure", "metric": "attacks.exposure.mean_bits", "max": 1.0},       # missing
    {"id": "he", "metric": "secure_aggregation.security_bits", "min": 192},       # waived
]
WAIVERS = [{"rule": "he", "reason": "N=16384 rollout in Q3", "owner": "sec-team",
            "expires": "2999-01-01"},
           {"rule": "dp-budget", "reason": "old", "owner": "ana", "expires": "2020-01-01"}]


@pytest.fixture
def gate_files(tmp_path: Path) -> dict[str, Path]:
    current = full_document()
    current["attacks"][0]["auc"] = 0.55
    baseline = copy.deepcopy(full_document())
    baseline["unlearning"][0]["forget"]["privleak"] = 25.0  # failing on main, fixed now
    files = {"report": tmp_path / "report.json", "baseline": tmp_path / "main.json",
             "policy": tmp_path / "privacy-gate.yaml"}
    files["report"].write_text(json.dumps(current))
    files["baseline"].write_text(json.dumps(baseline))
    files["policy"].write_text(yaml.safe_dump({"rules": RULES, "waivers": WAIVERS},
                                              sort_keys=False))
    return files


def _run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
         files: dict[str, Path], tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, monkeypatch, "gate", files["report"], "--policy", files["policy"],
                     "--baseline", files["baseline"], "--junit-xml", tmp_path / "gate.xml",
                     "--sarif", tmp_path / "gate.sarif", *extra)
    return result.code, json.loads((tmp_path / "gate.sarif").read_text())


def test_sarif_validates_against_the_oasis_2_1_0_schema(
        gate_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    code, sarif = _run(capsys, monkeypatch, gate_files, tmp_path)
    assert code == 1
    assert validate(sarif, SARIF_SCHEMA) == []
    broken = copy.deepcopy(sarif)
    broken["runs"][0]["results"][0]["level"] = "fatal"
    assert validate(broken, SARIF_SCHEMA)  # the validator is not vacuous


def test_sarif_results_carry_rule_level_fingerprint_baseline_state_and_waivers(
        gate_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, sarif = _run(capsys, monkeypatch, gate_files, tmp_path)
    run = sarif["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [r["id"] for r in RULES]
    results = {r["ruleId"]: r for r in run["results"]}
    assert (results["dp-budget"]["kind"], results["dp-budget"]["level"]) == ("fail", "error")
    assert results["mia-auc"]["kind"] == "pass" and results["mia-auc"]["level"] == "none"
    assert results["dp-audit"]["level"] == "warning"
    assert results["he"]["suppressions"][0]["status"] == "accepted"
    assert "N=16384" in results["he"]["suppressions"][0]["justification"]
    assert results["privleak"]["baselineState"] == "absent"  # failing on main, fixed here
    assert results["dp-budget"]["baselineState"] == "unchanged"
    location = results["dp-budget"]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "privacy-gate.yaml"
    assert location["region"]["startLine"] >= 2
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("expired on 2020-01-01" in n["message"]["text"] for n in notes)


def test_sarif_fingerprints_are_stable_across_runs_with_different_values(
        gate_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, first = _run(capsys, monkeypatch, gate_files, tmp_path)
    doc = json.loads(gate_files["report"].read_text())
    doc["privacy"]["dp"]["epsilon"] = 5.0
    gate_files["report"].write_text(json.dumps(doc))
    _, second = _run(capsys, monkeypatch, gate_files, tmp_path)
    prints = [[r["partialFingerprints"] for r in s["runs"][0]["results"]]
              for s in (first, second)]
    assert prints[0] == prints[1]
    assert len({json.dumps(p) for p in prints[0]}) == len(prints[0])
    updated = {r["ruleId"]: r["baselineState"] for r in second["runs"][0]["results"]}
    assert updated["dp-budget"] == "updated"


def test_junit_xml_parses_with_one_testcase_per_rule_and_target(
        gate_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _run(capsys, monkeypatch, gate_files, tmp_path)
    suite = ET.parse(tmp_path / "gate.xml").getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("classname") for c in cases] == [f"privaudit.gate.{r['id']}" for r in RULES]
    by_rule = {c.get("classname", "").rsplit(".", 1)[1]: c for c in cases}
    assert by_rule["dp-budget"].find("failure") is not None
    assert by_rule["exposure"].find("error") is not None
    skipped = by_rule["he"].find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("WAIVED")
    assert "WARNING" in (by_rule["dp-audit"].findtext("system-out") or "")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("6", "1", "1", "1")


def test_github_summary_appends_markdown_and_prints_annotations(
        gate_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, monkeypatch, "gate", gate_files["report"], "--policy",
                     gate_files["policy"], "--github-summary")
    assert result.code == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n### ❌ privacy gate FAILED")
    assert "| ❌ fail | `dp-budget` |" in text and "🔕 waived" in text
    lines = result.out.splitlines()
    assert any(line.startswith("::error file=privacy-gate.yaml,line=") and
               "title=privaudit gate fail%3A dp-budget::" in line for line in lines)
    assert any(line.startswith("::warning ") and "he" in line for line in lines)


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text("")  # a rootdir of its own
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), *args], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def test_pytest_plugin_turns_each_rule_into_a_test_item(gate_files: dict[str, Path],
                                                        tmp_path: Path) -> None:
    done = _pytest(tmp_path, "--privaudit-report", str(gate_files["report"]),
                   "--privaudit-policy", str(gate_files["policy"]))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "2 failed, 3 passed, 1 skipped" in out, out
    assert "privacy gate rule dp-budget" in out and "WAIVED until 2999-01-01" in out
    assert "PrivacyGateWarning" in out
