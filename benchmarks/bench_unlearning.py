"""What unlearning costs against the oracle (issue 8): every method's time as a ratio of
retraining from scratch without the erased data, in one run.

    .venv/bin/python -m pytest benchmarks/bench_unlearning.py -q -s --benchmark-only \\
        -p no:cacheprovider

By default a tiny memorising run (seconds); ``PRIVAUDIT_BENCH_PRESET=demo`` runs the embedded
demo (MiniLM, its subject request and every method — the demo's own erase stage, timed), then
serves one single-record request on the finished run with ``privaudit erase``'s code path.
Goals on the demo task (Bourtoule et al. 2021: SISA 4.63× / 2.45× faster than retraining;
Liu et al. 2021: FedEraser ~4×):

- sisa, single record: speedup ≥ 0.8·S (S shards), ensemble accuracy within 2 points of the
  federated model;
- gradient_ascent, npo: at most 5% of the oracle's time (speedup ≥ 20);
- federaser: at least 4× faster than the oracle;
- the shipped-artifact and relearning probes (``unlearning.robustness``, issue 24): at most 15%
  of the erase stage.

SISA's speedup is against its own oracle (the SISA ensemble retrained without the record);
every other method's against the federated oracle.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml

from privaudit.audit.cli import load_preset
from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.audit.erase_run import erase_finished_run
from privaudit.audit.pipeline import run_audit
from privaudit.audit.session import prepare_run_data
from privaudit.core.progress import PlainReporter
from privaudit.core.rundir import RunDir
from privaudit.reports.schema import UnlearningResult
from privaudit.unlearning.base import available_unlearners
from privaudit.unlearning.ledger import erased_so_far, read_ledger
from tests.conftest import TINY, merge

GOALS = {"gradient_ascent": 20.0, "npo": 20.0, "federaser": 4.0}


def _config() -> AuditConfig:
    if os.environ.get("PRIVAUDIT_BENCH_PRESET") == "demo":
        return load_preset("demo")
    return config_from_dict(merge(TINY, {
        "data": {"synthetic": {"label_noise": 0.5}},
        "federation": {"clients": 4, "rounds": 4, "local_epochs": 2, "learning_rate": 0.01,
                       "batch_size": 8},
        "model": {"lora": {"rank": 16, "alpha": 32}, "tiny": {"hidden": 64}},
        "unlearning": {
            "requests": [{"id": "req-0001", "kind": "subject", "ids": ["s00001"]}],
            "methods": available_unlearners(),
            "sisa": {"shards": 4, "slices": 2, "epochs_per_slice": 2},
        },
    }))


def _table(title: str, results: list[UnlearningResult], shards: int) -> list[str]:
    lines = [title, f"{'method':<16} {'seconds':>8} {'oracle s':>9} {'speedup':>8} "
                    f"{'% oracle':>9} {'goal':>6}  forget loss before → after (oracle)"]
    for r in results:
        goal = 0.8 * shards if r.method == "sisa" else GOALS.get(r.method)
        speedup = r.speedup_vs_oracle or 0.0
        mark = "" if goal is None else (" ok" if speedup >= goal else " MISSED")
        lines.append(
            f"{r.method:<16} {r.seconds:8.2f} {r.oracle_seconds or 0:9.2f} {speedup:7.1f}x "
            f"{100 / speedup if speedup else 0:8.1f}% {'' if goal is None else f'{goal:5.1f}x'}"
            f"{mark}  {r.forget.mean_loss_before:.3f} → {r.forget.mean_loss_after:.3f} "
            f"({r.forget.mean_loss_oracle or 0:.3f})"
        )
    return lines


def _probe_share(seconds: dict[str, float]) -> str:
    """The shipped-artifact and relearning probes' share of the erase stage (issue 24's goal:
    at most 15%)."""
    probes, erase = seconds.get("erase_probes", 0.0), seconds.get("erase", 0.0)
    if not probes or not erase:
        return "probes (unlearning.robustness): not run in this preset"
    share = probes / erase
    return (f"probes (unlearning.robustness): {probes:.1f} s of the erase stage's {erase:.1f} s "
            f"({100 * share:.1f}%; goal: at most 15%{' ok' if share <= 0.15 else ' MISSED'})")


def test_bench_unlearning_vs_oracle(benchmark: Any, tmp_path: Path) -> None:
    cfg = _config()
    if cfg.unlearning.requests[0].ids == ["s00001"]:  # the tiny run: a subject it trained on

        data = prepare_run_data(cfg)
        subject = data.clients["client-2"][0].subject_id
        cfg = config_from_dict(merge(cfg.model_dump(mode="json"), {"unlearning": {
            "requests": [{"id": "req-0001", "kind": "subject", "ids": [subject]}]}}))
    run_dir = tmp_path / "run"
    started = time.perf_counter()
    outcome = run_audit(cfg, run_dir, reporter=PlainReporter(quiet=True))
    total = time.perf_counter() - started
    seconds = outcome.report.run.seconds
    subject_results = list(outcome.report.unlearning)

    run = RunDir(run_dir)
    ledger = read_ledger(run)
    gone = set(erased_so_far(ledger))
    # a record of the client that held the subject: FedEraser recomputes that one client
    holder = next(c for c in (f"client-{k}" for k in range(cfg.federation.clients))
                  if gone & set(yaml.safe_load(run.path("data", f"{c}.json").read_text())["ids"]))
    record = next(r for r in yaml.safe_load(run.path("data", f"{holder}.json").read_text())["ids"]
                  if r not in gone)
    request = tmp_path / "request.yaml"
    request.write_text(f"id: req-0002\nkind: record\nids: [{record}]\n")

    def erase() -> list[UnlearningResult]:
        return erase_finished_run(run_dir, request, reporter=PlainReporter(quiet=True))

    record_results = benchmark.pedantic(erase, rounds=1, iterations=1)
    shards = cfg.unlearning.sisa.shards
    sisa_acc = ledger["sisa"]["utility"]["value"]
    fed_acc = outcome.report.utility.value
    stages = ", ".join(f"{k} {v:.1f}" for k, v in seconds.items())
    lines = [
        f"run: {total:.1f} s in all; stages {stages}",
        f"erase stage (SISA training + the subject request, every method): "
        f"{seconds.get('erase', 0.0):.1f} s "
        f"of which SISA training {seconds.get('sisa_train', 0.0):.1f} s",
        _probe_share(seconds),
        f"accuracy: federated {fed_acc:.3f}, SISA ensemble ({shards} shards) {sisa_acc:.3f} "
        f"({100 * (sisa_acc - fed_acc):+.1f} points; goal: at most 2 below"
        f"{' ok' if sisa_acc >= fed_acc - 0.02 else ' MISSED'})",
        *_table("subject request (demo's req-0001):", subject_results, shards),
        *_table(f"single-record request {record} (privaudit erase):", record_results, shards),
    ]
    print("\n" + "\n".join(lines))
    benchmark.extra_info.update({
        f"{r.request_id}/{r.method}": round(r.speedup_vs_oracle or 0.0, 2)
        for r in [*subject_results, *record_results]
    })
    assert all(r.speedup_vs_oracle for r in record_results)
