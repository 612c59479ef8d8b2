"""The report's content digest ignores when, where and how fast a run went, and nothing else."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.core.progress import PlainReporter
from privaudit.core.provenance import report_digest, report_file_digest
from tests.conftest import TINY


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("digest") / "run"
    run_audit(config_from_dict(TINY), out, reporter=PlainReporter(quiet=True))
    document: dict[str, Any] = json.loads((out / "report.json").read_text())
    assert report_file_digest(out / "report.json") == report_digest(document)
    return document


def test_volatile_fields_do_not_change_the_digest(report: dict[str, Any]) -> None:
    other = copy.deepcopy(report)
    other["report_id"], other["created_at"] = "another-id", "2030-01-01T00:00:00+00:00"
    other["report_sha256"] = "0" * 64
    other["run"]["seconds"] = {k: v * 7 for k, v in other["run"]["seconds"].items()}
    other["run"]["seed_commitment"] = "f" * 64
    for r in other["utility"]["per_round"]:
        r["seconds"] += 3.0
    for a in other["artifacts"]:
        a["sha256"] = "1" * 64
    assert report_digest(other) == report_digest(report)


@pytest.mark.parametrize("change", [
    lambda r: r["attacks"][0].__setitem__("auc", r["attacks"][0]["auc"] + 1e-9),
    lambda r: r["utility"]["per_round"][0].__setitem__("global_sha256", "0" * 64),
    lambda r: r["run"].__setitem__("final_adapter_sha256", "0" * 64),
    lambda r: r["artifacts"].append({"path": "extra.bin", "sha256": "0" * 64}),
    lambda r: r["provenance"]["package_versions"].__setitem__("torch", "0.0"),
    lambda r: r["utility"]["per_round"][1]["dropouts"].append(
        {"client_id": "client-0", "reason": "raised", "detail": "x", "steps": None}),
], ids=["auc", "round-model", "final-model", "artifact-added", "environment", "dropout"])
def test_any_finding_changes_the_digest(report: dict[str, Any], change: Any) -> None:
    other = copy.deepcopy(report)
    change(other)
    assert report_digest(other) != report_digest(report)
