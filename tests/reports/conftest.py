"""Fixtures: a sealed run directory built from a typed sample report (nothing is trained)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reports.samples import write_sample_run


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """``make_run(name="run", formats=..., sign_key=None, report=None)`` → the run directory."""

    def make(name: str = "run", **kwargs: object) -> Path:
        return write_sample_run(tmp_path / name, **kwargs)  # type: ignore[arg-type]

    return make
