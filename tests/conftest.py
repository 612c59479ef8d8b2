"""Shared fixtures: tiny configs that run end to end in seconds on 2 CPU cores."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# pytest-xdist's workers inherit COLUMNS=80, which rich's consoles would fix at import; without
# it they read COLUMNS when they print, so tests that widen the console (run_main) can
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)
# one torch thread per test process (2 cores shared with other runs); run_audit sizes torch's
# pool from PRIVAUDIT_THREADS (privaudit/audit/threads.py)
os.environ.setdefault("PRIVAUDIT_THREADS", "1")
torch.set_num_threads(1)

from hypothesis import settings  # noqa: E402

from privaudit.core.params import merge_patch  # noqa: E402  (after HF_HUB_OFFLINE is set)

# CI runs the property tests on a fixed sequence of examples, so a red run is reproducible;
# PRIVAUDIT_HYPOTHESIS_PROFILE=explore draws fresh examples on every run.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("PRIVAUDIT_HYPOTHESIS_PROFILE", "ci"))

TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 3,
    "data": {
        "synthetic": {"subjects": 90, "min_records": 2, "max_records": 3},
        "test_records": 40,
        "audit": {"members": 40, "nonmembers": 40},
    },
    "model": {
        "task": "classification",
        "base": "tiny",
        "tiny": {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64},
        "max_length": 48,
        "lora": {"rank": 4, "alpha": 8},
    },
    "federation": {"clients": 2, "rounds": 2, "local_epochs": 1, "batch_size": 16},
    "attacks": {"battery": [{"name": "loss"}], "bootstrap": 50},
    "report": {"formats": ["html", "md"]},  # the PDF (Chromium) is tested once, in reports/
}

# The memorising fixture. Its records (tests/data/memorise.jsonl, committed) carry, for half of
# them, a label that nothing in the wording predicts, so only memorisation fits those; a
# model wide enough to memorise its ~70 records per client (hidden 128, LoRA rank 16) trained
# by many short rounds (each client's local steps stay small, so averaging two clients'
# adapters keeps what each memorised; 2 rounds of 30 local epochs averaged two unrelated LoRA
# solutions into chance accuracy, and whether round 2 recovered was one seed's luck).
# Measured: LOSS AUC 0.78-0.87 on run seeds 0-4 (0.51-0.70 for the old 2 x 30-epoch fixture).
MEMORISE = Path(__file__).parent / "data" / "memorise.jsonl"
OVERFIT_PATCH: dict[str, Any] = {
    "data": {"source": "file", "path": str(MEMORISE)},
    "federation": {"rounds": 20, "local_epochs": 2, "learning_rate": 0.004, "batch_size": 8},
    "model": {"tiny": {"layers": 1, "hidden": 128, "heads": 4, "intermediate": 128},
              "lora": {"rank": 16, "alpha": 32}},
}
#: the LOSS AUC below which the memorising fixture has failed at its one job
MEMORISES_AUC = 0.7


def check_memorises(auc: float, *, what: str = "the memorising fixture") -> None:
    """Fail (not skip) with a clear message when a run meant to memorise did not: every test
    built on it would otherwise prove nothing, or fail for the wrong reason."""
    if auc < MEMORISES_AUC:
        pytest.fail(
            f"{what} did not memorise its training records: LOSS AUC {auc:.3f} < "
            f"{MEMORISES_AUC} (measured 0.78-0.87 on seeds 0-4). Give it more capacity or "
            "rounds in tests/conftest.py OVERFIT_PATCH before trusting the tests built on it.",
            pytrace=False,
        )


@pytest.fixture
def tiny_config_dict() -> dict[str, Any]:
    """A tiny classification run: 1-layer BERT (hidden 32), 2 clients, 2 rounds."""
    return copy.deepcopy(TINY)


@pytest.fixture
def overfit_config_dict() -> dict[str, Any]:
    """The tiny run trained to memorise its records (see ``OVERFIT_PATCH``)."""
    return merge_patch(TINY, OVERFIT_PATCH)


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return merge_patch(base, patch)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


# The slowest test files, started first: `make test` hands whole files to its 2 workers in
# collection order (pytest-xdist --dist loadfile), and a slow file collected last keeps one
# worker busy alone at the end (measured with --durations: each of these spends 45 s or more,
# most of it building a memorising run).
SLOW_FILES = (
    "tests/unlearning/test_robustness.py",
    "tests/attacks/test_battery.py",
    "tests/unlearning/test_erase_stage.py",
    "tests/unlearning/test_erase_cli.py",
    "tests/unlearning/test_ulira.py",
    "tests/attacks/test_dp_audit_pipeline.py",
    "tests/e2e/test_own_data_example.py",
    "tests/audit/test_reliability_crash_resume.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return SLOW_FILES.index(path) if path in SLOW_FILES else len(SLOW_FILES)

    items.sort(key=rank)  # stable: the order within a file and among the others is kept


# Files that share a costly session fixture run as one unit on one worker, so the fixture is
# built once: erased_run (a memorising run served by every method, ~60 s) and sisa_run.
SHARED_FIXTURE_FILES = {
    "tests/unlearning/test_erase_stage.py": "erased_run",
    "tests/unlearning/test_erase_cli.py": "erased_run",
    "tests/attacks/test_attack_every_model.py": "erased_run",
    "tests/test_common.py": "sisa_run",
    "tests/unlearning/test_sisa.py": "sisa_run",
    "tests/unlearning/test_unlearner_conformance.py": "sisa_run",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's --dist loadfile, with the files above grouped by the fixture they
    share (a unit is scheduled where its first file is collected)."""
    from xdist.scheduler import LoadFileScheduling

    if config.getoption("dist") != "loadfile":
        return None

    class SharedFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return SHARED_FIXTURE_FILES.get(path, path)

    return SharedFixtureScheduling(config, log)
