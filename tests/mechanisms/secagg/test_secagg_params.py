"""CKKS parameters: the 128-bit table is enforced, every problem names its field."""

from __future__ import annotations

import doctest
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privaudit.core.errors import ConfigError, SecureAggregationError
from privaudit.mechanisms.secagg import (
    InsecureParametersWarning,
    KeyHolder,
    SecureAggregationConfig,
    check_params,
    packing,
    params,
    security_bits,
    validate_params,
    value_bound,
)
from privaudit.mechanisms.secagg.params import MAX_COEFF_BITS_128


def test_default_parameters_pass_and_meet_the_256_bit_tier():
    cfg = SecureAggregationConfig(enabled=True)
    assert check_params(cfg) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = validate_params(cfg)
    assert verdict.security_bits == 256 and not verdict.insecure


@pytest.mark.parametrize(
    ("n", "bits", "tier"),
    [(8192, [60, 40, 40, 60], 128), (4096, [60, 40], 128), (4096, [30, 20, 20], 192),
     (8192, [60, 60, 60, 60], 0), (4096, [60, 40, 40], 0), (16384, [60] * 7 + [18], 128),
     (3000, [30, 30], 0)],
)
def test_security_bits_follow_the_he_standard_table(n, bits, tier):
    assert security_bits(n, bits) == tier


@given(st.sampled_from(sorted(MAX_COEFF_BITS_128)), st.integers(10, 1000))
def test_security_bits_reach_128_exactly_within_the_128_bit_bound(n, total):
    assert (security_bits(n, [total]) >= 128) == (total <= MAX_COEFF_BITS_128[n])


def test_modulus_over_the_128_bit_bound_is_refused_naming_the_field():
    cfg = SecureAggregationConfig(coeff_mod_bit_sizes=[60, 40, 40, 60], poly_modulus_degree=4096)
    problems = check_params(cfg)
    assert len(problems) == 1
    assert problems[0].startswith("secure_aggregation.coeff_mod_bit_sizes: total 200 bits")
    assert "109" in problems[0] and "(got [60, 40, 40, 60])" in problems[0]
    with pytest.raises(SecureAggregationError) as info:
        validate_params(cfg)
    assert isinstance(info.value, ConfigError) and info.value.exit_code == 2
    assert info.value.problems == problems


def test_every_problem_is_collected_before_reporting():
    cfg = SecureAggregationConfig(poly_modulus_degree=5000, coeff_mod_bit_sizes=[30, 70, 50],
                                  scale_bits=40, min_clients=2)
    fields = sorted({p.split(":")[0] for p in check_params(cfg)})
    assert fields == [
        "secure_aggregation.coeff_mod_bit_sizes",
        "secure_aggregation.min_clients",
        "secure_aggregation.poly_modulus_degree",
        "secure_aggregation.scale_bits",
    ]
    assert all("(got " in p for p in check_params(cfg))


def test_scale_must_match_the_middle_primes_and_sit_below_the_first():
    mismatch = check_params(SecureAggregationConfig(coeff_mod_bit_sizes=[60, 30, 60]))
    assert mismatch == [
        "secure_aggregation.scale_bits: must equal every middle prime [30] so that a rescale "
        "keeps the scale (got 40)"
    ]
    no_headroom = check_params(SecureAggregationConfig(coeff_mod_bit_sizes=[40, 40]))
    assert len(no_headroom) == 1 and "below the first prime" in no_headroom[0]


def test_allow_insecure_accepts_two_clients_with_a_warning_and_a_flag():
    cfg = SecureAggregationConfig(min_clients=2, allow_insecure=True)
    assert check_params(cfg) == []
    assert check_params(cfg.model_copy(update={"allow_insecure": False}))[0].startswith(
        "secure_aggregation.min_clients"
    )
    with pytest.warns(InsecureParametersWarning, match="min_clients"):
        holder = KeyHolder.generate(cfg)
    assert holder.verdict.insecure and holder.verdict.security_bits == 256


def test_allow_insecure_cannot_lift_the_modulus_bound_that_seal_enforces():
    cfg = SecureAggregationConfig(poly_modulus_degree=4096, coeff_mod_bit_sizes=[60, 40, 40, 60],
                                  allow_insecure=True)
    assert check_params(cfg) == []
    with pytest.warns(InsecureParametersWarning, match="128-bit security bound"):
        verdict = validate_params(cfg)
    assert verdict.insecure and verdict.security_bits == 0
    with pytest.warns(InsecureParametersWarning), pytest.raises(
        SecureAggregationError, match="SEAL refuses"
    ):
        KeyHolder.generate(cfg)


def test_value_bound_is_the_integer_headroom_of_the_first_prime():
    assert value_bound(SecureAggregationConfig()) == 2.0**19
    narrow = SecureAggregationConfig(coeff_mod_bit_sizes=[50, 30], scale_bits=30)
    assert value_bound(narrow) == 2.0**19


def test_worked_numbers_in_docstrings_hold():
    for module in (params, packing):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
