"""Canary exposure in bits: exact on a known rank, extrapolated from a sample of candidates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import skewnorm

from privaudit.attacks.exposure import estimate_exposure, exposure_from_rank
from privaudit.core.errors import ConfigError, DataError


@pytest.mark.parametrize(("rank", "space", "bits"), [
    (1, 10**6, math.log2(10**6)), (10**6, 10**6, 0.0), (1000, 10**6, math.log2(1000)),
    (4, 1024, 8.0),
])
def test_exposure_of_a_known_rank_is_log_space_minus_log_rank(rank, space, bits) -> None:
    assert exposure_from_rank(rank, space) == pytest.approx(bits)


def test_a_rank_outside_the_space_is_refused() -> None:
    with pytest.raises(ConfigError, match="rank"):
        exposure_from_rank(0, 100)
    with pytest.raises(ConfigError, match="space_size"):
        exposure_from_rank(1, 1)


def test_empirical_estimate_extrapolates_the_sample_rank_to_the_space() -> None:
    # 999 candidates 1..999; the canary (99.5) beats 900 of them: sample rank 100 of 1000,
    # so about 10% of R is more likely: rank 1e5 in a space of 1e6 -> log2(10) bits
    cand = np.arange(1.0, 1000.0)
    est = estimate_exposure(99.5, cand, 10**6, method="empirical")
    assert est.bits == pytest.approx(math.log2(10.0))
    assert est.rank == pytest.approx(1e5)


def test_empirical_estimate_cannot_claim_more_than_the_sample_resolves() -> None:
    est = estimate_exposure(-100.0, np.arange(1.0, 1000.0), 10**12, method="empirical")
    assert est.bits == pytest.approx(math.log2(1000.0))


def test_skew_normal_fit_recovers_the_exposure_far_beyond_the_sample() -> None:
    # candidates from a known skew-normal; the canary sits at its 1e-6 quantile: the true
    # exposure is log2(1e6) = 19.93 bits, far beyond what 5000 samples resolve (12.3 bits)
    dist = skewnorm(3.0, loc=5.0, scale=1.5)
    cand = dist.rvs(size=5000, random_state=np.random.default_rng(0))
    canary = float(dist.ppf(1e-6))
    est = estimate_exposure(canary, cand, 10**9)
    assert est.method == "skewnorm"
    assert est.bits == pytest.approx(math.log2(1e6), abs=1.5)
    assert est.bits > estimate_exposure(canary, cand, 10**9, method="empirical").bits + 5


def test_exposure_is_capped_at_the_size_of_the_space() -> None:
    cand = np.random.default_rng(1).normal(10.0, 1.0, 200)
    est = estimate_exposure(-50.0, cand, 2**20, method="normal")
    assert est.bits == pytest.approx(20.0) and est.rank == pytest.approx(1.0)
    assert estimate_exposure(30.0, cand, 2**20, method="normal").bits == pytest.approx(0, abs=1e-9)


def test_bad_exposure_inputs_are_refused() -> None:
    with pytest.raises(ConfigError, match="method"):
        estimate_exposure(1.0, np.arange(20.0), 100, method="kde")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=">= 10"):
        estimate_exposure(1.0, np.arange(5.0), 100)
    with pytest.raises(DataError, match="finite"):
        estimate_exposure(float("nan"), np.arange(20.0), 100)
