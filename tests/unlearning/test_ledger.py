"""The DP bound stated next to the evidence, and the erase stage on --resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.core.errors import RunDirectoryError
from privaudit.core.progress import PlainReporter
from privaudit.unlearning.ledger import dp_bound
from privaudit.unlearning.requests import ErasureRequest, ResolvedRequest
from tests.conftest import TINY, merge
from tests.unlearning.conftest import data_of


def _resolved(n: int, clients: tuple[str, ...] = ("client-0",)) -> ResolvedRequest:
    return ResolvedRequest(
        request=ErasureRequest(id="r", kind="subject", ids=["s1"]),
        record_ids=tuple(f"s1-r{i}" for i in range(n)), clients=clients, whole_clients=())


def test_dp_bound_without_accountants_is_group_privacy_and_says_none_when_delta_reaches_1(
) -> None:
    bound = dp_bound((1.0, 1e-5), _resolved(3), client_level=False)
    assert bound is not None and bound.method == "group_privacy"
    assert bound.epsilon == pytest.approx(3.0)
    assert bound.delta == pytest.approx(3 * math.exp(2.0) * 1e-5)
    assert "3 record(s)" in bound.statement
    client = dp_bound((2.0, 1e-6), _resolved(3), client_level=True)
    assert client is not None and client.epsilon == pytest.approx(2.0)  # one client
    assert dp_bound(None, _resolved(3), client_level=False) is None
    with pytest.warns(UserWarning, match="vacuous"):
        weak = dp_bound((8.0, 1e-5), _resolved(3), client_level=False)
    assert weak is not None and weak.delta == 1.0
    assert "no guarantee" in weak.statement and "-indistinguishable" not in weak.statement


def test_dp_bound_accounts_the_erased_records_directly_at_the_runs_delta() -> None:
    """The demo's history (σ 1.2695, q 1/3, 24 steps): 3 records together are (32.1, 1e-5),
    where group privacy gives δ ≥ 1 — no guarantee at all."""
    from privaudit.mechanisms.dp.accounting import ClientAccountant
    from privaudit.mechanisms.federated.privacy import PrivacyOutcome

    acc = ClientAccountant()
    acc.step(noise_multiplier=1.2695, sample_rate=1 / 3, num_steps=24, round_index=0)
    privacy = PrivacyOutcome(dp_mode="record", delta=1e-5, accountants={"client-0": acc})
    bound = dp_bound((7.9, 1e-5), _resolved(3), client_level=False, privacy=privacy,
                     holders={"client-0": 3, "client-1": 0})
    assert bound is not None and bound.method == "direct"
    assert bound.delta == 1e-5 and bound.epsilon == pytest.approx(32.1, abs=0.1)
    assert "(32.1, 1e-05)-indistinguishable" in bound.statement


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
