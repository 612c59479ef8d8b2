"""The run's stage times alone vs beside one other CPU-bound process, in one run (issue 17,
part 4): sharing 2 cores with one busy process should cost about 2x, not the 10-13x seen
when torch's OpenMP threads spin on an oversubscribed machine.

    .venv/bin/python -m pytest benchmarks/bench_under_load.py -q -s --benchmark-only \\
        -p no:cacheprovider

Three runs of the same config through ``privaudit run`` (each in its own process, since
OpenMP reads its wait policy when torch loads): alone; beside a busy process with threads
from ``os.sched_getaffinity`` / the cgroup quota and ``OMP_WAIT_POLICY=PASSIVE``; and beside a
busy process with OpenMP threads spinning (``OMP_WAIT_POLICY=ACTIVE``). By default a small
record-DP federation on the tiny model (about three minutes in all);
``PRIVAUDIT_BENCH_PRESET=demo`` uses the embedded demo (about 15 minutes in all).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import TINY, merge

CONFIG = merge(TINY, {
    "data": {"synthetic": {"subjects": 200}, "test_records": 80},
    "model": {"tiny": {"layers": 2, "hidden": 128, "heads": 4, "intermediate": 128}},
    "federation": {"clients": 2, "rounds": 3, "local_epochs": 2, "batch_size": 16},
    "privacy": {"dp": {"mode": "record", "target_epsilon": 8.0, "delta": 1e-5}},
    "attacks": {"battery": [{"name": "loss"}, {"name": "rmia"}],
                "references": {"count": 2}},
})
BUSY = "while True: pass"
PRIVAUDIT = str(Path(sys.executable).parent / "privaudit")


def _run(workdir: Path, name: str, env_extra: dict[str, str], busy: bool) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY",
                                                             "PRIVAUDIT_THREADS")}
    env |= env_extra
    out = workdir / name
    if os.environ.get("PRIVAUDIT_BENCH_PRESET") == "demo":
        cmd = [PRIVAUDIT, "demo", "--out", str(out)]
    else:
        cfg = workdir / "config.yaml"
        cfg.write_text(yaml.safe_dump(CONFIG))
        cmd = [PRIVAUDIT, "run", str(cfg), "--out", str(out)]
    load = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=3600)
    finally:
        if load is not None:
            load.kill()
            load.wait()
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return {k: float(v) for k, v in report["run"]["seconds"].items()}


def test_stage_times_beside_one_busy_process_as_ratios_of_alone(benchmark: Any) -> None:
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        alone = benchmark.pedantic(_run, args=(work, "alone", {}, False), rounds=1,
                                   iterations=1)
        loaded = _run(work, "loaded", {"OMP_WAIT_POLICY": "PASSIVE"}, True)
        spinning = _run(work, "spinning", {"OMP_WAIT_POLICY": "ACTIVE"}, True)
    print(f"\n{'stage':<14}{'alone s':>9}{'loaded':>9}{'ratio':>7}{'spinning':>10}{'ratio':>7}")
    for stage in alone:
        a, b, c = alone[stage], loaded.get(stage, float("nan")), spinning.get(stage, float("nan"))
        if a < 0.05:
            continue
        print(f"{stage:<14}{a:>9.1f}{b:>9.1f}{b / a:>6.2f}x{c:>10.1f}{c / a:>6.2f}x")
    total = sum(alone.values())
    print(f"{'all stages':<14}{total:>9.1f}{sum(loaded.values()):>9.1f}"
          f"{sum(loaded.values()) / total:>6.2f}x{sum(spinning.values()):>10.1f}"
          f"{sum(spinning.values()) / total:>6.2f}x")
    assert set(loaded) == set(alone)
