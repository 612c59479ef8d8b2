"""What each side of a Flower federation holds, and nothing more.

- :class:`ClientSide` — the data holders: the model, their client data, the client update
  (plain or privacy-wrapped, privaudit's own), and with secure aggregation the CKKS context
  WITH the secret key (clients encrypt symmetrically and, as key holder, decrypt only sums);
  with pairwise masking the BFV public context instead (:class:`MaskedCrypto`).
  Each client also keeps its own lineage (its plaintext delta and the record ids it touched)
  in ``store`` on its side; it never travels to the server.
- :class:`ServerSide` — the aggregator: the strategy (privaudit's own wrappers; the secure
  layer holds the PUBLIC context only), the test split for utility, the schedule.

In simulation one :class:`ClientSide` holding every client is put in Ray's object store once
and each node picks its client by partition id; in the deployment runtime each silo holds a
:class:`ClientSide` with its own client only (:mod:`.deploy`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from privaudit.mechanisms.federated.client import ClientFn, ClientState, ClientUpdate
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.federated.strategy import AggregationLog, Strategy
from privaudit.mechanisms.models import AdapterState, load_adapter, save_adapter
from privaudit.mechanisms.secagg import SecureAggregationConfig
from privaudit.mechanisms.tasks import EncodedSet


@dataclass
class ClientCrypto:
    """The clients' CKKS material: the context with the secret key, and the round's checks."""

    config: SecureAggregationConfig
    client_context: bytes
    adapter_config_hash: str


@dataclass
class ServerCrypto:
    """The server's CKKS material: the context WITHOUT the secret key."""

    config: SecureAggregationConfig
    server_context: bytes
    adapter_config_hash: str


@dataclass
class MaskedCrypto:
    """The clients' BFV material for pairwise masking: the key holder's public context for
    every client, the context with the secret key for the key holder's node only (in
    simulation one ClientSide serves every node, so it carries both)."""

    config: SecureAggregationConfig
    public_context: bytes
    secret_context: bytes | None = None


@dataclass
class ClientSide:
    """What the data holders hold (one silo: one client; simulation: every client)."""

    model: nn.Module
    task: str
    federation: FederationConfig
    client_fn: ClientFn
    clients: dict[str, EncodedSet]
    #: client ids in federation order (a simulation node's partition id indexes it)
    order: list[str]
    store: Path
    crypto: ClientCrypto | None = None
    threads: int = 1
    masked: MaskedCrypto | None = None


@dataclass
class ServerSide:
    """What the aggregator holds. ``initial_states``: the clients' states before
    ``start_round`` (their accountants' history when a run resumes), sent once per node."""

    model: nn.Module
    task: str
    test: EncodedSet
    rounds: int
    start_round: int
    seed: int
    strategy: Strategy
    initial_state: AdapterState
    order: list[str]
    sizes: dict[str, int]
    initial_states: dict[str, ClientState] = field(default_factory=dict)
    crypto: ServerCrypto | None = None
    round_timeout: float = 3600.0
    connect_timeout: float = 120.0


@dataclass
class RoundResult:
    """One round as the server saw it (see :mod:`.server_app`)."""

    round: int
    global_state: AdapterState
    clients: list[str]
    client_states: dict[str, ClientState]
    metrics: dict[str, dict[str, float]]
    n_examples: dict[str, int]
    aggregation: AggregationLog
    utility_metric: str
    utility: float
    seconds: float
    global_sha256: str


# -- the clients' own lineage store ------------------------------------------------------


def keep_update(store: Path, update: ClientUpdate) -> None:
    """Client side: keep this round's plaintext delta and record ids on the client's disk."""
    where = store / f"round-{update.round:03d}"
    save_adapter(update.delta, where / f"{update.client_id}.safetensors")
    (where / f"{update.client_id}.json").write_text(
        json.dumps({"n_examples": update.n_examples, "seen_ids": list(update.seen_ids)})
    )


def kept_update(
    store: Path, client_id: str, round_index: int, metrics: dict[str, float]
) -> ClientUpdate:
    """Data holders' side: the update a client kept for ``round_index`` (see keep_update)."""
    where = store / f"round-{round_index:03d}"
    meta = json.loads((where / f"{client_id}.json").read_text())
    return ClientUpdate(
        client_id=client_id,
        round=round_index,
        delta=dict(load_adapter(where / f"{client_id}.safetensors")),
        n_examples=int(meta["n_examples"]),
        metrics=dict(metrics),
        seen_ids=tuple(meta["seen_ids"]),
    )


# -- loading a side once per process ------------------------------------------------------

_LOADED: dict[str, ClientSide] = {}


def cached_client_side(key: str, load: Callable[[], ClientSide]) -> ClientSide:
    """``load()`` once per process (a Ray actor or a SuperNode's ClientApp process)."""
    if key not in _LOADED:
        side = load()
        torch.set_num_threads(max(1, side.threads))
        _LOADED.clear()  # one federation per process at a time: free the previous one
        _LOADED[key] = side
    return _LOADED[key]
