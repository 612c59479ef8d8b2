"""The Flower ClientApp: privaudit's client update, run where the data is.

Three messages, each answered from the node's :class:`~.workload.ClientSide`:

- ``query`` / ``describe``: which client this node serves and how many records it holds;
- ``train``: load the global adapter, run the client update (``ClientSide.client_fn``: plain,
  DP-SGD or clipped — privaudit's own), keep the client's state (its DP accountant with its
  whole history) in the node's Flower ``Context.state`` for the next round, keep the
  plaintext delta on the client's side, and reply with the delta — or, with secure
  aggregation, with ``w·delta`` encrypted under CKKS (manifest + ciphertext bytes);
- ``query`` / ``decrypt``: as key holder (clients hold the secret key), decrypt a ciphertext
  SUM of at least ``min_clients`` updates and reply with the mean;
- with pairwise masking, the ``mask_*`` queries and a masked ``train`` reply
  (:mod:`.masked_node`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
import tenseal as ts
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from privaudit.core.errors import InternalError, SecureAggregationError
from privaudit.mechanisms.federated.client import ClientState
from privaudit.mechanisms.federated.flower import codec, masked_node
from privaudit.mechanisms.federated.flower.workload import ClientSide, keep_update
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.secagg import (
    EncryptedUpdate,
    KeyHolder,
    encrypt_update,
    validate_params,
    value_bound,
)
from privaudit.mechanisms.secagg.context import load_context, slots_per_ciphertext
from privaudit.mechanisms.secagg.packing import chunk_bounds, flatten

#: the key of the node's Context.state record that holds its clients' states
STATE_KEY = "privaudit.client-state"
PARTITION_KEY = "partition-id"

SideLoader = Callable[[Context], ClientSide]
_MASK_ACTIONS = {"mask_advertise": masked_node.advertise, "mask_deal": masked_node.deal,
                 "mask_release": masked_node.release}


def node_client(side: ClientSide, context: Context) -> str:
    """The client this node serves: its partition id in simulation, else the silo's only one."""
    if len(side.clients) == 1:
        return next(iter(side.clients))
    partition = context.node_config.get(PARTITION_KEY)
    if not isinstance(partition, int) or not 0 <= partition < len(side.order):
        raise InternalError(
            f"flower node: node_config {PARTITION_KEY} must be in 0..{len(side.order) - 1} "
            f"(got {partition!r})"
        )
    return side.order[partition]


def load_client_state(context: Context, client_id: str, sent: str | None) -> ClientState:
    """The client's state kept by this node from its last round; on its first round here,
    the state the server sent (a resumed run's history), else a fresh one."""
    kept = context.state.get(STATE_KEY)
    if isinstance(kept, ConfigRecord) and isinstance(kept.get(client_id), str):
        return codec.client_state_from_json(str(kept[client_id]))
    if sent:
        return codec.client_state_from_json(sent)
    return ClientState(client_id=client_id)


def save_client_state(context: Context, state: ClientState) -> None:
    kept = context.state.get(STATE_KEY)
    record = kept if isinstance(kept, ConfigRecord) else ConfigRecord()
    record[state.client_id] = codec.client_state_to_json(state)
    context.state[STATE_KEY] = record


def describe(side: ClientSide, msg: Message, context: Context) -> Message:
    client = node_client(side, context)
    holder = side.crypto is not None or (side.masked is not None
                                         and side.masked.secret_context is not None)
    info = ConfigRecord({"client_id": client, "n_examples": len(side.clients[client]),
                         "key_holder": holder})
    if side.masked is not None:  # the identity the server registers (masked rounds)
        info["identity"] = masked_node.node_identity(context, client).public_bytes()
    return Message(RecordDict({"node": info}), reply_to=msg)


def train(side: ClientSide, msg: Message, context: Context) -> Message:
    config = msg.content.config_records["config"]
    client = node_client(side, context)
    if config.get("client_id") != client:
        raise InternalError(
            f"flower node serving {client!r} was asked to train {config.get('client_id')!r}"
        )
    round_index, seed = int(config["round"]), int(config["seed"])  # type: ignore[arg-type]
    sent = config.get("client_state")
    state = load_client_state(context, client, sent if isinstance(sent, str) else None)
    global_state = codec.record_to_state(msg.content.array_records["global"])
    update, new_state = side.client_fn(
        side.model, global_state, side.clients[client], side.federation, state,
        task=side.task, round_index=round_index, seed=seed,
    )
    save_client_state(context, new_state)
    keep_update(side.store, update)
    reply = RecordDict(
        {
            "update": ConfigRecord(
                {"client_id": client, "round": round_index, "n_examples": update.n_examples,
                 "client_state": codec.client_state_to_json(new_state, with_trace=False)}
            ),
            "metrics": codec.metrics_to_record(update.metrics),
        }
    )
    if side.masked is not None:
        weight = config.get("weight")
        if not isinstance(weight, float) or not weight > 0:
            raise SecureAggregationError(f"flower node {client}: no aggregation weight sent")
        started = time.perf_counter()
        reply["masked"], error = masked_node.masked_update(
            side, context, client, msg, delta=update.delta, weight=weight,
            round_index=round_index, seed=seed)
        info = reply.config_records["update"]
        info["encrypt_seconds"], info["encrypt_error"] = time.perf_counter() - started, error
    elif side.crypto is None:
        reply["delta"] = codec.state_to_record(update.delta)
    else:
        weight, summed = config.get("weight"), config.get("summed")
        if not isinstance(weight, float) or not weight > 0 or not isinstance(summed, int):
            raise SecureAggregationError(f"flower node {client}: no aggregation weight sent")
        started = time.perf_counter()
        encrypted = encrypt_update(
            update.delta,
            weight=weight,
            round=round_index,
            client_id=client,
            adapter_config_hash=side.crypto.adapter_config_hash,
            context_bytes=side.crypto.client_context,
            max_abs_value=value_bound(side.crypto.config) / max(summed, 1),  # no wrap-around
        )
        reply["encrypted"] = codec.encrypted_update_to_record(encrypted)
        info = reply.config_records["update"]
        info["encrypt_seconds"] = time.perf_counter() - started
        info["encrypt_error"] = own_error(side.crypto.client_context, encrypted, update.delta,
                                          weight)
    return Message(reply, reply_to=msg)


def own_error(
    context: bytes, encrypted: EncryptedUpdate, delta: AdapterState, weight: float
) -> float:
    """max |Dec(own ciphertexts) − w·delta|: what encryption changed in this client's update.

    CKKS decryption is linear, so the error of the decrypted sum is at most the sum of these
    — a bound the server can report without anyone seeing another client's plaintext.
    """
    ctx = load_context(context, role="client")
    vector, _ = flatten(delta)
    weighted = vector * float(weight)
    worst = 0.0
    bounds = chunk_bounds(len(weighted), slots_per_ciphertext(ctx))
    for blob, (start, stop) in zip(encrypted.ciphertexts, bounds, strict=True):
        got = np.asarray(ts.ckks_vector_from(ctx, blob).decrypt(), dtype=np.float64)
        worst = max(worst, float(np.max(np.abs(got - weighted[start:stop]), initial=0.0)))
    return worst


def decrypt(side: ClientSide, msg: Message) -> Message:
    if side.crypto is None:
        raise SecureAggregationError("flower node: asked to decrypt, but holds no CKKS key")
    total = codec.record_to_encrypted_sum(msg.content.config_records["sum"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an allowed insecure setting warned when the run began
        verdict = validate_params(side.crypto.config)
    ctx = load_context(side.crypto.client_context, role="key_holder")
    mean = KeyHolder(side.crypto.config, ctx, verdict).decrypt_mean(total)  # refuses < min_clients
    return Message(RecordDict({"mean": codec.state_to_record(mean)}), reply_to=msg)


def make_client_app(load: SideLoader) -> ClientApp:
    """The ClientApp; ``load(context)`` returns this node's ClientSide (cached per process)."""
    app = ClientApp()

    @app.train()
    def _train(msg: Message, context: Context) -> Message:
        return train(load(context), msg, context)

    @app.query()
    def _query(msg: Message, context: Context) -> Message:
        side = load(context)
        action = msg.content.config_records["query"].get("action")
        if action == "describe":
            return describe(side, msg, context)
        if action == "decrypt":
            return decrypt(side, msg)
        if action == "decrypt_masked":
            return masked_node.decrypt_masked(side, msg)
        if action in _MASK_ACTIONS:
            return _MASK_ACTIONS[action](side, msg, context, node_client(side, context))
        raise InternalError(f"flower node: unknown query action {action!r}")

    return app
