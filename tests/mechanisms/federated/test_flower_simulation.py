"""``privaudit run CONFIG --engine flower`` for real: Flower's simulation runtime on Ray, 3
clients on the tiny model, record-level DP-SGD and secure aggregation on (pairwise masks under
BFV, the default; the CKKS path is checked message by message on the loopback grid of
test_flower.py) — against the in-process engine with the same seed and config. One Ray start:
about 20 s on 2 cores."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip("flwr")
pytest.importorskip("ray")

from privaudit.audit.cli import main
from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.models import load_adapter
from tests.conftest import TINY, merge

PATCH = {
    "federation": {"clients": 3, "rounds": 2},
    "privacy": {"dp": {"mode": "record", "noise_multiplier": 1.0, "delta": 1e-5}},
    "secure_aggregation": {"enabled": True},
}


def test_flower_simulation_run_matches_in_process_and_reports_its_nodes(tmp_path: Path) -> None:
    masking = "pairwise"  # the default; the CKKS path's parity is on the loopback grid
    cfg = merge(TINY, merge(PATCH, {"secure_aggregation": {"masking": masking}}))
    local = run_audit(config_from_dict(cfg), tmp_path / "inprocess")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    out = tmp_path / "flower"
    assert main(["run", str(path), "--out", str(out), "--engine", "flower"]) == 0

    report = json.loads((out / "report.json").read_text())
    ours = json.loads((local.run_dir / "report.json").read_text())
    # the same ε: the clients' accountants, kept in their Flower context, saw the same steps
    assert report["privacy"]["dp"]["epsilon"] == ours["privacy"]["dp"]["epsilon"]
    assert report["privacy"]["dp"]["epsilon"] > 0
    # the same adapter up to CKKS decryption noise (each run encrypts with fresh randomness)
    # or, masked, up to the stochastic rounding to the 2^-24 grid
    flower_run, local_run = RunDir(out), RunDir(local.run_dir)
    a, b = load_adapter(flower_run.global_adapter(2)), load_adapter(local_run.global_adapter(2))
    assert max(float((a[k].double() - b[k].double()).abs().max()) for k in a) < 1e-5
    # round 1 trains from the same adapter: the updates the clients kept are bit-identical
    for client in ("client-0", "client-1", "client-2"):
        mine = load_adapter(flower_run.client_update(1, client))
        theirs = load_adapter(local_run.client_update(1, client))
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    # the report names the engine, the Flower version and the nodes that took part
    run = report["run"]
    assert run["engine"] == "flower" and run["flower_version"] == version("flwr")
    assert run["flower_runtime"] == "simulation" and ours["run"]["nodes"] is None
    assert sorted(n["client_id"] for n in run["nodes"]) == ["client-0", "client-1", "client-2"]
    assert all(n["rounds"] == [1, 2] for n in run["nodes"])
    assert len({n["node_id"] for n in run["nodes"]}) == 3
    secure = report["secure_aggregation"]
    assert secure["enabled"] and secure["rejections"] == []
    assert 0 < secure["max_abs_error"] < (1e-7 if masking == "none" else 3 * 2.0**-24)
