"""With a DP audit on, the target trains with the audit's canaries: the oracle must retrain on
exactly the target's training set minus the erased records — canaries included — or PrivLeak
would measure the canaries as well as the erasure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from privaudit.audit.config import config_from_dict
from privaudit.audit.erase_run import open_run_context
from privaudit.audit.pipeline import run_audit
from privaudit.audit.stages.dp_audit import plant_dp_audit
from privaudit.core.rundir import RunDir
from privaudit.unlearning.oracle import oracle_clients
from tests.attacks.helpers import QUIET
from tests.conftest import TINY, merge
from tests.unlearning.conftest import data_of


def test_the_oracle_retrains_on_the_targets_training_set_minus_the_erased_records(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    patch: dict[str, Any] = {
        "privacy": {"dp": {"mode": "record", "target_epsilon": 4.0, "delta": 1e-5}},
        "attacks": {"dp_audit": {"canaries": 20, "kind": "mislabeled"}},
        "unlearning": {"methods": [], "requests": [{"id": "r1", "kind": "record", "ids": []}]},
    }
    probe = config_from_dict(merge(TINY, {**patch, "unlearning": {}}))
    data = data_of(probe)
    erased = data.members[0].id
    patch["unlearning"]["requests"][0]["ids"] = [erased]
    cfg = config_from_dict(merge(TINY, patch))
    out = tmp_path_factory.mktemp("oracle-canaries") / "run"
    run_audit(cfg, out, reporter=QUIET)

    plan = plant_dp_audit(cfg, data)
    assert plan is not None
    target = {r.id for recs in plan.with_clients(data.clients).values() for r in recs}
    canaries_trained = target & {c.id for c in plan.canaries}
    assert canaries_trained, "the DP audit planted no canary in training"
    ctx, _ = open_run_context(RunDir(out))  # as `privaudit erase` rebuilds the training set
    assert {r for d in ctx.clients.values() for r in d.record_ids} == target
    assert ctx.audit_canary_ids >= canaries_trained
    retrained = oracle_clients(ctx, frozenset({erased}))
    assert {r for d in retrained.values() for r in d.record_ids} == target - {erased}
    lineage = json.loads((out / "unlearning" / "r1" / "lineage.json").read_text())
    oracle = next(p for p in lineage["produced_after_request"] if p["method"] == "oracle")
    assert oracle["erased_records_trained_on"] == 0
    # Poisson sampling may skip a record in every step: what it saw is within the set
    assert 0 < oracle["trained_records"] <= len(target) - 1
