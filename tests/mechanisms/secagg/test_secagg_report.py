"""The report section has DESIGN.md's keys, states the threat model and lists rejections."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from privaudit.mechanisms.secagg import (
    THREAT_MODEL,
    Rejection,
    SecureAggregationConfig,
    SecureAggregationReport,
    build_report,
)

DESIGN_KEYS = {
    "enabled", "scheme", "poly_modulus_degree", "coeff_mod_bit_sizes", "scale_bits",
    "security_bits", "expansion_ratio", "max_abs_error", "threat_model",
}


CKKS = SecureAggregationConfig(enabled=True, masking="none")


def test_report_has_the_design_keys_and_the_run_measurements():
    rejection = Rejection(client_id="c9", round=2, reason="stale_round", detail="round 1")
    report = build_report(CKKS, expansion_ratio=8.37,
                          max_abs_error=5e-12, rejections=[rejection])
    data = json.loads(report.model_dump_json())
    assert set(data) >= DESIGN_KEYS
    assert data["security_bits"] == 256 and data["coeff_mod_bit_sizes"] == [60, 40]
    assert data["expansion_ratio"] == 8.37 and data["max_abs_error"] == 5e-12
    assert data["rejections"] == [
        {"client_id": "c9", "round": 2, "reason": "stale_round", "detail": "round 1"}
    ]
    assert SecureAggregationReport.model_validate(data) == report


def test_threat_model_states_what_homomorphic_aggregation_does_not_protect():
    text = " ".join(build_report(CKKS, expansion_ratio=None,
                                 max_abs_error=None).threat_model)
    for claim in ("share one secret key", "decrypted sum is revealed", "no differential privacy",
                  "drop, replay", "Li & Micciancio"):
        assert claim in text
    assert len(THREAT_MODEL) >= 5


def test_disabled_secure_aggregation_reports_only_that_it_is_off():
    report = build_report(SecureAggregationConfig(), expansion_ratio=8.0, max_abs_error=0.0)
    assert report.enabled is False and report.security_bits is None and report.threat_model == []


def test_report_rejects_unknown_keys_and_unknown_rejection_reasons():
    with pytest.raises(ValidationError):
        SecureAggregationReport(enabled=True, secret="x")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Rejection(client_id="c", round=0, reason="bad_vibes", detail="")  # type: ignore[arg-type]
