"""What DP costs on the demo task: one local epoch of LoRA fine-tuning of the MiniLM with
DP-SGD against the same epoch without DP, per ``grad_sample_mode``; goal ≤ 1.3× (issue 5).

    .venv/bin/python -m pytest benchmarks/bench_dp.py -q -s --benchmark-only -p no:cacheprovider

The epoch is the real client update of a run: the demo preset's model (its LoRA settings,
frozen-prefix cache included), data, batch size and optimizer, on the first client's records;
:func:`~privaudit.mechanisms.federated.client.client_update` without DP,
:class:`~privaudit.mechanisms.federated.record_dp.RecordLevelDP` with it (Poisson sampling,
wrapping and unwrapping the model included, as every round pays for them). Modes run
interleaved, so that load from elsewhere hits them alike; the medians are compared.
``PRIVAUDIT_BENCH_DP_REPEATS`` sets the repeats (default 3, after one warm-up pass).
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from privaudit.audit.cli import load_preset
from privaudit.audit.config import AuditConfig
from privaudit.audit.pipeline import build_model
from privaudit.audit.session import prepare_run_data
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.dp import GRAD_SAMPLE_MODES, DPConfig
from privaudit.mechanisms.federated import ClientState, RecordLevelDP, client_update
from privaudit.mechanisms.models import ModelBundle, adapter_state
from privaudit.mechanisms.tasks import EncodedSet, attach_features, encode_records

MODES = ("none", *GRAD_SAMPLE_MODES, "demo")
REPEATS = int(os.environ.get("PRIVAUDIT_BENCH_DP_REPEATS", "3"))


@dataclass
class DemoTask:
    cfg: AuditConfig
    bundle: ModelBundle
    data: EncodedSet
    start: dict[str, torch.Tensor]


@pytest.fixture(scope="module")
def demo_task(tmp_path_factory: pytest.TempPathFactory) -> DemoTask:
    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    cfg = load_preset("demo")
    cfg = cfg.model_copy(
        update={"federation": cfg.federation.model_copy(update={"local_epochs": 1})}
    )
    prepared = prepare_run_data(cfg)
    bundle = build_model(cfg, prepared, RunDir(tmp_path_factory.mktemp("bench-dp")).create())
    records = next(iter(prepared.clients.values()))
    encoded = encode_records(
        records, bundle.tokenizer, labels=prepared.labels, max_length=cfg.model.max_length
    )
    features = attach_features(encoded, bundle.model)
    return DemoTask(cfg, bundle, features, adapter_state(bundle.model))


def run_epoch(task: DemoTask, mode: str) -> dict[str, float]:
    """One local epoch from the same starting adapter; its metrics. ``mode``: "none" (no
    DP), a grad_sample_mode (DP at the federation's batch size: the same epoch), or "demo"
    (DP as the demo preset runs it: its own ``privacy.dp`` batch size and learning rate)."""
    client: Any = client_update
    federation = task.cfg.federation
    if mode == "demo":
        client = RecordLevelDP(task.cfg.privacy.dp, noise_multipliers={"bench": 1.0})
        federation = task.cfg.recipe.training_federation()
    elif mode != "none":
        dp = DPConfig(
            mode="record", noise_multiplier=1.0, delta=1e-5, grad_sample_mode=mode,  # type: ignore[arg-type]
        )
        client = RecordLevelDP(dp, noise_multipliers={"bench": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        update, _ = client(
            task.bundle.model,
            task.start,
            task.data,
            federation,
            ClientState(client_id="bench"),
            task=task.cfg.model.task,
            round_index=1,
            seed=task.cfg.seed,
        )
    return update.metrics


def test_dp_over_non_dp_epoch_time_per_grad_sample_mode(
    benchmark: Any, demo_task: DemoTask
) -> None:
    times: dict[str, list[float]] = {m: [] for m in MODES}
    for rep in range(REPEATS + 1):
        for mode in MODES:
            start = time.perf_counter()
            run_epoch(demo_task, mode)
            if rep:  # the first pass warms up
                times[mode].append(time.perf_counter() - start)
    median = {m: statistics.median(t) for m, t in times.items()}
    ratios = {m: median[m] / median["none"] for m in GRAD_SAMPLE_MODES}
    benchmark.extra_info["ratio_demo"] = median["demo"] / median["none"]
    fastest = min(ratios, key=lambda m: ratios[m])
    print(
        f"\nDP / non-DP time of one local epoch, MiniLM demo task "
        f"({len(demo_task.data)} records, batch {demo_task.cfg.federation.batch_size}, "
        f"{torch.get_num_threads()} threads, median of {REPEATS}; goal ≤ 1.3):"
    )
    base_s = median["none"]
    for mode, ratio in ratios.items():
        print(f"  {mode:<10} {ratio:5.2f}×   ({median[mode]:.2f} s vs {base_s:.2f} s)")
    print(f"  fastest: {fastest} (default: {DPConfig().grad_sample_mode})")
    demo = demo_task.cfg.recipe.training_federation()
    print(
        f"  the demo's DP epoch (batch {demo.batch_size}, "
        f"{demo_task.cfg.privacy.dp.grad_sample_mode}) / the demo's non-DP epoch (batch "
        f"{demo_task.cfg.federation.batch_size}): {median['demo'] / base_s:.2f}×"
    )
    benchmark.extra_info.update({f"ratio_{m}": r for m, r in ratios.items()})
    benchmark.extra_info["fastest"] = fastest
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    assert all(r > 0 for r in ratios.values())
