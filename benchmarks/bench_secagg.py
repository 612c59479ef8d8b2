"""Secure aggregation cost: throughput of encrypt + aggregate + decrypt, ciphertext
expansion, and a federated round of the demo with HE against the same round without it.

Issue 6 goals (and #23's, for pairwise masking under BFV, the demo round's third arm): a
round with secure aggregation at most 1.10x the time of the same round without it (the demo's
MiniLM LoRA task, side by side); ciphertext bytes at most 8x the fp32 delta bytes (on the
demo's adapter); a throughput figure (parameters encrypted + aggregated + decrypted per
second) for 1M-parameter deltas. The 1M round runs once (``pedantic``).

    .venv/bin/python -m pytest benchmarks/bench_secagg.py -q -s --benchmark-only

``PRIVAUDIT_BENCH_SECAGG_PARAMS`` overrides the 1M delta size; ``PRIVAUDIT_BENCH_HE_REPEATS``
the demo rounds per arm (default 1).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from privaudit.audit.cli import load_preset
from privaudit.audit.config import AuditConfig
from privaudit.audit.pipeline import build_model
from privaudit.audit.session import prepare_run_data
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.dp import DPConfig
from privaudit.mechanisms.federated import (
    FedAvg,
    InProcessEngine,
    SecureAggregation,
    Strategy,
    TrainingJob,
)
from privaudit.mechanisms.federated.secure_masked import PairwiseMasking
from privaudit.mechanisms.models import ModelBundle, adapter_state
from privaudit.mechanisms.secagg import (
    ExpectedRound,
    KeyHolder,
    SecureAggregationConfig,
    SecureAggregator,
    encrypt_update,
    expansion_ratio,
    flatten,
    max_abs_error,
    plaintext_weighted_mean,
)
from privaudit.mechanisms.tasks import EncodedSet, attach_features, encode_records

N_PARAMS = int(os.environ.get("PRIVAUDIT_BENCH_SECAGG_PARAMS", "1000000"))
N_CLIENTS = 4
SETTINGS = {
    "N8192-[60,40]": SecureAggregationConfig(enabled=True),
    "N4096-[60,40]": SecureAggregationConfig(enabled=True, poly_modulus_degree=4096),
    "N8192-[48,40]": SecureAggregationConfig(enabled=True, coeff_mod_bit_sizes=[48, 40]),
}
HE_REPEATS = int(os.environ.get("PRIVAUDIT_BENCH_HE_REPEATS", "1"))


def _deltas() -> tuple[list[dict[str, np.ndarray]], list[float]]:
    rng = np.random.default_rng(0)
    rows = N_PARAMS // 1000
    deltas = [
        {"lora_A": rng.normal(0, 1e-3, (rows, 1000)).astype(np.float32),
         "lora_B": rng.normal(0, 1e-2, N_PARAMS - rows * 1000).astype(np.float32)}
        for _ in range(N_CLIENTS)
    ]
    return deltas, [float(w) for w in rng.integers(50, 200, N_CLIENTS)]


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_bench_secagg_round(benchmark, setting: str) -> None:  # type: ignore[no-untyped-def]
    cfg = SETTINGS[setting]
    holder = KeyHolder.generate(cfg)
    deltas, weights = _deltas()
    expected = ExpectedRound.from_state(deltas[0], adapter_config_hash="bench", round=0)
    client_ctx, server_ctx = holder.client_context(), holder.server_context()
    timings: dict[str, float] = {}

    def one_round() -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        updates = [
            encrypt_update(d, weight=w, round=0, client_id=f"c{k}", adapter_config_hash="bench",
                           context_bytes=client_ctx)
            for k, (d, w) in enumerate(zip(deltas, weights, strict=True))
        ]
        t1 = time.perf_counter()
        agg = SecureAggregator(server_ctx, expected=expected, min_clients=N_CLIENTS)
        for update in updates:
            if not agg.add(update):
                raise RuntimeError(agg.rejections)
        total = agg.finish()
        t2 = time.perf_counter()
        mean = holder.decrypt_mean(total)
        t3 = time.perf_counter()
        timings.update(encrypt=t1 - t0, aggregate=t2 - t1, decrypt=t3 - t2, total=t3 - t0,
                       ratio=expansion_ratio(updates[0]))
        return mean

    mean = benchmark.pedantic(one_round, rounds=1, iterations=1)

    t0 = time.perf_counter()
    want = plaintext_weighted_mean(deltas, weights)
    plain = time.perf_counter() - t0
    err = max_abs_error(mean, want)
    scale = float(np.max(np.abs(flatten(want)[0])))
    throughput = N_CLIENTS * N_PARAMS / timings["total"]
    benchmark.extra_info.update(
        params=N_PARAMS, clients=N_CLIENTS, expansion_ratio=timings["ratio"],
        params_per_second=throughput, max_abs_error=err,
        **{f"{k}_s": v for k, v in timings.items()},
    )
    print(
        f"\nsecagg {setting}: {N_CLIENTS} clients x {N_PARAMS:,} params  "
        f"encrypt {timings['encrypt']:.2f}s  aggregate {timings['aggregate']:.2f}s  "
        f"decrypt {timings['decrypt']:.2f}s  plaintext FedAvg {plain:.3f}s\n"
        f"  throughput {throughput:,.0f} params/s (encrypted + aggregated + decrypted)\n"
        f"  expansion ratio {timings['ratio']:.3f}x fp32 (goal <= 8)  "
        f"max abs error {err:.2e} (update scale {scale:.2e})"
    )
    assert err <= 1e-6 * scale


@dataclass
class DemoRound:
    cfg: AuditConfig
    bundle: ModelBundle
    clients: dict[str, EncodedSet]
    test: EncodedSet
    start: dict[str, torch.Tensor]


@pytest.fixture(scope="module")
def demo_round(tmp_path_factory: pytest.TempPathFactory) -> DemoRound:
    """The demo preset's model and clients (its DP settings dropped: HE alone is measured)."""
    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    cfg = load_preset("demo")
    cfg = cfg.model_copy(update={
        "federation": cfg.federation.model_copy(update={"rounds": 1}),
        "privacy": cfg.privacy.model_copy(update={"dp": DPConfig()}),
    })
    data = prepare_run_data(cfg)
    bundle = build_model(cfg, data, RunDir(tmp_path_factory.mktemp("bench-he")).create())

    def encode(records: list[Any]) -> EncodedSet:
        encoded = encode_records(
            records, bundle.tokenizer, labels=data.labels, max_length=cfg.model.max_length
        )
        return attach_features(encoded, bundle.model)

    clients = {c: encode(recs) for c, recs in data.clients.items()}
    return DemoRound(cfg, bundle, clients, encode(data.test), adapter_state(bundle.model))


def _strategy(demo: DemoRound, he: SecureAggregationConfig | None) -> Strategy:
    """Plain FedAvg (``he`` None), the CKKS path (masking none) or pairwise masking."""
    strategy: Strategy = FedAvg(weighting=demo.cfg.federation.weighting)
    if he is not None and he.masking == "pairwise":  # BFV keys made once per run
        strategy = PairwiseMasking(strategy, he, seed=demo.cfg.seed)
    elif he is not None:  # keys are made once per run, not per round: outside the timing
        strategy = SecureAggregation(strategy, KeyHolder.generate(he),
                                     adapter_config_hash=demo.bundle.adapter_config_sha256)
    return strategy


def _one_round(demo: DemoRound, strategy: Strategy) -> tuple[float, Any, list[Any]]:
    sent: list[Any] = []
    job = TrainingJob(model=demo.bundle.model, task=demo.cfg.model.task,
                      initial_state=demo.start, clients=demo.clients, test=demo.test,
                      federation=demo.cfg.federation, seed=demo.cfg.seed, strategy=strategy,
                      on_round=lambda r, s, updates, rec: sent.extend(updates))
    start = time.perf_counter()
    result = InProcessEngine().run(job)
    return time.perf_counter() - start, result.rounds[0], sent


def _aggregation_seconds(demo: DemoRound, strategy: Strategy, updates: list[Any]) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        strategy.aggregate_round(demo.start, updates, round_index=1)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_he_round_over_plain_round_on_the_demo_task(benchmark: Any, demo_round: DemoRound) -> None:
    """Two measurements: the same round run side by side with and without HE (wall time,
    at the mercy of other load on the machine), and the round without HE with its plaintext
    aggregation swapped for the encrypted one on the very same client updates (the training
    is identical in both; only the aggregation differs)."""
    masked = demo_round.cfg.secure_aggregation.model_copy(update={"masking": "pairwise"})
    arms = {"plain": None, "ckks": masked.model_copy(update={"masking": "none"}),
            "masked": masked}
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    logs: dict[str, Any] = {}
    updates: list[Any] = []
    for _ in range(HE_REPEATS):
        for arm, he in arms.items():
            seconds, record, sent = _one_round(demo_round, _strategy(demo_round, he))
            times[arm].append(seconds)
            if he is None:
                updates = sent
            else:
                logs[arm] = record.aggregation.secure_aggregation
    plain = statistics.median(times["plain"])
    plain_agg = _aggregation_seconds(demo_round, _strategy(demo_round, None), updates)
    print(f"\nsecure round / plain round, demo task ({len(demo_round.clients)} clients, "
          f"{demo_round.cfg.federation.local_epochs} local epochs; goals <= 1.10x time, "
          f"<= 8x fp32 bytes); plain round {plain:.2f} s, aggregation {plain_agg * 1e3:.0f} ms")
    for arm in ("ckks", "masked"):
        agg = _aggregation_seconds(demo_round, _strategy(demo_round, arms[arm]), updates)
        swapped = (plain - plain_agg + agg) / plain
        wall = statistics.median(times[arm]) / plain
        log = logs[arm]
        print(f"  {arm:6s}: aggregation swapped {swapped:6.4f}x ({agg * 1e3:.0f} ms), side by "
              f"side {wall:6.3f}x; {log.expansion_ratio:.3f}x fp32 ({log.ciphertext_bytes:,} B "
              f"for {log.fp32_bytes:,} B); max abs error {log.max_abs_error:.2e}"
              + (f" (bound {log.quantization_error_bound:.2e})"
                 if log.quantization_error_bound else ""))
        benchmark.extra_info.update({f"{arm}_round_ratio_swapped": swapped,
                                     f"{arm}_round_ratio_wall": wall,
                                     f"{arm}_expansion_ratio": log.expansion_ratio})
        assert log.max_abs_error is not None and log.max_abs_error < 1e-6
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_expansion_on_the_demo_adapter(setting: str, demo_round: DemoRound) -> None:
    delta = {k: np.random.default_rng(0).normal(0, 1e-3, tuple(v.shape)).astype(np.float32)
             for k, v in demo_round.start.items()}
    holder = KeyHolder.generate(SETTINGS[setting])
    update = encrypt_update(delta, weight=1.0, round=1, client_id="c", adapter_config_hash="h",
                            context_bytes=holder.client_context())
    ratio = expansion_ratio(update)
    print(f"\nexpansion {setting} on the demo adapter ({update.manifest.n_values:,} values, "
          f"{update.manifest.n_ciphertexts} ciphertexts): {ratio:.3f}x fp32")
    assert ratio >= 5.0
