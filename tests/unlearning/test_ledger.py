"""The DP bound stated next to the evidence, and the erase stage on --resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from privaudit.audit.config import config_from_dict
from privaudit.audit.errors import RunDirectoryError
from privaudit.audit.pipeline import run_audit
from privaudit.audit.progress import PlainReporter
from privaudit.unlearning.ledger import dp_bound
from privaudit.unlearning.requests import ErasureRequest, ResolvedRequest
from tests.conftest import TINY, merge
from tests.unlearning.conftest import data_of


def _resolved(n: int, clients: tuple[str, ...] = ("client-0",)) -> ResolvedRequest:
    return ResolvedRequest(
        request=ErasureRequest(id="r", kind="subject", ids=["s1"]),
        record_ids=tuple(f"s1-r{i}" for i in range(n)), clients=clients, whole_clients=())


def test_dp_bound_is_group_privacy_over_the_erased_records() -> None:
    bound = dp_bound((1.0, 1e-5), _resolved(3), client_level=False)
    assert bound is not None
    assert bound.epsilon == pytest.approx(3.0)
    assert bound.delta == pytest.approx(3 * math.exp(2.0) * 1e-5)
    assert "3 record(s)" in bound.statement
    client = dp_bound((2.0, 1e-6), _resolved(3), client_level=True)
    assert client is not None and client.epsilon == pytest.approx(2.0)  # one client
    assert dp_bound(None, _resolved(3), client_level=False) is None
    with pytest.warns(UserWarning, match="vacuous"):
        weak = dp_bound((8.0, 1e-5), _resolved(3), client_level=False)
    assert weak is not None and weak.delta == 1.0 and "vacuous" in weak.statement


def test_resumed_run_reuses_the_erase_stage(tmp_path: Path) -> None:
    cfg0 = config_from_dict(TINY)
    subject = data_of(cfg0).clients["client-0"][0].subject_id
    cfg = config_from_dict(merge(TINY, {"unlearning": {
        "requests": [{"id": "r1", "kind": "subject", "ids": [subject]}],
        "methods": ["gradient_ascent"]}}))
    quiet = PlainReporter(quiet=True)
    first = run_audit(cfg, tmp_path / "run", reporter=quiet)
    again = run_audit(cfg, tmp_path / "run", reporter=quiet, resume=True)
    assert "erase" in first.seconds and "erase" not in again.seconds
    assert [r.model_dump() for r in again.report.unlearning] == [
        r.model_dump() for r in first.report.unlearning]
    # not resumed: never a second run on top of the first one's files (issue #17)
    with pytest.raises(RunDirectoryError, match="pass --resume to continue it"):
        run_audit(cfg, tmp_path / "run", reporter=quiet)
