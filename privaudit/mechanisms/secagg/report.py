"""The ``secure_aggregation`` section of ``report.json`` (DESIGN.md keys) and its threat model.

Build it with :func:`build_report` from the config and the run's measurements
(:mod:`privaudit.mechanisms.secagg.measure`) and the rejections of every round's
:class:`~privaudit.mechanisms.secagg.server.SecureAggregator`.
"""

from __future__ import annotations

from collections.abc import Iterable

from privaudit.mechanisms.secagg.config import SecureAggregationConfig
from privaudit.mechanisms.secagg.params import security_bits
from privaudit.mechanisms.secagg.results import MASKED_THREAT_MODEL as MASKED_THREAT_MODEL
from privaudit.mechanisms.secagg.results import THREAT_MODEL as THREAT_MODEL
from privaudit.mechanisms.secagg.results import Rejection
from privaudit.mechanisms.secagg.results import SecureAggregationReport as SecureAggregationReport


def build_report(
    cfg: SecureAggregationConfig,
    *,
    expansion_ratio: float | None,
    max_abs_error: float | None,
    rejections: Iterable[Rejection] = (),
    insecure: bool = False,
    quantization_error_bound: float | None = None,
    dropped: Iterable[str] = (),
) -> SecureAggregationReport:
    """The report section for ``cfg`` with the run's measurements; a bare one when disabled.

    ``insecure`` comes from :attr:`ParamsVerdict.insecure
    <privaudit.mechanisms.secagg.params.ParamsVerdict>` of the run's key holder.
    """
    if not cfg.enabled:
        return SecureAggregationReport(enabled=False)
    if cfg.masking == "pairwise":
        from privaudit.mechanisms.secagg.bfv import BFV_COEFF_BITS, BFV_SLOTS

        return SecureAggregationReport(
            enabled=True, scheme="bfv", masking="pairwise",
            poly_modulus_degree=BFV_SLOTS, coeff_mod_bit_sizes=list(BFV_COEFF_BITS),
            security_bits=security_bits(BFV_SLOTS, list(BFV_COEFF_BITS)),
            quantization_bits=cfg.quantization_bits,
            plain_modulus_bits=cfg.plain_modulus_bits,
            quantization_error_bound=quantization_error_bound,
            expansion_ratio=expansion_ratio, max_abs_error=max_abs_error,
            min_clients=cfg.min_clients, insecure=insecure, threat_model=list(MASKED_THREAT_MODEL),
            rejections=list(rejections), dropped=list(dropped))
    return SecureAggregationReport(
        enabled=True,
        scheme=cfg.scheme,
        poly_modulus_degree=cfg.poly_modulus_degree,
        coeff_mod_bit_sizes=list(cfg.coeff_mod_bit_sizes),
        scale_bits=cfg.scale_bits,
        security_bits=security_bits(cfg.poly_modulus_degree, cfg.coeff_mod_bit_sizes),
        expansion_ratio=expansion_ratio,
        max_abs_error=max_abs_error,
        min_clients=cfg.min_clients,
        insecure=insecure,
        threat_model=list(THREAT_MODEL),
        rejections=list(rejections),
    )
