"""torch computes with the CPUs this process may use (affinity, cgroup quota), or the
PRIVAUDIT_THREADS override; never one thread per machine core on a capped share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from privaudit.audit.threads import available_cpus, configure_threads, thread_count
from privaudit.core.errors import ConfigError


def _affinity() -> int:
    return len(os.sched_getaffinity(0))


def test_a_cgroup_v2_quota_of_one_cpu_caps_the_threads_at_one(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert available_cpus(cgroup_root=tmp_path) == 1


def test_a_cgroup_v1_quota_of_half_a_cpu_rounds_up_to_one_thread(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(cgroup_root=tmp_path) == 1


def test_an_unlimited_or_missing_quota_leaves_the_affinity_mask(tmp_path: Path) -> None:
    assert available_cpus(cgroup_root=tmp_path) == _affinity()
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(cgroup_root=tmp_path) == _affinity()
    (tmp_path / "cpu.max").write_text("6400000 100000\n")  # 64 CPUs granted: affinity caps
    assert available_cpus(cgroup_root=tmp_path) == _affinity()


def test_privaudit_threads_overrides_the_cpus_found() -> None:
    assert thread_count({"PRIVAUDIT_THREADS": "3"}) == 3
    assert thread_count({}) == available_cpus()


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_a_bad_privaudit_threads_is_an_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"PRIVAUDIT_THREADS: must be a positive integer"):
        thread_count({"PRIVAUDIT_THREADS": raw})


def test_configure_threads_sets_torchs_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv("PRIVAUDIT_THREADS", "2")
    try:
        assert configure_threads() == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _wait_policy_after_import(env: dict[str, str]) -> str:
    code = "import os, privaudit; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def test_importing_privaudit_leaves_the_users_openmp_wait_policy_alone() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _wait_policy_after_import(env) == "None"
    assert _wait_policy_after_import(env | {"OMP_WAIT_POLICY": "PASSIVE"}) == "PASSIVE"
