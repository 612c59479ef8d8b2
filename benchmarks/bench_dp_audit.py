"""Power with bounded cost (issue 9): on the non-DP demo model, the default canary count must
give an empirical ε lower bound ≥ 1 while adding at most 20% to training time.

    .venv/bin/python benchmarks/bench_dp_audit.py          (or with pytest -s)

The demo preset's data, MiniLM + LoRA and federation schedule, DP and encryption off; the
federation is trained twice from the same start: without canaries, and with the default
``attacks.dp_audit`` canaries in the clients' data (the one target training of a real run).
Prints both training times (each the fastest of ``PRIVAUDIT_BENCH_REPEAT`` alternating runs,
default 2), the overhead ratio and the audit's bounds.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from privaudit.audit.cli import load_preset
from privaudit.audit.config import AuditConfig, DpAuditConfig
from privaudit.audit.pipeline import build_model
from privaudit.audit.session import prepare_run_data
from privaudit.audit.stages.dp_audit import dp_audit_result, plant_dp_audit, score_dp_audit
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.models import adapter_state
from privaudit.mechanisms.tasks import attach_features, encode_records


def _config() -> AuditConfig:
    d: dict[str, Any] = load_preset("demo").model_dump(mode="json")
    d["privacy"]["dp"]["mode"] = "none"
    d["secure_aggregation"]["enabled"] = False
    d["attacks"]["dp_audit"] = d["attacks"].get("dp_audit") or DpAuditConfig().model_dump()
    return AuditConfig.model_validate(d)


def measure(out: str = "/tmp/privaudit-bench-dp-audit") -> dict[str, float]:
    cfg = _config()
    data = prepare_run_data(cfg)
    bundle = build_model(cfg, data, RunDir(Path(out)).create())
    start = adapter_state(bundle.model)

    def encode(records: list) -> Any:  # type: ignore[type-arg]
        enc = encode_records(records, bundle.tokenizer, labels=data.labels,
                             max_length=cfg.model.max_length)
        return attach_features(enc, bundle.model)

    plan = plant_dp_audit(cfg, data)
    if plan is None:
        raise RuntimeError("attacks.dp_audit is off in the benchmark config")
    test = encode(data.test)
    times: dict[str, float] = {}
    results = {}
    variants = {"plain": data.clients, "canaries": plan.with_clients(data.clients)}
    encoded = {name: {c: encode(r) for c, r in recs.items()} for name, recs in variants.items()}
    # alternate the two trainings and keep each one's fastest: a shared machine's load
    # then weighs on both alike
    for _ in range(int(os.environ.get("PRIVAUDIT_BENCH_REPEAT", "2"))):
        for name, clients in encoded.items():
            t0 = time.perf_counter()
            results[name] = train_federation(cfg.recipe, bundle, clients, test, initial_state=start,
                                             seed=cfg.seed)
            times[name] = min(times.get(name, float("inf")), time.perf_counter() - t0)
    scores = score_dp_audit(bundle.model, plan.canaries, task=cfg.model.task, encode=encode,
                            initial_state=start, trained_state=results["canaries"].final_state)
    audit = dp_audit_result(cfg, plan, scores, claimed_epsilon=None, delta=None)
    return {
        "train_s_plain": times["plain"],
        "train_s_canaries": times["canaries"],
        "overhead_ratio": times["canaries"] / times["plain"],
        "epsilon_lower_bound": audit.epsilon_lower_bound,
        "one_run": float(audit.one_run_epsilon_lower_bound or 0.0),
        "roc": float(audit.roc_epsilon_lower_bound or 0.0),
        "correct": audit.correct,
        "guesses": audit.guesses,
        "n_canaries": audit.n_canaries,
    }


def test_default_canaries_bound_the_demo_model_at_bounded_cost() -> None:
    m = measure()
    print(m)
    assert m["overhead_ratio"] <= 1.2
    assert m["epsilon_lower_bound"] >= 1.0


if __name__ == "__main__":
    print(measure())
