"""Flower engine cost, and the deployment runtime's loopback smoke test.

1. The demo federation (MiniLM LoRA, 4 clients, record-level DP-SGD, CKKS) trained by the
   in-process engine and by the Flower engine (simulation runtime, Ray backend), side by
   side: the wall-time ratio, the per-round overhead, and where Flower's time goes (Ray
   start, actors up + the clients' share loaded, rounds, shutdown). Rounds are reduced to
   ``PRIVAUDIT_BENCH_FLOWER_ROUNDS`` (default 2 of the demo's 4): the fixed cost is paid once
   per training, the per-round cost is measured on every round.
2. Flower's deployment runtime on 127.0.0.1 with TLS: one SuperLink and three SuperNodes as
   local processes, each SuperNode pointing at its own silo (tiny model, DP + HE), checked
   against the in-process engine. It is a smoke run here, not a test, because the pinned
   Flower starts a fresh ``flwr-clientapp`` process for every message a SuperNode gets, and
   each start imports torch, transformers and privaudit: about 95 s on 2 cores, beyond the
   test budget. Processes are always stopped (process groups, SIGTERM then SIGKILL).

    .venv/bin/python -m pytest benchmarks/bench_flower.py -q -s --benchmark-only
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("flwr")
pytest.importorskip("ray")

from privaudit.audit.cli import load_preset
from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.audit.flower_export import export_federation
from privaudit.audit.pipeline import build_model
from privaudit.audit.session import prepare_run_data
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.dp import accounting
from privaudit.mechanisms.dp.accounting import ClientAccountant
from privaudit.mechanisms.federated import privacy
from privaudit.mechanisms.federated.flower import run_for
from privaudit.mechanisms.federated.flower.local import LocalDeployment
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.models import AdapterState, ModelBundle, adapter_state, load_adapter
from privaudit.mechanisms.tasks import EncodedSet, attach_features, encode_records

ROUNDS = int(os.environ.get("PRIVAUDIT_BENCH_FLOWER_ROUNDS", "2"))
TINY_DP_HE = {
    "name": "tiny", "seed": 3,
    "data": {"synthetic": {"subjects": 90, "min_records": 2, "max_records": 3},
             "test_records": 40, "audit": {"members": 40, "nonmembers": 40}},
    "model": {"task": "classification", "base": "tiny",
              "tiny": {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64},
              "max_length": 48, "lora": {"rank": 4, "alpha": 8}},
    "federation": {"clients": 3, "rounds": 2, "local_epochs": 1, "batch_size": 16},
    "privacy": {"dp": {"mode": "record", "noise_multiplier": 1.0, "delta": 1e-5}},
    "secure_aggregation": {"enabled": True},
}


@dataclass
class Prepared:
    cfg: AuditConfig
    bundle: ModelBundle
    clients: dict[str, EncodedSet]
    test: EncodedSet
    start: AdapterState


def prepare(cfg: AuditConfig, root: Path) -> Prepared:
    """The federation as ``privaudit run`` prepares it (data, model, encoded clients)."""
    data = prepare_run_data(cfg)
    bundle = build_model(cfg, data, RunDir(root).create())

    def encode(records: list[Any]) -> EncodedSet:
        encoded = encode_records(records, bundle.tokenizer, labels=data.labels,
                                 max_length=cfg.model.max_length)
        return attach_features(encoded, bundle.model)

    clients = {c: encode(r) for c, r in data.clients.items()}
    return Prepared(cfg, bundle, clients, encode(data.test), adapter_state(bundle.model))


@pytest.fixture
def like_for_like(monkeypatch: pytest.MonkeyPatch) -> Any:
    """One torch thread in both arms, and one client actor in Ray (it reserves every CPU), so
    that clients train one after another in both engines: the difference is the engine's.
    (Multi-threaded torch on a loaded 2-core machine varies several-fold from run to run.)"""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("PRIVAUDIT_FLOWER_CLIENT_CPUS", str(os.cpu_count() or 1))
    yield
    torch.set_num_threads(threads)


def _cold() -> None:
    """Forget what an earlier training computed (noise calibration, ε of a history), so each
    arm pays what a fresh ``privaudit run`` pays."""
    accounting._epsilon_of_history.cache_clear()
    privacy._SIGMA_CACHE.clear()


def _train(p: Prepared, engine: str) -> tuple[Any, float]:
    _cold()
    t0 = time.perf_counter()
    result = train_federation(p.cfg.recipe, p.bundle, p.clients, p.test, initial_state=p.start,
                              seed=p.cfg.seed, engine=engine)
    return result, time.perf_counter() - t0


def _max_diff(a: AdapterState, b: AdapterState) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def test_bench_flower_simulation_over_in_process_on_the_demo(
    benchmark: Any, tmp_path: Path, like_for_like: None
) -> None:
    cfg = load_preset("demo")
    cfg = cfg.model_copy(update={"federation": cfg.federation.model_copy(
        update={"rounds": ROUNDS})})
    demo = prepare(cfg, tmp_path / "demo")
    local, local_s = _train(demo, "inprocess")
    flower, flower_s = benchmark.pedantic(lambda: _train(demo, "flower"), rounds=1, iterations=1)
    phases = run_for(flower.final_sha256).seconds  # type: ignore[union-attr]
    local_rounds = sum(r.seconds for r in local.rounds)
    per_round = (phases["rounds"] - local_rounds) / ROUNDS
    fixed = phases["total"] - phases["rounds"]
    shutdown = phases["total"] - phases["ray_init"] - phases["discover"] - phases["rounds"]
    info = {
        "rounds": ROUNDS, "inprocess_s": round(local_s, 2), "flower_s": round(flower_s, 2),
        "ratio": round(flower_s / local_s, 2), "per_round_overhead_s": round(per_round, 3),
        "fixed_s": round(fixed, 2), "ray_init_s": round(phases["ray_init"], 2),
        "actors_and_workload_s": round(phases["discover"], 2),
        "shutdown_and_rest_s": round(shutdown, 2),
        "inprocess_round_s": round(local_rounds / ROUNDS, 2),
        "flower_round_s": round(phases["rounds"] / ROUNDS, 2),
    }
    benchmark.extra_info.update(info)
    print("\nflower vs in-process on the demo federation:", json.dumps(info))
    assert local.privacy is not None and flower.privacy is not None
    assert flower.privacy.epsilon() == local.privacy.epsilon()
    assert _max_diff(flower.final_state, local.final_state) < 1e-6  # CKKS noise only


def test_bench_flower_per_round_overhead_on_the_tiny_model(
    benchmark: Any, tmp_path: Path, like_for_like: None
) -> None:
    """Rounds of ~0.5 s (tiny model, DP + HE, 3 clients): the message exchange shows."""
    rounds = 6
    federation = {"clients": 3, "rounds": rounds, "local_epochs": 1, "batch_size": 16}
    cfg = config_from_dict(TINY_DP_HE | {"federation": federation})
    tiny = prepare(cfg, tmp_path / "tiny")
    local, local_s = _train(tiny, "inprocess")
    flower, flower_s = benchmark.pedantic(lambda: _train(tiny, "flower"), rounds=1, iterations=1)
    phases = run_for(flower.final_sha256).seconds  # type: ignore[union-attr]
    # round 1 includes each actor's first pass over the model: compare rounds 2..n
    steady = [x.seconds for x in flower.rounds[1:]], [x.seconds for x in local.rounds[1:]]
    info = {
        "rounds": rounds, "inprocess_s": round(local_s, 2), "flower_s": round(flower_s, 2),
        "fixed_s": round(phases["total"] - phases["rounds"], 2),
        "flower_round_s": round(sum(steady[0]) / len(steady[0]), 3),
        "inprocess_round_s": round(sum(steady[1]) / len(steady[1]), 3),
        "per_round_overhead_s": round((sum(steady[0]) - sum(steady[1])) / len(steady[0]), 3),
        "first_round_s": [round(flower.rounds[0].seconds, 3), round(local.rounds[0].seconds, 3)],
    }
    benchmark.extra_info.update(info)
    print("\nflower vs in-process on the tiny federation:", json.dumps(info))
    assert flower.privacy is not None and local.privacy is not None
    assert flower.privacy.epsilon() == local.privacy.epsilon()


def test_bench_flower_deployment_on_loopback_with_tls(benchmark: Any, tmp_path: Path) -> None:
    torch.set_num_threads(1)  # the silos' ClientApps compute with the exporter's threads
    cfg = config_from_dict(TINY_DP_HE)
    job = export_federation(cfg, tmp_path / "job")
    silos = [job / f"silo-{i}" for i in range(cfg.federation.clients)]
    deployment = LocalDeployment(job=job / "server", silos=silos, workdir=tmp_path / "flwr")

    started: list[Any] = []

    def run() -> Path:
        with deployment:
            started.extend(deployment.processes)
            return deployment.run(job / "app", timeout=300)

    result_path = benchmark.pedantic(run, rounds=1, iterations=1)
    assert len(started) == 4 and all(p.poll() is not None for p in started)  # all stopped
    result = json.loads(result_path.read_text())
    local, _ = _train(prepare(cfg, tmp_path / "local"), "inprocess")
    final = load_adapter(job / "server" / "result" / f"round-{cfg.federation.rounds:03d}"
                         / "adapter.safetensors")
    assert _max_diff(final, local.final_state) < 1e-6
    delta = cfg.privacy.dp.delta or 0.0
    eps = max(ClientAccountant.from_dict(s["accountant"]).epsilon(delta)
              for s in result["client_states"].values())
    assert local.privacy is not None and eps == local.privacy.epsilon()
    assert sorted(n["client_id"] for n in result["nodes"]) == ["client-0", "client-1", "client-2"]
    benchmark.extra_info.update({"rounds": [r["seconds"] for r in result["rounds"]],
                                 "epsilon": eps})
    print("\nflower deployment (loopback, TLS):", json.dumps(benchmark.extra_info))
