"""Shared fixtures: tiny configs that run end to end in seconds on 2 CPU cores."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)

from hypothesis import settings  # noqa: E402

from privaudit.audit.config import merge_patch  # noqa: E402  (after HF_HUB_OFFLINE is set)

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

# Many local epochs at a high learning rate on few records: the model memorises its
# training set, so membership inference must succeed against it.
OVERFIT_PATCH: dict[str, Any] = {
    "data": {"synthetic": {"label_noise": 0.5}},
    "federation": {"rounds": 2, "local_epochs": 30, "learning_rate": 0.03, "batch_size": 8},
    "model": {"lora": {"rank": 16, "alpha": 32}},
}


@pytest.fixture
def tiny_config_dict() -> dict[str, Any]:
    """A tiny classification run: 1-layer BERT (hidden 32), 2 clients, 2 rounds."""
    return copy.deepcopy(TINY)


@pytest.fixture
def overfit_config_dict() -> dict[str, Any]:
    """The tiny run trained to memorise its records (label noise 0.5): LOSS AUC ≈ 0.78."""
    return merge_patch(TINY, OVERFIT_PATCH)


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return merge_patch(base, patch)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"
