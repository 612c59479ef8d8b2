"""Every capability switched on at once, as in the demo preset, on the tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.core.progress import PlainReporter
from privaudit.unlearning.base import available_unlearners
from tests.conftest import merge


def test_dp_audit_canaries_dp_he_and_every_unlearning_method_run_together(
    tiny_config_dict: dict[str, Any], run_dir: Path
) -> None:
    cfg = merge(
        tiny_config_dict,
        {
            "federation": {"clients": 3},
            # the demo's shape: a DP batch larger than a SISA shard's first slice (~36
            # records here), which then trains full-batch under the shard's own σ
            "privacy": {"dp": {"mode": "record", "target_epsilon": 8.0, "delta": 1e-5,
                               "batch_size": 40}},
            "secure_aggregation": {"enabled": True, "coeff_mod_bit_sizes": [48, 40]},
            "attacks": {"dp_audit": {"canaries": 20}},
            "unlearning": {
                "requests": [
                    {"id": "req-1", "kind": "record", "ids": [], "received_at": "2025-01-01"}
                ],
                "methods": available_unlearners(),
                "sisa": {"shards": 2, "slices": 2},
            },
        },
    )
    from privaudit.mechanisms.data import prepare_data

    probe = config_from_dict({**cfg, "unlearning": {}})
    data = prepare_data(probe.data, task="classification", k=3, seed=probe.seed)
    cfg["unlearning"]["requests"][0]["ids"] = [data.members[0].id]
    outcome = run_audit(config_from_dict(cfg), run_dir, reporter=PlainReporter(quiet=True))
    report = outcome.report
    assert report.dp_audit is not None and report.dp_audit.n_canaries == 20
    methods = {u.method for u in report.unlearning or []}
    assert set(available_unlearners()) - {"oracle"} <= methods | {"oracle"}
    assert report.secure_aggregation is not None and report.secure_aggregation.enabled
