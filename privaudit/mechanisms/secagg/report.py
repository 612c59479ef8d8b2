"""The ``secure_aggregation`` section of ``report.json`` (DESIGN.md keys) and its threat model.

Build it with :func:`build_report` from the config and the run's measurements
(:mod:`privaudit.mechanisms.secagg.measure`) and the rejections of every round's
:class:`~privaudit.mechanisms.secagg.server.SecureAggregator`.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from privaudit.mechanisms.secagg.config import SecureAggregationConfig
from privaudit.mechanisms.secagg.params import security_bits
from privaudit.mechanisms.secagg.server import Rejection

#: What homomorphic secure aggregation does and does not protect (REFERENCE.md), in words a
#: regulator can read. Every report carries this list.
THREAT_MODEL: tuple[str, ...] = (
    "The server receives only ciphertexts and a context without the secret key: it can add "
    "client updates but cannot decrypt any of them, nor the sum.",
    "All clients share one secret key: a client colluding with the server can decrypt any "
    "single client's update.",
    "The decrypted sum is revealed: with fewer than 3 clients in a round a participant could "
    "subtract its own update and read another's, so every round needs at least min_clients "
    "accepted updates.",
    "Homomorphic encryption gives no differential privacy: the aggregate and the trained model "
    "can still leak training data; updates are clipped (and noised under DP) on each client "
    "before encryption.",
    "The server can drop, replay or reorder ciphertexts: updates carry no integrity "
    "protection; manifest checks and ciphertext digests catch malformed or corrupted updates, "
    "not a malicious sender.",
    "Decrypted CKKS results must never go back to a party holding the matching ciphertexts "
    "(key-recovery attack, Li & Micciancio 2021); the released global model is such a result, "
    "and no noise flooding is applied against this.",
)


class SecureAggregationReport(BaseModel):
    """``report.json`` → ``secure_aggregation``. Fields other than ``enabled`` are None when off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    scheme: str | None = None
    poly_modulus_degree: int | None = None
    coeff_mod_bit_sizes: list[int] | None = None
    scale_bits: int | None = None
    security_bits: int | None = Field(
        default=None, description="HE-standard tier met (256/192/128); 0 = below 128, no claim"
    )
    expansion_ratio: float | None = Field(
        default=None, description="ciphertext bytes / fp32 bytes"
    )
    max_abs_error: float | None = Field(
        default=None, description="max |decrypted mean - plaintext weighted mean| on the run"
    )
    min_clients: int | None = None
    insecure: bool = Field(
        default=False, description="a weakened setting was allowed by allow_insecure"
    )
    threat_model: list[str] = Field(default_factory=list)
    rejections: list[Rejection] = Field(default_factory=list)


def build_report(
    cfg: SecureAggregationConfig,
    *,
    expansion_ratio: float | None,
    max_abs_error: float | None,
    rejections: Iterable[Rejection] = (),
    insecure: bool = False,
) -> SecureAggregationReport:
    """The report section for ``cfg`` with the run's measurements; a bare one when disabled.

    ``insecure`` comes from :attr:`ParamsVerdict.insecure
    <privaudit.mechanisms.secagg.params.ParamsVerdict>` of the run's key holder.
    """
    if not cfg.enabled:
        return SecureAggregationReport(enabled=False)
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
