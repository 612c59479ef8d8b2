"""What travels in Flower records: adapters, client states, updates, ciphertexts — as values.

Pure conversions between privaudit's typed values and Flower's ``ArrayRecord`` /
``ConfigRecord`` / ``MetricRecord``; no privacy logic. Float tensors travel as their exact
bytes (an adapter sent and received is bit-identical). An encrypted update travels as its
manifest (JSON) and its serialized CKKS ciphertexts (``list[bytes]``); a client's state
(its DP accountant with its whole history) as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord

from privaudit.core.errors import InternalError
from privaudit.mechanisms.dp.accounting import ClientAccountant
from privaudit.mechanisms.federated.client import ClientState
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.secagg import (
    EncryptedSum,
    EncryptedUpdate,
    TensorLayout,
    UpdateManifest,
)


def state_to_record(state: Mapping[str, torch.Tensor | np.ndarray]) -> ArrayRecord:
    """An adapter (or a delta, or a decrypted mean) as an ArrayRecord, names in order."""
    record = ArrayRecord()
    for name, value in state.items():
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        record[name] = Array.from_numpy_ndarray(np.ascontiguousarray(array))
    return record


def record_to_state(record: ArrayRecord) -> AdapterState:
    """The tensors of an ArrayRecord (copied: received buffers are read-only)."""
    return {name: torch.from_numpy(array.numpy().copy()) for name, array in record.items()}


def client_state_to_json(state: ClientState, *, with_trace: bool = True) -> str:
    """``with_trace=False`` drops the accountant's cached ε per round: what a client sends
    the server, which recomputes ε from the history (σ, q, steps) itself."""
    accountant = None if state.accountant is None else state.accountant.to_dict()
    if accountant is not None and not with_trace:
        accountant["epsilon_trace"] = []
    return json.dumps(
        {
            "client_id": state.client_id,
            "rounds_taken": state.rounds_taken,
            "steps_taken": state.steps_taken,
            "extra": state.extra,
            "accountant": accountant,
        },
        sort_keys=True,
    )


def client_state_from_json(text: str) -> ClientState:
    raw: dict[str, Any] = json.loads(text)
    accountant = raw.get("accountant")
    return ClientState(
        client_id=str(raw["client_id"]),
        rounds_taken=int(raw["rounds_taken"]),
        steps_taken=int(raw["steps_taken"]),
        extra=dict(raw.get("extra") or {}),
        accountant=None if accountant is None else ClientAccountant.from_dict(accountant),
    )


def metrics_to_record(metrics: Mapping[str, float]) -> MetricRecord:
    return MetricRecord({k: float(v) for k, v in metrics.items()})


def record_to_metrics(record: MetricRecord) -> dict[str, float]:
    return {k: float(v) for k, v in record.items() if isinstance(v, int | float)}


def encrypted_update_to_record(update: EncryptedUpdate) -> ConfigRecord:
    """The manifest as JSON and the ciphertexts as bytes, unchanged."""
    return ConfigRecord(
        {
            "manifest": update.manifest.model_dump_json(),
            "ciphertexts": list(update.ciphertexts),
        }
    )


def record_to_encrypted_update(record: ConfigRecord) -> EncryptedUpdate:
    manifest = UpdateManifest.model_validate_json(_str(record, "manifest"))
    return EncryptedUpdate(manifest=manifest, ciphertexts=_blobs(record, "ciphertexts"))


def encrypted_sum_to_record(total: EncryptedSum) -> ConfigRecord:
    """The ciphertext sum the server hands the key holder (no plaintext of any update)."""
    return ConfigRecord(
        {
            "round": total.round,
            "adapter_config_hash": total.adapter_config_hash,
            "layout": json.dumps(
                {"names": list(total.layout.names),
                 "shapes": [list(s) for s in total.layout.shapes]}
            ),
            "ciphertexts": list(total.ciphertexts),
            "total_weight": float(total.total_weight),
            "client_ids": list(total.client_ids),
        }
    )


def record_to_encrypted_sum(record: ConfigRecord) -> EncryptedSum:
    layout = json.loads(_str(record, "layout"))
    clients = record.get("client_ids", [])
    if not isinstance(clients, list):
        raise InternalError("flower record: client_ids must be a list of str")
    return EncryptedSum(
        round=int(_scalar(record, "round")),
        adapter_config_hash=_str(record, "adapter_config_hash"),
        layout=TensorLayout(
            tuple(layout["names"]), tuple(tuple(int(d) for d in s) for s in layout["shapes"])
        ),
        ciphertexts=_blobs(record, "ciphertexts"),
        total_weight=float(_scalar(record, "total_weight")),
        client_ids=tuple(str(c) for c in clients),
    )


def _scalar(record: ConfigRecord, key: str) -> float:
    value = record.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InternalError(f"flower record: {key!r} must be a number (got {type(value).__name__})")
    return value


def _str(record: ConfigRecord, key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise InternalError(f"flower record: {key!r} must be a str (got {type(value).__name__})")
    return value


def _blobs(record: ConfigRecord, key: str) -> tuple[bytes, ...]:
    value = record.get(key, [])
    if not isinstance(value, list) or not all(isinstance(b, bytes) for b in value):
        raise InternalError(f"flower record: {key!r} must be a list of bytes")
    return tuple(b for b in value if isinstance(b, bytes))
