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

from __future__ import annotations

from typing import TYPE_CHECKING

from privaudit.core.lazy import lazy_exports

if TYPE_CHECKING:
    from privaudit.mechanisms.secagg.client import encrypt_update
    from privaudit.mechanisms.secagg.config import SecureAggregationConfig
    from privaudit.mechanisms.secagg.keys import KeyHolder
    from privaudit.mechanisms.secagg.manifest import (
        EncryptedSum,
        EncryptedUpdate,
        ExpectedRound,
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
    from privaudit.mechanisms.secagg.report import build_report
    from privaudit.mechanisms.secagg.results import (
        THREAT_MODEL,
        Rejection,
        RejectionReason,
        SecureAggregationReport,
    )
    from privaudit.mechanisms.secagg.server import SecureAggregator

_EXPORTS = {
    "EncryptedSum": "privaudit.mechanisms.secagg.manifest",
    "EncryptedUpdate": "privaudit.mechanisms.secagg.manifest",
    "ExpectedRound": "privaudit.mechanisms.secagg.manifest",
    "InsecureParametersWarning": "privaudit.mechanisms.secagg.params",
    "KeyHolder": "privaudit.mechanisms.secagg.keys",
    "ParamsVerdict": "privaudit.mechanisms.secagg.params",
    "Rejection": "privaudit.mechanisms.secagg.results",
    "RejectionReason": "privaudit.mechanisms.secagg.results",
    "SecureAggregationConfig": "privaudit.mechanisms.secagg.config",
    "SecureAggregationReport": "privaudit.mechanisms.secagg.results",
    "SecureAggregator": "privaudit.mechanisms.secagg.server",
    "THREAT_MODEL": "privaudit.mechanisms.secagg.results",
    "TensorLayout": "privaudit.mechanisms.secagg.packing",
    "UpdateManifest": "privaudit.mechanisms.secagg.manifest",
    "build_report": "privaudit.mechanisms.secagg.report",
    "check_params": "privaudit.mechanisms.secagg.params",
    "encrypt_update": "privaudit.mechanisms.secagg.client",
    "expansion_ratio": "privaudit.mechanisms.secagg.measure",
    "flatten": "privaudit.mechanisms.secagg.packing",
    "max_abs_error": "privaudit.mechanisms.secagg.measure",
    "plaintext_weighted_mean": "privaudit.mechanisms.secagg.measure",
    "security_bits": "privaudit.mechanisms.secagg.params",
    "unflatten": "privaudit.mechanisms.secagg.packing",
    "validate_params": "privaudit.mechanisms.secagg.params",
    "value_bound": "privaudit.mechanisms.secagg.params",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
