"""Secure aggregation cost: throughput of encrypt + aggregate + decrypt, and ciphertext expansion.

Issue 6 goals: ciphertext bytes at most 8x the fp32 delta bytes, and a throughput figure
(parameters encrypted + aggregated + decrypted per second) for 1M-parameter deltas.
One round of 4 clients, run once (``pedantic``, 1 round): it takes seconds, not minutes.

    .venv/bin/python -m pytest benchmarks/bench_secagg.py -q -s --benchmark-only

``PRIVAUDIT_BENCH_SECAGG_PARAMS`` overrides the delta size (default 1,000,000).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

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

N_PARAMS = int(os.environ.get("PRIVAUDIT_BENCH_SECAGG_PARAMS", "1000000"))
N_CLIENTS = 4
SETTINGS = {
    "N8192-[60,40]": SecureAggregationConfig(enabled=True),
    "N4096-[60,40]": SecureAggregationConfig(enabled=True, poly_modulus_degree=4096),
}


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
