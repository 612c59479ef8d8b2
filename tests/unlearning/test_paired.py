"""The paired comparison with the oracle (``unlearning/paired.py``) checked as statistics: the
bootstrap interval of the AUC difference covers the true difference, the swap test errs at
its level on exchangeable models, the retraining prediction interval holds another
retraining, and matching keeps the held-out records like the forget set."""

from __future__ import annotations

import numpy as np
import pytest

from privaudit.mechanisms.tasks import EncodedSet
from privaudit.unlearning.paired import (
    auc_difference,
    match_nonmembers,
    retrain_interval,
    swap_test,
)


def _pair(rng: np.random.Generator, n: int, m: int, shift_u: float, shift_o: float,
          noise: float = 0.5) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    forget, held = rng.normal(0, 1, n), rng.normal(0, 1, m)
    return tuple((-(forget + s + rng.normal(0, noise, n)), -(held + rng.normal(0, noise, m)))
                 for s in (shift_u, shift_o))


def _true_difference(shift_u: float, shift_o: float, noise: float = 0.5) -> float:
    """AUC_u − AUC_o of the population: P(score_f > score_h) under each model."""
    from scipy.stats import norm

    scale = np.sqrt(2 * (1 + noise**2))
    return float(norm.cdf(shift_u / scale) - norm.cdf(shift_o / scale))


@pytest.mark.parametrize(("n", "m"), [(20, 60), (60, 120)])
def test_the_paired_interval_of_the_auc_difference_covers_the_true_difference(
        n: int, m: int) -> None:
    """Percentile bootstrap over records, 95%: coverage over 300 simulated record samples at
    least 0.90 (0.95 less three simulation standard errors and the bootstrap's small-sample
    shortfall)."""
    rng = np.random.default_rng(n)
    truth, hits, runs = _true_difference(1.0, 0.5), 0, 300
    for _ in range(runs):
        after, oracle = _pair(rng, n, m, 1.0, 0.5)
        d = auc_difference(after, oracle, confidence=0.95, n_resamples=300,
                           seed=int(rng.integers(2**31)))
        assert d is not None
        hits += d.ci_low <= truth <= d.ci_high
    assert hits / runs >= 0.90


@pytest.mark.parametrize("n", [3, 10])
def test_the_swap_test_rejects_exchangeable_models_at_most_at_its_level(n: int) -> None:
    rng = np.random.default_rng(7 + n)
    runs = 300
    rejected = sum(swap_test(*_pair(rng, n, 40, 0.3, 0.3), n_resamples=300,
                             seed=int(rng.integers(2**31))) < 0.05 for _ in range(runs))
    assert rejected / runs <= 0.05 + 3 * (0.05 * 0.95 / runs) ** 0.5
    # and it can reject: a model that still ranks ten forget records far above
    powered = sum(swap_test(*_pair(rng, 10, 40, 3.0, 0.0), n_resamples=300,
                            seed=int(rng.integers(2**31))) < 0.05 for _ in range(50))
    assert powered >= 45


def test_the_retraining_interval_holds_another_retraining_at_its_level() -> None:
    """k + 1 = 3 retrainings' AUCs drawn N(0.6, 0.05): a fourth falls outside the 95%
    prediction interval at most 5% of the time (plus three simulation standard errors)."""
    rng = np.random.default_rng(3)
    runs, outside = 2000, 0
    for _ in range(runs):
        spread = retrain_interval(rng.normal(0.6, 0.05, 3), confidence=0.95)
        assert spread is not None and spread.replicates == 2
        another = rng.normal(0.6, 0.05)
        outside += not spread.low <= another <= spread.high
    assert outside / runs <= 0.05 + 3 * (0.05 * 0.95 / runs) ** 0.5


def _set(lengths: list[int], labels: list[int] | None) -> EncodedSet:
    return EncodedSet(record_ids=tuple(f"r{i}" for i in range(len(lengths))),
                      input_ids=tuple(tuple(range(n)) for n in lengths),
                      labels=None if labels is None else tuple(labels), pad_id=0)


def test_matching_keeps_the_held_out_records_with_the_forget_set_labels_and_lengths() -> None:
    rng = np.random.default_rng(0)
    held = _set([int(v) for v in rng.integers(5, 60, 200)],
                [int(v) for v in rng.integers(0, 4, 200)])
    forget = _set([40, 50, 58], [2, 3, 2])  # long records of two labels (held-out: 5–59)
    match = match_nonmembers(forget, held)
    assert match.matched and 20 <= len(match.indices) < 100
    assert all(held.labels[i] in (2, 3) and len(held.input_ids[i]) >= 30  # type: ignore[index]
               for i in match.indices)
    assert "2 label(s)" in match.statement and "2 of 4 length band(s)" in match.statement
    # too few matches: every held-out record is used, and the statement says why
    few = match_nonmembers(forget, held, min_records=150)
    assert not few.matched and len(few.indices) == 200 and "fewer than 150" in few.statement
