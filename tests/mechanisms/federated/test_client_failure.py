"""Client failure: a client that raises or overruns federation.client_timeout is dropped from
its round; the round goes on with at least min_clients updates; DP accountants count only the
steps a dropped client really took; the report lists the dropouts per round."""

from __future__ import annotations

import dataclasses
import functools
import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from privaudit.audit.config import config_from_dict
from privaudit.core.errors import EvidenceIncomplete, InternalError, PrivacyBudgetError
from privaudit.mechanisms.federated.client import ClientFn, ClientState, ClientUpdate
from privaudit.mechanisms.federated.engine import RoundRecord
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.tasks import Batch, EncodedSet
from tests.conftest import TINY, merge
from tests.mechanisms.federated.conftest import Federation

DELTA = 1e-3


def failing_in(client: str, round_index: int, *, stall: float = 0.0,
               error: Exception | None = None) -> Callable[[ClientFn], ClientFn]:
    """A test-only wrapper of the client update: ``client`` raises ``error`` (default a
    RuntimeError) in ``round_index``, or, with ``stall``, sleeps that long after training."""

    def wrap(inner: ClientFn) -> ClientFn:
        def client_fn(model: Any, global_state: AdapterState, data: EncodedSet, cfg: Any,
                      state: ClientState, *, task: str, round_index: int, seed: int
                      ) -> tuple[ClientUpdate, ClientState]:
            hit = state.client_id == client and round_index == wanted
            if hit and not stall:
                raise error or RuntimeError(f"{client} lost power")
            out = inner(model, global_state, data, cfg, state, task=task,
                        round_index=round_index, seed=seed)
            if hit:
                time.sleep(stall)
            return out

        return client_fn  # type: ignore[return-value]

    wanted = round_index
    return wrap


@dataclasses.dataclass(frozen=True)
class _BreaksAfter(EncodedSet):
    """Client data whose ``batch`` raises after ``ok`` batches (a crash mid-round)."""

    ok: int = 0
    calls: list[int] = dataclasses.field(default_factory=lambda: [0])

    def batch(self, indices: Sequence[int]) -> Batch:
        self.calls[0] += 1
        if self.calls[0] > self.ok:
            raise RuntimeError(f"disk error after {self.ok} batches")
        return super().batch(indices)


def crashing_mid_round(client: str, round_index: int, ok: int) -> Callable[[ClientFn], ClientFn]:
    """``client`` crashes in ``round_index`` after ``ok`` of its local batches."""

    def wrap(inner: ClientFn) -> ClientFn:
        def client_fn(model: Any, global_state: AdapterState, data: EncodedSet, cfg: Any,
                      state: ClientState, *, task: str, round_index: int, seed: int
                      ) -> tuple[ClientUpdate, ClientState]:
            if state.client_id == client and round_index == wanted:
                fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(EncodedSet)}
                data = _BreaksAfter(**fields, ok=ok)
            return inner(model, global_state, data, cfg, state, task=task,
                         round_index=round_index, seed=seed)

        return client_fn  # type: ignore[return-value]

    wanted = round_index
    return wrap


def _train(fed: Federation, wrap: Callable[[ClientFn], ClientFn] | None,
           seen: list[tuple[AdapterState, list[ClientUpdate], RoundRecord]] | None = None) -> Any:
    def on_round(r: int, state: AdapterState, updates: list[ClientUpdate],
                 rec: RoundRecord) -> None:
        if seen is not None:
            seen.append(({k: v.clone() for k, v in state.items()}, list(updates), rec))

    return train_federation(fed.cfg.recipe, fed.bundle, fed.clients, fed.test,
                            initial_state=fed.initial_state(), seed=fed.cfg.seed,
                            wrap_client=wrap, on_round=on_round)


def test_a_client_that_raises_is_dropped_and_the_round_averages_the_others(
    federation: Callable[..., Federation],
) -> None:
    fed = federation({})
    seen: list[tuple[AdapterState, list[ClientUpdate], RoundRecord]] = []
    result = _train(fed, failing_in("client-1", 2), seen)

    first, second = result.rounds
    assert first.clients == ["client-0", "client-1"] and first.dropouts == []
    assert second.clients == ["client-0"]
    [dropout] = second.dropouts
    assert (dropout.client_id, dropout.round, dropout.reason) == ("client-1", 2, "raised")
    assert "RuntimeError: client-1 lost power" in dropout.detail
    # FedAvg over the one update left: the new global adapter is the old one plus its delta
    state_1, _, _ = seen[0]
    state_2, updates_2, _ = seen[1]
    assert [u.client_id for u in updates_2] == ["client-0"]
    for name, value in state_2.items():
        expected = (state_1[name].double() + updates_2[0].delta[name].double()).to(value.dtype)
        assert torch.allclose(value, expected, atol=1e-6)


def test_a_round_below_min_clients_stops_training_naming_the_dropout(
    federation: Callable[..., Federation],
) -> None:
    fed = federation({"federation": {"min_clients": 2}})
    with pytest.raises(EvidenceIncomplete) as info:
        _train(fed, failing_in("client-0", 1))
    message = str(info.value)
    assert "round 1: 1 of 2 client(s) delivered an update" in message
    assert "federation.min_clients is 2" in message
    assert "client-0 (raised RuntimeError: client-0 lost power)" in message
    assert info.value.exit_code == 4


def test_a_client_over_the_timeout_is_dropped_after_it_returns(
    federation: Callable[..., Federation],
) -> None:
    fed = federation({"federation": {"client_timeout": 0.5}})
    result = _train(fed, failing_in("client-0", 1, stall=0.8))
    first, second = result.rounds
    assert first.clients == ["client-1"]
    [dropout] = first.dropouts
    assert dropout.reason == "timeout" and dropout.client_id == "client-0"
    assert dropout.seconds > 0.5 and "federation.client_timeout 0.5 s" in dropout.detail
    assert second.clients == ["client-0", "client-1"] and second.dropouts == []


def test_a_settings_error_inside_a_client_is_not_a_dropout(
    federation: Callable[..., Federation],
) -> None:
    fed = federation({})
    error = PrivacyBudgetError("privacy.dp.noise_multiplier: must be > 0 (got 0)")
    with pytest.raises(PrivacyBudgetError, match="noise_multiplier"):
        _train(fed, failing_in("client-1", 1, error=error))


def test_record_dp_accountant_counts_only_the_steps_a_crashed_client_took(
    federation: Callable[..., Federation],
) -> None:
    fed = federation({"privacy": {"dp": {"mode": "record", "delta": DELTA,
                                         "noise_multiplier": 1.0}}})
    crashed = _train(fed, crashing_mid_round("client-1", 2, ok=2))
    full = _train(federation({"privacy": {"dp": {"mode": "record", "delta": DELTA,
                                                 "noise_multiplier": 1.0}}}), None)

    [dropout] = crashed.rounds[1].dropouts
    assert dropout.reason == "raised" and "disk error after 2 batches" in dropout.detail
    assert dropout.steps == 2  # two noisy steps were released before the crash
    round_1_steps = int(crashed.rounds[0].client_metrics["client-1"]["steps"])
    accountant = crashed.privacy.accountants["client-1"]
    assert accountant.total_steps == round_1_steps + 2
    # the same client without the crash took all of its round-2 steps: more than 2
    assert full.privacy.accountants["client-1"].total_steps > accountant.total_steps
    # client-0 is untouched by client-1's crash
    assert (crashed.privacy.accountants["client-0"].total_steps
            == full.privacy.accountants["client-0"].total_steps)


def test_record_dp_accountant_of_a_timed_out_client_keeps_all_its_steps(
    federation: Callable[..., Federation],
) -> None:
    patch = {"privacy": {"dp": {"mode": "record", "delta": DELTA, "noise_multiplier": 1.0}},
             "federation": {"client_timeout": 0.5}}
    result = _train(federation(patch), failing_in("client-1", 1, stall=0.8))
    [dropout] = result.rounds[0].dropouts
    assert dropout.reason == "timeout" and dropout.steps is not None and dropout.steps > 0
    round_2_steps = int(result.rounds[1].client_metrics["client-1"]["steps"])
    assert result.privacy.accountants["client-1"].total_steps == dropout.steps + round_2_steps


def test_quorum_is_the_stricter_of_federation_and_secure_aggregation() -> None:
    base = merge(TINY, {"federation": {"clients": 4, "min_clients": 2}})
    assert config_from_dict(base).recipe.quorum() == (2, "federation.min_clients")
    secure = merge(base, {"secure_aggregation": {"enabled": True, "min_clients": 3}})
    assert config_from_dict(secure).recipe.quorum() == (3, "secure_aggregation.min_clients")
    stricter = merge(secure, {"federation": {"min_clients": 4}})
    assert config_from_dict(stricter).recipe.quorum() == (4, "federation.min_clients")


def test_min_clients_above_the_federation_is_a_config_error() -> None:
    from privaudit.core.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        config_from_dict(merge(TINY, {"federation": {"min_clients": 3}}))
    assert "min_clients must be <= clients (= 2)" in str(info.value.problems)


def test_dropouts_are_listed_per_round_in_the_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from privaudit.audit import pipeline
    from privaudit.audit.stages import train as train_stage
    from privaudit.core.progress import PlainReporter

    monkeypatch.setattr(train_stage, "train_federation", functools.partial(
        train_federation, wrap_client=failing_in("client-1", 2)))
    log = io.StringIO()
    outcome = pipeline.run_audit(config_from_dict(TINY), tmp_path / "run",
                                 reporter=PlainReporter(stream=log))
    assert "round 2: accuracy" in log.getvalue()
    assert "dropped: client-1 (raised RuntimeError: client-1 lost power)" in log.getvalue()
    per_round = outcome.report.utility.per_round
    assert per_round[0].dropouts == []
    [dropout] = per_round[1].dropouts
    assert dropout.client_id == "client-1" and dropout.reason == "raised"
    assert per_round[0].participants == ["client-0", "client-1"]
    assert per_round[1].participants == ["client-0"]  # the dropped client did not train
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "Round 2: dropped <code>client-1</code> (raised RuntimeError: client-1 lost power)" \
        in html


def test_secure_aggregation_sums_the_clients_left_after_a_dropout(
    federation: Callable[..., Federation],
) -> None:
    fed = federation({"secure_aggregation": {"enabled": True, "min_clients": 3},
                      "federation": {"clients": 4, "rounds": 1}})
    result = _train(fed, failing_in("client-2", 1))
    [record] = result.rounds
    assert [d.client_id for d in record.dropouts] == ["client-2"]
    assert record.aggregation.secure_aggregation.accepted == ["client-0", "client-1", "client-3"]


def test_secure_aggregation_quorum_stops_the_round_naming_its_field(
    federation: Callable[..., Federation],
) -> None:
    fed = federation({"secure_aggregation": {"enabled": True},
                      "federation": {"clients": 3, "rounds": 1}})
    with pytest.raises(EvidenceIncomplete,
                       match=r"2 of 3 client\(s\) delivered an update, "
                             r"secure_aggregation\.min_clients is 3"):
        _train(fed, failing_in("client-1", 1))


def test_a_broken_invariant_inside_a_client_is_not_a_dropout(
    federation: Callable[..., Federation],
) -> None:
    fed = federation({})
    error = InternalError("DP-SGD took 3 noisy steps, the loop 4")
    with pytest.raises(InternalError, match="noisy steps"):
        _train(fed, failing_in("client-0", 2, error=error))
