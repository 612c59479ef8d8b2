"""Crash and resume, determinism: ``privaudit run`` as a subprocess on a tiny config, killed
with SIGKILL during a training round, during reference-model training and during report
writing (each point found by polling the run directory for the files its stage writes), then
``--resume`` completes without recomputing what was done, and the report's content digest
equals that of an uninterrupted run; two uninterrupted runs give the same digest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from privaudit.core.provenance import report_file_digest
from tests.conftest import TINY, merge

# 3 rounds of a few local epochs (each round lasts long enough to be killed in); 4 reference
# models with a shorter recipe for LiRA; HTML + Markdown (the HTML's figures give the report
# stage a window of ~0.5 s between report.json and the manifest).
CRASH = merge(TINY, {
    "federation": {"rounds": 3, "local_epochs": 4},
    "attacks": {
        "battery": [{"name": "loss"}, {"name": "lira"}],
        "references": {"count": 4,
                       "overrides": {"federation": {"rounds": 2, "local_epochs": 2}}},
    },
})
LIMIT = 300.0  # seconds any one privaudit process may take (the machine may be shared)


@dataclass
class Launch:
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _launch(config: Path, out: Path, *, resume: bool, hash_seed: str) -> Launch:
    log = out.parent / f"{out.name}-{time.monotonic_ns()}.log"
    cmd = [sys.executable, "-m", "privaudit", "run", str(config), "--out", str(out)]
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd + (["--resume"] if resume else []), stdout=fh,
                                stderr=subprocess.STDOUT, env=env)
    return Launch(proc, log)


def _finish(launch: Launch) -> str:
    launch.proc.wait(timeout=LIMIT)
    assert launch.proc.returncode == 0, launch.output()[-3000:]
    return launch.output()


def _kill_when(launch: Launch, ready: Callable[[], bool], what: str) -> str:
    """SIGKILL the process as soon as ``ready()``; fail if it ended first."""
    deadline = time.monotonic() + LIMIT
    while not ready():
        if launch.proc.poll() is not None:
            pytest.fail(f"privaudit ended (rc {launch.proc.returncode}) before {what}:\n"
                        + launch.output()[-3000:])
        if time.monotonic() > deadline:
            launch.proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)
    launch.proc.send_signal(signal.SIGKILL)
    launch.proc.wait(timeout=30)
    assert launch.proc.returncode == -signal.SIGKILL, f"not killed {what}"
    return launch.output()


def _progress_round(out: Path) -> int:
    try:
        return int(json.loads((out / "models/global/progress.json").read_text())["round"])
    except (OSError, ValueError, KeyError):
        return 0


def _mtimes(out: Path, pattern: str) -> dict[str, int]:
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns
            for p in sorted(out.glob(pattern)) if p.is_file()}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("crash") / "crash.yaml"
    path.write_text(yaml.safe_dump(CRASH), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def baseline(config: Path) -> Path:
    """An uninterrupted run: the digest every other run must reproduce."""
    out = config.parent / "baseline"
    _finish(_launch(config, out, resume=False, hash_seed="0"))
    return out / "report.json"


def test_two_uninterrupted_runs_give_the_same_report_digest(
    config: Path, baseline: Path
) -> None:
    out = config.parent / "again"
    _finish(_launch(config, out, resume=False, hash_seed="1"))  # another str-hash order too
    first = json.loads(baseline.read_text())
    second = json.loads((out / "report.json").read_text())
    assert first["report_id"] != second["report_id"]  # two reports, not one copied
    assert report_file_digest(out / "report.json") == report_file_digest(baseline)


def test_killed_at_three_points_then_resumed_reproduces_the_uninterrupted_report(
    config: Path, baseline: Path
) -> None:
    out = config.parent / "killed"

    # 1. during a training round: a round is checkpointed, training is not finished
    first = _launch(config, out, resume=False, hash_seed="2")
    _kill_when(first, lambda: _progress_round(out) >= 1, "a checkpointed round")
    assert not (out / "stages/train.json").exists(), "killed after training, not during it"
    done = _progress_round(out)
    assert 1 <= done < 3
    rounds_before = _mtimes(out, "models/global/round-00[1-9]/**/*")
    rounds_before = {p: t for p, t in rounds_before.items()
                     if int(p.split("round-")[1][:3]) <= done}

    # 2. during reference-model training: the first reference is stored, the next is not
    second = _launch(config, out, resume=True, hash_seed="3")
    log = _kill_when(second, lambda: any(out.glob("models/references/*/ref-000/meta.json")),
                     "the first reference model")
    assert f"[train] resumed after round {done} of 3" in log
    assert (out / "stages/train.json").is_file() and not (out / "report.json").exists()
    assert not any(out.glob("models/references/*/ref-001/meta.json"))
    assert {p: t for p, t in _mtimes(out, "models/global/round-00[1-9]/**/*").items()
            if p in rounds_before} == rounds_before, "completed rounds were recomputed"
    train_manifest = (out / "stages/train.json").stat().st_mtime_ns
    reference_0 = _mtimes(out, "models/references/*/ref-000/*")

    # 3. during report writing: report.json is written, the run is not sealed yet
    third = _launch(config, out, resume=True, hash_seed="4")
    log = _kill_when(third, lambda: (out / "report.json").is_file(), "report.json")
    assert not (out / "manifest.json").exists(), "killed after sealing, not while writing"
    assert "[train] resumed: checkpoints and manifest unchanged" in log
    assert "reference 0: reused" in log and "reference 1: reused" not in log
    assert (out / "stages/train.json").stat().st_mtime_ns == train_manifest
    assert _mtimes(out, "models/references/*/ref-000/*") == reference_0

    # 4. the last resume completes: nothing is retrained, the content is the same
    log = _finish(_launch(config, out, resume=True, hash_seed="5"))
    assert "[train] resumed: checkpoints and manifest unchanged" in log
    assert all(f"reference {j}: reused" in log for j in range(4))
    assert (out / "stages/train.json").stat().st_mtime_ns == train_manifest
    assert (out / "manifest.json").is_file() and (out / "report.html").is_file()
    assert not list(out.rglob(".*.tmp-*")), "temporaries of killed processes were left"
    report = json.loads((out / "report.json").read_text())
    assert report["references"]["reused"] == 4
    assert report_file_digest(out / "report.json") == report_file_digest(baseline)
