"""The Flower engine without Ray: records, the split of secure aggregation, and the whole
ServerApp/ClientApp message flow on a loopback Grid (every message goes through the real
ClientApp and the real server loop; only the transport is in-process)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tenseal as ts
import torch

pytest.importorskip("flwr")

from flwr.app import Context, Message, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

from privaudit.core.errors import ConfigError, SecureAggregationError
from privaudit.mechanisms.dp.accounting import ClientAccountant
from privaudit.mechanisms.federated import get_engine
from privaudit.mechanisms.federated.client import ClientState
from privaudit.mechanisms.federated.flower import codec, engine, runinfo
from privaudit.mechanisms.federated.flower.client_app import (
    STATE_KEY,
    make_client_app,
)
from privaudit.mechanisms.federated.flower.masked import (
    RemoteMaskedAggregation,
    find_masked_layer,
)
from privaudit.mechanisms.federated.flower.secure import (
    RemoteSecureAggregation,
    crypto_of,
    split_secure_layer,
)
from privaudit.mechanisms.federated.flower.server_app import Served, serve
from privaudit.mechanisms.federated.flower.workload import ClientSide, ServerSide
from privaudit.mechanisms.federated.secure import SecureAggregation
from privaudit.mechanisms.federated.secure_masked import PairwiseMasking
from privaudit.mechanisms.federated.strategy import FedAvg
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.secagg import (
    ExpectedRound,
    KeyHolder,
    SecureAggregationConfig,
    SecureAggregator,
    encrypt_update,
)
from privaudit.mechanisms.secagg.context import load_context
from privaudit.mechanisms.secagg.party import MaskedUpdate
from tests.mechanisms.federated.conftest import Federation

THREE = {"federation": {"clients": 3, "rounds": 2}}
RECORD_DP = {"privacy": {"dp": {"mode": "record", "noise_multiplier": 1.0, "delta": 1e-5}}}
HE = {"secure_aggregation": {"enabled": True, "masking": "none"}}  # CKKS; min_clients 3


def client_dp(rate: float) -> dict[str, Any]:
    return {"privacy": {"dp": {"mode": "client", "noise_multiplier": 0.5, "delta": 1e-3,
                               "clip_norm": 0.5, "client_sample_rate": rate}}}


class LoopbackGrid(Grid):
    """A Grid whose nodes are ClientApp calls in this process, each with its own Context
    kept across rounds (as a SuperNode keeps it). Records every message it carried."""

    def __init__(self, app: Any, n_nodes: int) -> None:
        self.app = app
        self.contexts = {
            1000 + i: Context(run_id=1, node_id=1000 + i, node_config={"partition-id": i},
                              state=RecordDict(), run_config={})
            for i in range(n_nodes)
        }
        self.sent: list[Message] = []
        self.received: list[Message] = []

    def set_run(self, run_id: Any) -> None:  # pragma: no cover - unused
        pass

    @property
    def run(self) -> Any:  # pragma: no cover - unused
        return None

    def create_message(self, *args: Any, **kwargs: Any) -> Message:  # pragma: no cover
        raise NotImplementedError

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:  # pragma: no cover
        raise NotImplementedError

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:  # pragma: no cover
        raise NotImplementedError

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None
                         ) -> Iterable[Message]:
        replies = []
        for m in messages:
            self.sent.append(m)
            replies.append(self.app(m, self.contexts[m.metadata.dst_node_id]))
        self.received.extend(replies)
        return replies


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[LoopbackGrid]]:
    """Replace Flower's simulation runtime by the loopback Grid; yields the grids used."""
    grids: list[LoopbackGrid] = []
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1

    def runtime(clients: ClientSide, server: ServerSide, on_round: Any, _: Any) -> Served:
        grid = LoopbackGrid(make_client_app(lambda ctx: clients), len(clients.order))
        grids.append(grid)
        return serve(grid, server, on_round)

    monkeypatch.setattr(engine, "simulate", runtime)
    monkeypatch.setattr(engine, "require_flower", lambda: "test")
    yield grids


def _train(fed: Federation, engine_name: str, **kw: Any) -> Any:
    return train_federation(fed.cfg.recipe, fed.bundle, fed.clients, fed.test,
                            initial_state=kw.pop("initial"), seed=fed.cfg.seed,
                            engine=engine_name, **kw)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


# -- records ------------------------------------------------------------------------------


def test_adapter_travels_bit_exactly_in_an_array_record() -> None:
    state = {"b.weight": torch.randn(4, 3), "a.bias": torch.randn(5, dtype=torch.float64)}
    back = codec.record_to_state(codec.state_to_record(state))
    assert list(back) == list(state)
    assert all(torch.equal(back[k], state[k]) and back[k].dtype == state[k].dtype for k in state)


def test_client_state_json_continues_the_same_accountant() -> None:
    acc = ClientAccountant("rdp")
    acc.step(noise_multiplier=1.1, sample_rate=0.2, num_steps=7, round_index=0)
    eps = acc.epsilon(1e-5)
    state = ClientState(client_id="c", rounds_taken=1, steps_taken=7, accountant=acc)
    for trace in (True, False):  # the server's copy has no cached ε: it recomputes it
        back = codec.client_state_from_json(codec.client_state_to_json(state, with_trace=trace))
        assert back.accountant is not None and back.accountant.epsilon(1e-5) == eps
        assert (back.rounds_taken, back.steps_taken) == (1, 7)
        back.accountant.step(noise_multiplier=1.1, sample_rate=0.2, num_steps=7, round_index=1)
        assert back.accountant.epsilon(1e-5) > eps


def test_encrypted_updates_travel_as_bytes_and_their_sum_decrypts() -> None:
    holder = KeyHolder.generate(SecureAggregationConfig(enabled=True))
    delta = {"w": np.linspace(-0.1, 0.1, 10)}
    server = SecureAggregator(holder.server_context(), min_clients=3,
                              expected=ExpectedRound.from_state(delta, adapter_config_hash="h",
                                                                round=2))
    for client in ("a", "b", "c"):
        sent = encrypt_update(delta, weight=1 / 3, round=2, client_id=client,
                              adapter_config_hash="h", context_bytes=holder.client_context())
        record = codec.encrypted_update_to_record(sent)
        assert all(isinstance(b, bytes) for b in record["ciphertexts"])  # type: ignore[union-attr]
        back = codec.record_to_encrypted_update(record)
        assert back == sent
        assert server.add(back)
    total = codec.record_to_encrypted_sum(codec.encrypted_sum_to_record(server.finish()))
    assert np.allclose(holder.decrypt_mean(total)["w"], delta["w"], atol=1e-6)


def test_server_strategy_holds_no_secret_key() -> None:
    holder = KeyHolder.generate(SecureAggregationConfig(enabled=True))
    layer = SecureAggregation(FedAvg(), holder, adapter_config_hash="h")
    clients, server = crypto_of(layer)
    split = split_secure_layer(layer, lambda sa: RemoteSecureAggregation(sa.inner, server))

    def reachable(obj: Any, seen: set[int]) -> Iterator[Any]:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        yield obj
        children = vars(obj).values() if hasattr(obj, "__dict__") else ()
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            children = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
        for child in children:
            yield from reachable(child, seen)

    assert not any(isinstance(x, KeyHolder) for x in reachable(split, set()))
    with pytest.raises(SecureAggregationError, match="no secret key"):
        load_context(server.server_context, role="key_holder")
    assert load_context(clients.client_context, role="key_holder").has_secret_key()


def test_flower_engine_is_registered_and_a_missing_extra_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert type(get_engine("flower")).__name__ == "FlowerEngine"
    real_import = __import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray":
            raise ImportError("no ray", name="ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", no_ray)
    with pytest.raises(ConfigError, match=r"privaudit\[flower\]"):
        engine.require_flower()


def test_bad_placement_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVAUDIT_FLOWER_CLIENT_CPUS", "zero")
    with pytest.raises(ConfigError, match="PRIVAUDIT_FLOWER_CLIENT"):
        engine.FlowerOptions.from_env()


# -- the message flow on a loopback Grid ----------------------------------------------------


def test_flower_app_reproduces_in_process_record_dp_bit_for_bit(
    federation: Callable[..., Federation], loopback: list[LoopbackGrid]
) -> None:
    fed = federation(THREE | RECORD_DP)
    initial = fed.initial_state()
    local = _train(fed, "inprocess", initial=initial)
    kept: dict[int, list[str]] = {}
    flower = _train(fed, "flower", initial=initial,
                    on_round=lambda r, s, ups, rec: kept.setdefault(r, [u.client_id for u in ups]))
    assert flower.final_sha256 == local.final_sha256
    assert [r.global_sha256 for r in flower.rounds] == [r.global_sha256 for r in local.rounds]
    assert flower.privacy is not None and local.privacy is not None
    assert flower.privacy.epsilon() == local.privacy.epsilon()
    assert flower.seen_ids == local.seen_ids
    assert kept == {1: list(fed.clients), 2: list(fed.clients)}  # updates the clients kept
    # each node kept its client's accountant in its Flower context, across both rounds
    grid = loopback[0]
    for context in grid.contexts.values():
        (text,) = context.state.config_records[STATE_KEY].values()
        state = codec.client_state_from_json(str(text))
        assert state.rounds_taken == 2 and state.accountant is not None
        assert len(state.accountant.rounds) == 2
        assert state.accountant.history == local.privacy.accountants[state.client_id].history


def test_flower_app_with_secure_aggregation_never_sends_a_plaintext_delta(
    federation: Callable[..., Federation], loopback: list[LoopbackGrid]
) -> None:
    fed = federation(THREE | HE)
    initial = fed.initial_state()
    local = _train(fed, "inprocess", initial=initial)
    flower = _train(fed, "flower", initial=initial)
    assert _max_diff(flower.final_state, local.final_state) < 1e-6  # CKKS noise only
    grid = loopback[0]
    trained = [m for m in grid.received if m.metadata.message_type == "train"]
    assert len(trained) == 6
    assert all("delta" not in m.content.array_records and "encrypted" in m.content.config_records
               for m in trained)
    logs = [r.aggregation.secure_aggregation for r in flower.rounds if r.aggregation]
    assert [sorted(x.accepted) for x in logs if x] == [sorted(fed.clients)] * 2
    # the bound on the decryption error, from each client's own ciphertexts (CKKS scale 2^40)
    assert all(x is not None and x.expansion_ratio > 1 and x.max_abs_error is not None
               and 0 < x.max_abs_error < 1e-7 for x in logs)


@pytest.mark.parametrize(("patch", "exact"), [(client_dp(0.7), True),
                                              (client_dp(1.0) | HE, False)],
                         ids=["client-dp-sampled", "client-dp-over-he"])
def test_flower_app_runs_client_level_dp_like_in_process(
    federation: Callable[..., Federation], loopback: list[LoopbackGrid],
    patch: dict[str, Any], exact: bool,
) -> None:
    fed = federation(THREE | patch)
    initial = fed.initial_state()
    local = _train(fed, "inprocess", initial=initial)
    flower = _train(fed, "flower", initial=initial)
    assert [r.clients for r in flower.rounds] == [r.clients for r in local.rounds]  # sampling
    if exact:
        assert flower.final_sha256 == local.final_sha256
    assert _max_diff(flower.final_state, local.final_state) < 1e-6
    assert flower.privacy is not None and local.privacy is not None
    assert flower.privacy.epsilon() == local.privacy.epsilon()


def test_a_tampered_ciphertext_is_rejected_by_the_flower_server(
    federation: Callable[..., Federation], loopback: list[LoopbackGrid]
) -> None:
    fed = federation(THREE | HE)

    def corrupt(update: Any) -> Any:
        if update.manifest.client_id != "client-1":
            return (update,)
        bad = bytes([update.ciphertexts[0][0] ^ 1]) + update.ciphertexts[0][1:]
        return (dataclasses.replace(update, ciphertexts=(bad, *update.ciphertexts[1:])),)

    with pytest.raises(SecureAggregationError, match="client-1: ciphertext_digest_mismatch"):
        _train(fed, "flower", initial=fed.initial_state(), channel=corrupt)


def test_each_flower_training_records_its_nodes_and_rounds(
    federation: Callable[..., Federation], loopback: list[LoopbackGrid], tmp_path: Path
) -> None:
    fed = federation(THREE)
    result = _train(fed, "flower", initial=fed.initial_state())
    run = runinfo.flower_run("flower", result.final_sha256)
    assert run is not None and run.runtime == "simulation"
    assert sorted(n.client_id for n in run.nodes) == sorted(fed.clients)
    assert all(n.rounds == (1, 2) for n in run.nodes)
    assert runinfo.flower_run("inprocess", result.final_sha256) is None


# -- pairwise masking over messages ----------------------------------------------------------

FOUR = {"federation": {"clients": 4, "rounds": 2}}
MASKED = {"secure_aggregation": {"enabled": True, "masking": "pairwise"}}  # min_clients 3


def _masked_logs(result: Any) -> list[Any]:
    return [r.aggregation.secure_aggregation for r in result.rounds]


def test_flower_masked_rounds_give_the_in_process_mean_and_send_no_plaintext_delta(
    federation: Callable[..., Federation], loopback: list[LoopbackGrid]
) -> None:
    fed = federation(FOUR | MASKED)
    initial = fed.initial_state()
    states: dict[str, dict[int, Any]] = {"inprocess": {}, "flower": {}}
    local, flower = (_train(fed, name, initial=initial,
                            on_round=lambda r, s, ups, rec, n=name: states[n].setdefault(r, s))
                     for name in ("inprocess", "flower"))
    bounds = [x.quantization_error_bound for x in _masked_logs(flower)]
    local_bounds = [x.quantization_error_bound for x in _masked_logs(local)]
    # round 1 starts from the same adapter: the two means differ by the two roundings at most
    assert _max_diff(states["flower"][1], states["inprocess"][1]) <= bounds[0] + local_bounds[0]
    assert _max_diff(flower.final_state, local.final_state) < 1e-5
    grid = loopback[0]
    trained = [m for m in grid.received if m.metadata.message_type == "train"]
    assert len(trained) == 8
    assert all("delta" not in m.content.array_records and "masked" in m.content.config_records
               for m in trained)
    actions = [str(m.content.config_records["query"]["action"]) for m in grid.sent
               if m.metadata.message_type == "query"]
    assert actions.count("mask_advertise") == actions.count("mask_deal") == 8
    assert actions.count("mask_release") == 8 and actions.count("decrypt_masked") == 2
    for log in _masked_logs(flower):  # each client's own quantization error, summed: a bound
        assert log.dropped == [] and log.rejections == []
        assert log.max_abs_error is not None and 0 < log.max_abs_error \
            <= log.quantization_error_bound



def test_the_flower_server_gets_the_public_bfv_context_and_only_the_clients_the_secret(
) -> None:
    cfg = SecureAggregationConfig(enabled=True, masking="pairwise")
    server, clients = engine.split_masked(PairwiseMasking(FedAvg(), cfg))
    remote = find_masked_layer(server)
    assert isinstance(remote, RemoteMaskedAggregation) and not hasattr(remote, "key_holder")
    assert ts.context_from(remote.public_context).is_public()
    assert clients is not None and clients.secret_context is not None
    assert ts.context_from(clients.secret_context).has_secret_key()


def test_flower_masked_round_survives_a_client_dropping_after_mask_agreement(
    federation: Callable[..., Federation], loopback: list[LoopbackGrid]
) -> None:
    fed = federation(FOUR | MASKED)
    gone = list(fed.clients)[2]

    def drop(update: MaskedUpdate) -> Any:
        return () if update.client_id == gone else (update,)

    initial = fed.initial_state()
    flower = _train(fed, "flower", initial=initial, channel=drop)
    local = _train(fed, "inprocess", initial=initial, channel=drop)
    for log in _masked_logs(flower):
        assert log.dropped == [gone]
        assert sorted(log.accepted) == sorted(c for c in fed.clients if c != gone)
    # the mean of the three survivors, as in-process (up to the stochastic rounding)
    assert _max_diff(flower.final_state, local.final_state) < 1e-5
    assert [x.dropped for x in _masked_logs(local)] == [[gone], [gone]]


def test_flower_masked_round_refuses_a_replayed_update_and_names_it(
    federation: Callable[..., Federation], loopback: list[LoopbackGrid]
) -> None:
    fed = federation(FOUR | MASKED)
    twice = list(fed.clients)[1]

    def replay(update: MaskedUpdate) -> Any:
        return (update, update) if update.client_id == twice else (update,)

    flower = _train(fed, "flower", initial=fed.initial_state(), channel=replay)
    for log in _masked_logs(flower):
        assert [(r.client_id, r.reason) for r in log.rejections] == [(twice, "replayed")]
        assert log.dropped == []
