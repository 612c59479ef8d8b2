"""Nothing outside the DP guarantee in the release: each client's training loss stays in the
run directory (sealed, never in report.json), the report names who trained in each round,
and the DP card counts the records that were trained (DP-audit canaries included)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import AuditOutcome, run_audit
from privaudit.audit.stages.dp_audit import plant_dp_audit
from privaudit.core.rundir import RunDir
from privaudit.reports.schema import RoundUtility
from privaudit.unlearning.ledger import trained_on
from privaudit.unlearning.requests import ErasureRequest, ResolvedRequest
from tests.attacks.helpers import QUIET
from tests.conftest import TINY, merge
from tests.unlearning.conftest import data_of

PATCH: dict[str, Any] = {
    "privacy": {"dp": {"mode": "record", "target_epsilon": 4.0, "delta": 1e-5}},
    "attacks": {"dp_audit": {"canaries": 20, "kind": "mislabeled"}},
}


@pytest.fixture(scope="module")
def tiny_dp_run(tmp_path_factory: pytest.TempPathFactory) -> AuditOutcome:
    cfg = config_from_dict(merge(TINY, PATCH))
    return run_audit(cfg, tmp_path_factory.mktemp("private") / "run", reporter=QUIET)


def test_report_json_holds_no_training_loss_of_any_client(tiny_dp_run: AuditOutcome) -> None:
    run = RunDir(tiny_dp_run.run_dir)
    text = (run.root / "report.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    assert "train_loss" not in _keys(doc)
    rounds = doc["utility"]["per_round"]
    assert [r["participants"] for r in rounds] == [["client-0", "client-1"]] * 2
    losses = [v for r in (1, 2)
              for v in json.loads(run.train_losses(r).read_text())["train_loss"].values()]
    assert len(losses) == 4
    for name in ("report.json", "report.html", "summary.md"):
        published = (run.root / name).read_text(encoding="utf-8")
        assert not any(repr(v) in published or f"{v:.6f}" in published for v in losses), name
    # only the private file's path and sha256, like every run file's (artifacts[])
    assert {a["path"] for a in doc["artifacts"]} >= {run.relative(run.train_losses(1))}


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_the_losses_stay_in_the_run_directory_sealed_by_the_manifest(
        tiny_dp_run: AuditOutcome) -> None:
    run = RunDir(tiny_dp_run.run_dir)
    manifest = {f["path"] for f in json.loads((run.root / "manifest.json").read_text())["files"]}
    train_stage = json.loads(run.stage_manifest("train").read_text())["outputs"]
    for r in (1, 2):
        path = run.train_losses(r)
        saved = json.loads(path.read_text())
        assert saved["round"] == r and set(saved["train_loss"]) == {"client-0", "client-1"}
        assert all(math.isfinite(v) and v > 0 for v in saved["train_loss"].values())
        rel = run.relative(path)
        assert rel in manifest and rel in train_stage  # sealed, and checked on --resume


def test_the_dp_card_counts_the_records_trained_with_the_dp_audit_canaries(
        tiny_dp_run: AuditOutcome) -> None:
    cfg = config_from_dict(merge(TINY, PATCH))
    data = data_of(cfg)
    plan = plant_dp_audit(cfg, data)
    assert plan is not None
    trained = {c: len(recs) for c, recs in plan.with_clients(data.clients).items()}
    own = {c: len(recs) for c, recs in data.clients.items()}
    assert trained != own  # some canaries were planted: the check can tell the two apart
    assert tiny_dp_run.report.privacy is not None
    card = tiny_dp_run.report.privacy.dp
    assert {c.client_id: c.n_records for c in card.clients} == trained
    assert card.delta_vs_1_over_n is not None and card.delta_vs_1_over_n.n == min(trained.values())
    # held-out records never count: audit non-members and test records are not in the card
    assert sum(trained.values()) - sum(own.values()) == sum(map(len, plan.placement.values()))


def test_the_ledger_finds_the_rounds_a_client_trained_in_from_participants(
        tmp_path: Path) -> None:
    run = RunDir(tmp_path).create()
    rounds = [RoundUtility(round=1, value=0.5, seconds=1.0, global_sha256="a" * 64,
                           participants=["client-0"]),
              RoundUtility(round=2, value=0.6, seconds=1.0, global_sha256="b" * 64,
                           participants=["client-0", "client-1"])]
    summary = run.path("models", "global", "training.json")
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"rounds": [r.model_dump() for r in rounds]}))
    req = ResolvedRequest(request=ErasureRequest(id="r", kind="subject", ids=["s1"]),
                          record_ids=("s1-r0",), clients=("client-1",), whole_clients=())
    found = trained_on(run, req, {})
    assert [f["path"] for f in found] == ["models/global/round-002/adapter.safetensors"]
    assert found[0]["why"] == "round 2: ['client-1'] trained on them"


def test_a_schema_0_4_round_reads_its_clients_as_participants_and_drops_the_losses() -> None:
    old = RoundUtility.model_validate({"round": 1, "value": 0.5, "seconds": 1.0,
                                       "global_sha256": "a" * 64,
                                       "train_loss": {"client-1": 0.7, "client-0": 0.9}})
    assert old.participants == ["client-0", "client-1"]
    assert "train_loss" not in old.model_dump()
