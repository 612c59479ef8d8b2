"""Homomorphic secure aggregation of client updates (TenSEAL CKKS, add-only circuit).

One round::

    holder = KeyHolder.generate(cfg)                       # clients' side / key authority
    agg = SecureAggregator(holder.server_context(), expected=ExpectedRound.from_state(
        global_adapter, adapter_config_hash=h, round=r), min_clients=cfg.min_clients)
    for k in clients:                                     # clip first, outside this package
        agg.add(encrypt_update(delta_k, weight=w_k, round=r, client_id=k,
                               adapter_config_hash=h, context_bytes=holder.client_context()))
    mean = holder.decrypt_mean(agg.finish())              # Σ w_k·delta_k / Σ w_k
"""

from privaudit.mechanisms.secagg.client import encrypt_update
from privaudit.mechanisms.secagg.config import SecureAggregationConfig
from privaudit.mechanisms.secagg.keys import KeyHolder
from privaudit.mechanisms.secagg.manifest import (
    EncryptedSum,
    EncryptedUpdate,
    ExpectedRound,
    RejectionReason,
    UpdateManifest,
)
from privaudit.mechanisms.secagg.measure import (
    expansion_ratio,
    max_abs_error,
    plaintext_weighted_mean,
)
from privaudit.mechanisms.secagg.packing import TensorLayout, flatten, unflatten
from privaudit.mechanisms.secagg.params import (
    InsecureParametersWarning,
    ParamsVerdict,
    check_params,
    security_bits,
    validate_params,
    value_bound,
)
from privaudit.mechanisms.secagg.report import (
    THREAT_MODEL,
    SecureAggregationReport,
    build_report,
)
from privaudit.mechanisms.secagg.server import Rejection, SecureAggregator

__all__ = [
    "THREAT_MODEL",
    "EncryptedSum",
    "EncryptedUpdate",
    "ExpectedRound",
    "InsecureParametersWarning",
    "KeyHolder",
    "ParamsVerdict",
    "Rejection",
    "RejectionReason",
    "SecureAggregationConfig",
    "SecureAggregationReport",
    "SecureAggregator",
    "TensorLayout",
    "UpdateManifest",
    "build_report",
    "check_params",
    "encrypt_update",
    "expansion_ratio",
    "flatten",
    "max_abs_error",
    "plaintext_weighted_mean",
    "security_bits",
    "unflatten",
    "validate_params",
    "value_bound",
]
