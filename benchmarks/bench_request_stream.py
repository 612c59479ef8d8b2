"""A hundred erasure requests in a row (issue 24): what sequential erasure costs and whether
early erasures stay erased, per method, in one run.

    .venv/bin/python -m pytest benchmarks/bench_request_stream.py -q -s --benchmark-only \\
        -p no:cacheprovider

A tiny federation (record-level DP-SGD, ε = 8) is trained once with SISA's shards; then
``privaudit erase RUN --request-stream`` serves ``PRIVAUDIT_STREAM_REQUESTS`` (default 100)
single-record requests, each on the model the previous one produced, with every method and the
oracle retrained for the cumulative erased set after each (the erase stage of that command; its
report step, which attacks every model produced, is not run). Printed per method:
its final utility against the final oracle's, the worst evidence for any earlier request over
the whole stream (the lowest PrivLeak of the earlier erased records, the largest AUC excess of
one earlier request over the oracle), the retained records' ε at the end, and its total time as
a ratio of the oracle's (= retraining after every request).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.audit.stages.erase import run_erase
from privaudit.core.progress import PlainReporter
from privaudit.reports.schema import UnlearningResult
from privaudit.unlearning.base import oracle_name
from tests.conftest import TINY, merge

METHODS = ["gradient_ascent", "graddiff", "npo", "finetune_retain", "sisa", "federaser"]
#: record-level DP-SGD that learns on the tiny model: 6 rounds of 3 local epochs at DP batch
#: 64 and learning rate 0.5 reach test accuracy 0.71 (seed 3) and 0.60 (seed 4) against a
#: majority class of 0.18 (the old 2 x 1 epochs at batch 32, learning rate 0.05, stayed at
#: the majority class); without DP, 4 x 3 epochs at 0.05 reach 0.85
STREAM: dict[str, Any] = {
    "data": {"synthetic": {"subjects": 300, "min_records": 2, "max_records": 3},
             "test_records": 160},
    "federation": {"clients": 3, "rounds": 6, "local_epochs": 3, "batch_size": 16},
    "privacy": {"dp": {"mode": "record", "target_epsilon": 8.0, "delta": 1e-5,
                       "batch_size": 64, "learning_rate": 0.5}},
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


def _serve(run: Path, stream: Path) -> list[UnlearningResult]:
    """The stream served as ``privaudit erase RUN --request-stream`` serves it (the erase
    stage), without its last step: attacking the ~700 models it produced and rendering their
    report, which measures the report, not sequential erasure."""
    from privaudit.audit.erase_run import open_run_context
    from privaudit.core.rundir import RunDir
    from privaudit.unlearning.requests import load_request_stream

    ctx, _ = open_run_context(RunDir(run), methods=METHODS)
    results, _ = run_erase(ctx, load_request_stream(stream), METHODS,
                           PlainReporter(quiet=True))
    return results


def _utility(rows: list[UnlearningResult]) -> str:
    """The last model's utility, with the median and range over the whole stream (one DP
    retraining can land far from another: the oracle's final value alone says little)."""
    values = [r.retain.utility for r in rows if r.retain.utility is not None]
    return (f"{values[-1]:.3f} (median {statistics.median(values):.3f}, "
            f"{min(values):.3f}–{max(values):.3f})") if values else "n/a"


def _summary(results: list[UnlearningResult]) -> list[str]:
    by: dict[str, list[UnlearningResult]] = {}
    for r in results:
        by.setdefault(r.method, []).append(r)
    oracle = by[oracle_name()]
    oracle_total = sum(r.seconds for r in oracle)
    lines = [f"  oracle: utility {_utility(oracle)}, {oracle_total:.0f} s for {len(oracle)} "
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
        flags = Counter(f.name for r in rows for f in r.verification_flags)
        lines.append(
            f"  {method:<16}: utility {_utility(rows)} vs the oracle's {_utility(oracle)}; "
            f"earlier erasures: lowest PrivLeak "
            f"{min(leaks) if leaks else float('nan'):+.1f}%, largest excess AUC of one earlier "
            "request "
            + (f"{worst_gap[0]:+.3f} (request {worst_gap[1]} after request {worst_gap[2]})"
               if worst_gap else "n/a")
            + f"; retained ε {eps if eps is None else round(eps, 3)}; {total:.1f} s = "
            f"{total / oracle_total:.3f} x retraining {len(oracle)} times; flagged "
            f"{sum(bool(r.verification_flags) for r in rows)}/{len(rows)}"
            + (f" ({', '.join(f'{k} {v}' for k, v in sorted(flags.items()))})" if flags
               else ""))
    return lines


def test_bench_a_hundred_requests_in_a_row(benchmark: Any, tmp_path: Path) -> None:
    n = int(os.environ.get("PRIVAUDIT_STREAM_REQUESTS", "100"))
    run = tmp_path / "run"
    started = time.perf_counter()
    run_audit(config_from_dict(merge(TINY, STREAM)), run, reporter=PlainReporter(quiet=True))
    trained = time.perf_counter() - started
    stream = _stream(run, n, tmp_path / "requests.jsonl")
    results = benchmark.pedantic(lambda: _serve(run, stream), rounds=1, iterations=1)
    print(f"\n{n} single-record requests in a row on the tiny model (record DP, ε = 8; "
          f"training {trained:.0f} s, the stream {time.perf_counter() - started - trained:.0f} "
          "s):")
    print("\n".join(_summary(results)))


if __name__ == "__main__":  # the summary of a finished stream: python bench_request_stream.py RUN
    from privaudit.core.rundir import RunDir
    from privaudit.unlearning.ledger import read_results

    print("\n".join(_summary(read_results(RunDir(Path(sys.argv[1]))))))
