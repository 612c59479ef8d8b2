"""How many CPU threads torch computes with: the CPUs this process may actually use.

``os.cpu_count()`` counts the machine's cores, not the process's share of them. A process
pinned to fewer cores (``os.sched_getaffinity``) or capped by a cgroup CPU quota (containers,
CI runners: ``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us`` in v1) that starts one intra-op
thread per machine core oversubscribes its share, and torch's OpenMP threads then spin-wait
for each other while the scheduler runs someone else: stages slowed 10-13x beside one other
CPU-bound job here, not the 2x that halving the CPU explains. :func:`configure_threads` sizes
torch's pool to the CPUs available; ``PRIVAUDIT_THREADS`` overrides it. On a machine shared
with other CPU-bound jobs, ``OMP_WAIT_POLICY=PASSIVE`` (set before torch loads) makes waiting
threads sleep instead of spinning: beside one busy process it cut the slowdown from 2.79x to
1.15x (benchmarks/bench_under_load.py), but alone it costs 1.2-1.5x, so privaudit leaves it
to the user.

>>> parse_cgroup_v2_cpu_max("max 100000") is None
True
>>> parse_cgroup_v2_cpu_max("150000 100000")
2
>>> parse_cgroup_v2_cpu_max("50000 100000")
1
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from privaudit.core.errors import ConfigError

ENV = "PRIVAUDIT_THREADS"
_CGROUP = Path("/sys/fs/cgroup")


def parse_cgroup_v2_cpu_max(text: str) -> int | None:
    """CPUs granted by a cgroup v2 ``cpu.max`` line (``QUOTA PERIOD``), rounded up; None if
    unlimited."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    quota, period = int(parts[0]), int(parts[1])
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def _cgroup_cpus(root: Path = _CGROUP) -> int | None:
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            return parse_cgroup_v2_cpu_max(v2.read_text())
        quota = root / "cpu" / "cpu.cfs_quota_us"
        period = root / "cpu" / "cpu.cfs_period_us"
        if quota.is_file() and period.is_file():
            q, p = int(quota.read_text()), int(period.read_text())
            return max(1, math.ceil(q / p)) if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None
    return None


def available_cpus(*, cgroup_root: Path = _CGROUP) -> int:
    """The CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_cpus(cgroup_root)
    return max(1, min(n, quota) if quota else n)


def thread_count(env: dict[str, str] | None = None) -> int:
    """``PRIVAUDIT_THREADS`` when set (a positive integer), else :func:`available_cpus`."""
    raw = (os.environ if env is None else env).get(ENV, "").strip()
    if not raw:
        return available_cpus()
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{ENV}: must be a positive integer (the torch threads); got {raw!r}")
    return n


def configure_threads() -> int:
    """Size torch's intra-op pool by :func:`thread_count`; returns the count."""
    import torch

    n = thread_count()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
