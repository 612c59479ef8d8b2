"""The check that reference models train like the attacked model (their IN/OUT loss gap)."""

from __future__ import annotations

import numpy as np
import pytest

from privaudit.attacks.reference_fit import FACTOR, fit_warning, gap, reference_gaps

MEMBER = np.array([True] * 4 + [False] * 4)
KEEP = np.array([[True, False] * 4, [False, True] * 4])


def _refs(gap_size: float) -> np.ndarray:
    """Two references whose IN records' loss is ``gap_size`` below their OUT records'."""
    return np.where(KEEP, 2.0 - gap_size, 2.0)


def _target(gap_size: float) -> np.ndarray:
    return np.where(MEMBER, 2.0 - gap_size, 2.0)


def test_gaps_are_out_minus_in_mean_loss() -> None:
    assert gap(_target(0.5), MEMBER) == 0.5
    assert reference_gaps(_refs(0.3), KEEP) == pytest.approx([0.3, 0.3])
    assert np.isnan(gap(np.ones(3), np.ones(3, dtype=bool)))


def test_references_that_learned_like_the_target_are_not_flagged() -> None:
    for ratio in (1 / FACTOR * 1.01, 1.0, FACTOR * 0.99):
        assert fit_warning(_target(0.5), MEMBER, _refs(0.5 * ratio), KEEP) is None


def test_references_that_learned_much_less_or_much_more_than_the_target_are_flagged() -> None:
    less = fit_warning(_target(0.5), MEMBER, _refs(0.5 / (FACTOR * 1.1)), KEEP)
    more = fit_warning(_target(0.5), MEMBER, _refs(0.5 * FACTOR * 1.1), KEEP)
    assert less is not None and "learned their members less" in less and "0.500" in less
    assert more is not None and "learned their members more" in more


def test_an_undefined_gap_gives_no_warning() -> None:
    assert fit_warning(_target(0.5), np.ones(8, dtype=bool), _refs(0.5), KEEP) is None
