"""The Flower ServerApp: privaudit's strategy, fed by messages instead of function calls.

:func:`serve` is the whole server loop, the same in the simulation and the deployment
runtime. It finds which node serves which client (a ``describe`` query), then per round:
asks the strategy who takes part (``Strategy.select``), sends each chosen node the global
adapter (and, with secure aggregation, the weight to encrypt with), turns the replies into
:class:`~privaudit.mechanisms.federated.client.ClientUpdate` values — plaintext deltas, or
ciphertexts handed to :class:`~.secure.RemoteSecureAggregation` — aggregates with the run's
strategy (``Strategy.aggregate_round``), evaluates utility and reports the round.
Updates are aggregated in the federation's client order, as the in-process engine does, so
the float sums are the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from privaudit.core.errors import InternalError
from privaudit.mechanisms.federated.client import ClientState, ClientUpdate, local_seed
from privaudit.mechanisms.federated.flower import codec
from privaudit.mechanisms.federated.flower.masked import (
    RemoteMaskedAggregation,
    agree_masks,
    decrypt_over,
    find_masked_layer,
    release_over,
)
from privaudit.mechanisms.federated.flower.masked_codec import masked_from_record, sealed_to_record
from privaudit.mechanisms.federated.flower.messages import check_reply, query
from privaudit.mechanisms.federated.flower.secure import (
    RemoteSecureAggregation,
    find_remote_layer,
    planned_weights,
)
from privaudit.mechanisms.federated.flower.workload import RoundResult, ServerSide
from privaudit.mechanisms.models import AdapterState, set_adapter_state, state_sha256
from privaudit.mechanisms.secagg import EncryptedSum, EncryptedUpdate
from privaudit.mechanisms.secagg.party import MaskedUpdate, SealedShare
from privaudit.mechanisms.tasks import evaluate_utility

OnRound = Callable[[int, RoundResult], None]


@dataclass
class Served:
    """What the server loop leaves behind: the final adapter, who ran where, every round."""

    final_state: AdapterState
    nodes: dict[str, int]
    rounds: list[RoundResult] = field(default_factory=list)
    client_states: dict[str, ClientState] = field(default_factory=dict)
    #: seconds until every node had answered ``describe`` (actors up, workload loaded)
    discover_seconds: float = 0.0
    #: filled by the runtime that ran the loop (see FlowerRun.seconds)
    seconds: dict[str, float] = field(default_factory=dict)


def discover(grid: Grid, side: ServerSide) -> tuple[dict[str, int], int | None]:
    """client id → node id for every client of the federation, and the key holder's node."""
    deadline = time.monotonic() + side.connect_timeout
    nodes = sorted(grid.get_node_ids())
    while len(nodes) < len(side.order):
        if time.monotonic() > deadline:
            raise InternalError(
                f"flower: {len(nodes)} node(s) connected within {side.connect_timeout:.0f} s, "
                f"the federation has {len(side.order)} clients"
            )
        time.sleep(0.5)
        nodes = sorted(grid.get_node_ids())
    replies = grid.send_and_receive([query("describe", n) for n in nodes],
                                    timeout=side.connect_timeout)
    served: dict[str, int] = {}
    holders: list[int] = []
    for reply in replies:
        info = check_reply(reply, "describe").content.config_records["node"]
        client, node = str(info["client_id"]), reply.metadata.src_node_id
        if client in served:
            raise InternalError(f"flower: client {client} served by nodes {served[client]} "
                                f"and {node}")
        served[client] = node
        if info.get("key_holder"):
            holders.append(node)
        identity = info.get("identity")
        masked = find_masked_layer(side.strategy)
        if masked is not None and isinstance(identity, bytes):
            masked.admission.registry[client] = Ed25519PublicKey.from_public_bytes(identity)
    missing = [c for c in side.order if c not in served]
    if missing:
        raise InternalError(f"flower: no node serves client(s) {', '.join(missing)}")
    holder = next((served[c] for c in side.order if served[c] in holders), None)
    if (side.crypto is not None or find_masked_layer(side.strategy)) and holder is None:
        raise InternalError("flower: secure aggregation is on but no node holds the secret key")
    return served, holder


def _train_message(
    side: ServerSide, node: int, client: str, r: int, global_record: RecordDict,
    weight: float | None, summed: int, send_state: bool,
    sealed: list[SealedShare] | None = None,
) -> Message:
    config = ConfigRecord(
        {"client_id": client, "round": r,
         "seed": local_seed(side.seed, r, side.order.index(client))}
    )
    if weight is not None:
        config["weight"], config["summed"] = weight, summed
    if send_state and client in side.initial_states:
        config["client_state"] = codec.client_state_to_json(side.initial_states[client])
    content = RecordDict({"global": global_record["global"], "config": config})
    if sealed is not None:
        content["sealed"] = sealed_to_record(sealed)
    return Message(content, dst_node_id=node, message_type=MessageType.TRAIN, group_id=str(r))


def serve(grid: Grid, side: ServerSide, on_round: OnRound | None = None) -> Served:
    """Run rounds ``side.start_round`` … ``side.rounds`` (see the module docstring)."""
    started = time.perf_counter()
    nodes, holder = discover(grid, side)
    discovered = time.perf_counter() - started
    by_node = {n: c for c, n in nodes.items()}
    remote = find_remote_layer(side.strategy)
    masked = _remote_masked(side)
    if remote is not None:
        remote.decrypt = lambda total: _decrypt(grid, holder, total, side.round_timeout)
    global_state = {n: t.clone() for n, t in side.initial_state.items()}
    served = Served(final_state=global_state, nodes=nodes,
                    client_states=dict(side.initial_states), discover_seconds=discovered)
    primed: set[str] = set()
    model = side.model
    for r in range(side.start_round, side.rounds + 1):
        started = time.perf_counter()
        chosen = side.strategy.select(r, list(side.order))
        weights = planned_weights(side.strategy, chosen, side.sizes) \
            if (remote or masked) and chosen else {}
        sealed = agree_masks(grid, nodes, chosen, r, masked, side.round_timeout) \
            if masked and chosen else {}
        record = RecordDict({"global": codec.state_to_record(global_state)})
        messages = [
            _train_message(side, nodes[c], c, r, record, weights.get(c), len(chosen),
                           c not in primed, sealed.get(c) if masked else None)
            for c in chosen
        ]
        primed.update(chosen)
        replies = list(grid.send_and_receive(messages, timeout=side.round_timeout)) if messages \
            else []
        arrived = _read_replies(replies, by_node, r, global_state)
        order = {c: i for i, c in enumerate(side.order)}
        updates = sorted(arrived.updates, key=lambda u: order[u.client_id])
        states = arrived.states
        seconds, errors = sum(arrived.encrypt_seconds.values()), arrived.encrypt_errors
        if remote is not None:
            remote.receive(arrived.encrypted, encrypt_seconds=seconds, errors=errors)
        if masked is not None:
            masked.receive(arrived.masked, encrypt_seconds=seconds, errors=errors)
            masked.release = release_over(grid, nodes, r, side.round_timeout)
            masked.decrypt = decrypt_over(grid, holder, side.round_timeout)
        global_state, log = side.strategy.aggregate_round(global_state, updates, round_index=r)
        set_adapter_state(model, global_state)
        metric, value = evaluate_utility(model, side.test, side.task)
        served.client_states |= states
        result = RoundResult(
            round=r,
            global_state=global_state,
            clients=[u.client_id for u in updates],
            client_states=states,
            metrics={u.client_id: u.metrics for u in updates},
            n_examples={u.client_id: u.n_examples for u in updates},
            aggregation=log,
            utility_metric=metric,
            utility=value,
            seconds=time.perf_counter() - started,
            global_sha256=state_sha256(global_state),
        )
        served.rounds.append(result)
        served.final_state = global_state
        if on_round is not None:
            on_round(r, result)
    return served


def _remote_masked(side: ServerSide) -> RemoteMaskedAggregation | None:
    layer = find_masked_layer(side.strategy)
    if layer is not None and not isinstance(layer, RemoteMaskedAggregation):
        raise InternalError("flower: the server's strategy simulates every client's masks "
                            "(split the masked layer before serving)")
    return layer


@dataclass
class Arrived:
    """One round's replies, read: updates (zero deltas stand in for encrypted ones), the
    encrypted updates, the clients' states, and per client its encryption time and error."""

    updates: list[ClientUpdate] = field(default_factory=list)
    encrypted: list[EncryptedUpdate] = field(default_factory=list)
    masked: list[MaskedUpdate] = field(default_factory=list)
    states: dict[str, ClientState] = field(default_factory=dict)
    encrypt_seconds: dict[str, float] = field(default_factory=dict)
    encrypt_errors: dict[str, float] = field(default_factory=dict)


def _read_replies(
    replies: Iterable[Message], by_node: dict[int, str], r: int, global_state: AdapterState
) -> Arrived:
    arrived = Arrived()
    for reply in replies:
        content = check_reply(reply, f"round {r}").content
        info = content.config_records["update"]
        client = by_node[reply.metadata.src_node_id]
        if info.get("client_id") != client:
            raise InternalError(f"flower: node of {client} replied for {info.get('client_id')!r}")
        arrived.states[client] = codec.client_state_from_json(str(info["client_state"]))
        if "encrypted" in content.config_records or "masked" in content.config_records:
            if "masked" in content.config_records:
                arrived.masked.append(masked_from_record(content.config_records["masked"]))
            else:
                arrived.encrypted.append(codec.record_to_encrypted_update(
                    content.config_records["encrypted"]))
            delta = {n: torch.zeros_like(t) for n, t in global_state.items()}  # never seen
            for key, into in (("encrypt_seconds", arrived.encrypt_seconds),
                              ("encrypt_error", arrived.encrypt_errors)):
                value = info.get(key)
                if isinstance(value, float):
                    into[client] = value
        else:
            delta = codec.record_to_state(content.array_records["delta"])
        arrived.updates.append(ClientUpdate(
            client_id=client, round=r, delta=delta,
            n_examples=int(info["n_examples"]),  # type: ignore[arg-type]
            metrics=codec.record_to_metrics(content.metric_records["metrics"]),
        ))
    return arrived


def _decrypt(grid: Grid, holder: int | None, total: EncryptedSum, timeout: float
             ) -> dict[str, torch.Tensor]:
    if holder is None:
        raise InternalError("flower: no key holder node to decrypt the sum")
    message = query("decrypt", holder, {"sum": codec.encrypted_sum_to_record(total)})
    replies: Sequence[Message] = list(grid.send_and_receive([message], timeout=timeout))
    if not replies:
        raise InternalError(f"flower: the key holder (node {holder}) did not answer")
    return codec.record_to_state(check_reply(replies[0], "decrypt").content.array_records["mean"])


__all__ = ["RemoteSecureAggregation", "Served", "discover", "serve"]
