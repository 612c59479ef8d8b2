"""A hundred erasure requests in a row (issue 24): what sequential erasure costs and whether
early erasures stay erased, per method, in one run.

    .venv/bin/python -m pytest benchmarks/bench_request_stream.py -q -s --benchmark-only \\
        -p no:cacheprovider

A tiny federation (record-level DP-SGD, ε = 8) is trained once with SISA's shards; then
``privaudit erase RUN --request-stream`` serves ``PRIVAUDIT_STREAM_REQUESTS`` (default 100)
single-record requests, each on the model the previous one produced, with every method and
the oracle retrained for the cumulative erased set after each. Printed per method: its final
utility against the final oracle's, the worst evidence for any earlier request over the whole
stream (the lowest PrivLeak of the earlier erased records, the largest AUC excess of one
earlier request over the oracle), the retained records' ε at the end, and its total time as a
ratio of the oracle's (= retraining after every request).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from privaudit.audit.config import config_from_dict
from privaudit.audit.erase_run import erase_finished_run
from privaudit.audit.pipeline import run_audit
from privaudit.core.progress import PlainReporter
from privaudit.reports.schema import UnlearningResult
from privaudit.unlearning.base import oracle_name
from tests.conftest import TINY, merge

METHODS = ["gradient_ascent", "graddiff", "npo", "finetune_retain", "sisa", "federaser"]
STREAM: dict[str, Any] = {
    "data": {"synthetic": {"subjects": 300, "min_records": 2, "max_records": 3}},
    "federation": {"clients": 3, "rounds": 2, "local_epochs": 1, "batch_size": 16},
    "privacy": {"dp": {"mode": "record", "target_epsilon": 8.0, "delta": 1e-5,
                       "batch_size": 32, "learning_rate": 0.05}},
    "unlearning": {"methods": METHODS, "sisa": {"shards": 3, "slices": 1}},
    "attacks": {"battery": [{"name": "loss"}], "bootstrap": 50},
    "report": {"formats": []},
}


def _stream(run: Path, n: int, path: Path) -> Path:
    """``n`` single-record requests over training records of every client, in a fixed order."""
    from privaudit.audit.erase_run import open_run_context
    from privaudit.core.rundir import RunDir

    ctx, _ = open_run_context(RunDir(run), methods=[])
    clients = sorted(ctx.data.clients)
    pools = [[r.id for r in ctx.data.clients[c] if r.id not in ctx.audit_canary_ids]
             for c in clients]
    ids = [pools[i % len(pools)][i // len(pools)] for i in range(n)]
    path.write_text("".join(json.dumps({"id": f"r{i:03d}", "kind": "record", "ids": [rid]})
                            + "\n" for i, rid in enumerate(ids)))
    return path


def _summary(results: list[UnlearningResult]) -> list[str]:
    by: dict[str, list[UnlearningResult]] = {}
    for r in results:
        by.setdefault(r.method, []).append(r)
    oracle = by[oracle_name()]
    oracle_total = sum(r.seconds for r in oracle)
    final_oracle = oracle[-1].retain.utility
    lines = [f"  oracle: final utility {final_oracle:.3f}, retained ε "
             f"{oracle[-1].retained_epsilon}, {oracle_total:.0f} s for {len(oracle)} "
             "retrainings"]
    for method in METHODS:
        rows = by.get(method, [])
        if not rows:
            continue
        points = [r.sequence for r in rows if r.sequence is not None]
        leaks = [p.earlier_privleak for p in points if p.earlier_privleak is not None]
        gaps = [(p.worst_difference, p.worst_request, p.position) for p in points
                if p.worst_difference is not None]
        worst_gap = max(gaps) if gaps else None
        total = sum(r.seconds for r in rows)
        eps = rows[-1].retained_epsilon
        lines.append(
            f"  {method:<16}: final utility {rows[-1].retain.utility:.3f} vs the oracle's "
            f"{final_oracle:.3f}; earlier erasures: lowest PrivLeak "
            f"{min(leaks) if leaks else float('nan'):+.1f}%, largest excess AUC "
            + (f"{worst_gap[0]:+.3f} (request {worst_gap[1]} after request {worst_gap[2]})"
               if worst_gap else "n/a")
            + f"; retained ε {eps if eps is None else round(eps, 3)}; {total:.1f} s = "
            f"{total / oracle_total:.3f} x retraining {len(oracle)} times; flagged "
            f"{sum(bool(r.verification_flags) for r in rows)}/{len(rows)}")
    return lines


def test_bench_a_hundred_requests_in_a_row(benchmark: Any, tmp_path: Path) -> None:
    n = int(os.environ.get("PRIVAUDIT_STREAM_REQUESTS", "100"))
    run = tmp_path / "run"
    started = time.perf_counter()
    run_audit(config_from_dict(merge(TINY, STREAM)), run, reporter=PlainReporter(quiet=True))
    trained = time.perf_counter() - started
    stream = _stream(run, n, tmp_path / "requests.jsonl")
    results = benchmark.pedantic(
        lambda: erase_finished_run(run, stream, methods=METHODS, stream=True,
                                   reporter=PlainReporter(quiet=True)), rounds=1, iterations=1)
    print(f"\n{n} single-record requests in a row on the tiny model (record DP, ε = 8; "
          f"training {trained:.0f} s, the stream {time.perf_counter() - started - trained:.0f} "
          "s):")
    print("\n".join(_summary(results)))
