"""SignalSet and AttackInputs refuse inconsistent arrays, naming the field."""

from __future__ import annotations

import numpy as np
import pytest

from privaudit.attacks.scores import AttackInputs, SignalSet
from privaudit.core.errors import DataError


def test_signal_arrays_of_different_lengths_are_refused_by_name() -> None:
    with pytest.raises(DataError, match=r"SignalSet\.phi has length 2; loss has 3"):
        SignalSet(loss=[1.0, 2.0, 3.0], phi=[0.1, 0.2])


def test_non_finite_and_out_of_range_signals_are_refused() -> None:
    with pytest.raises(DataError, match="non-finite"):
        SignalSet(loss=[1.0, np.nan])
    with pytest.raises(DataError, match=r"prob_true must lie in \[0, 1\]"):
        SignalSet(loss=[1.0], prob_true=[1.5])
    with pytest.raises(DataError, match="zlib_len must be > 0"):
        SignalSet(loss=[1.0], zlib_len=[0])


def test_per_token_arrays_must_align_with_the_token_log_probs() -> None:
    ell = [np.array([-0.1, -0.2]), np.array([-1.0])]
    SignalSet(loss=[0.1, 1.0], token_logprobs=ell, token_mu=[np.zeros(2), np.zeros(1)])
    with pytest.raises(DataError, match="token_mu: per-example lengths differ"):
        SignalSet(loss=[0.1, 1.0], token_logprobs=ell, token_mu=[np.zeros(1), np.zeros(2)])
    with pytest.raises(DataError, match="token_logprobs has 2 examples; loss has 3"):
        SignalSet(loss=[0.1, 1.0, 2.0], token_logprobs=ell)
    with pytest.raises(DataError, match="token_sigma must be >= 0"):
        SignalSet(loss=[0.1, 1.0], token_logprobs=ell, token_sigma=[-np.ones(2), np.ones(1)])


def test_take_selects_every_signal_of_the_chosen_examples() -> None:
    s = SignalSet(loss=[1.0, 2.0, 3.0], phi=[0.1, 0.2, 0.3],
                  token_logprobs=[np.array([-1.0]), np.array([-2.0, -2.5]), np.array([-3.0])])
    t = s.take(np.array([False, True, True]))
    assert t.loss.tolist() == [2.0, 3.0] and t.phi is not None and t.phi.tolist() == [0.2, 0.3]
    assert t.token_logprobs is not None and t.token_logprobs[0].tolist() == [-2.0, -2.5]


def test_keep_mask_must_be_boolean_and_shaped_refs_by_examples() -> None:
    target = SignalSet(loss=[1.0, 2.0])
    refs = [SignalSet(loss=[1.0, 2.0])]
    with pytest.raises(DataError, match=r"keep has shape \(2, 1\)"):
        AttackInputs(target=target, references=refs, keep=np.ones((2, 1), dtype=bool))
    with pytest.raises(DataError, match="boolean"):
        AttackInputs(target=target, references=refs, keep=np.ones((1, 2)))
    with pytest.raises(DataError, match=r"references\[0\] has 1 examples"):
        AttackInputs(target=target, references=[SignalSet(loss=[1.0])])


def test_population_needs_one_signal_set_per_reference() -> None:
    target = SignalSet(loss=[1.0])
    with pytest.raises(DataError, match="population_references has 0 models; references 1"):
        AttackInputs(target=target, references=[SignalSet(loss=[1.0])],
                     population_target=SignalSet(loss=[0.5, 0.7]))


def test_split_population_moves_known_non_members_out_of_the_audit() -> None:
    target = SignalSet(loss=[1.0, 2.0, 3.0, 4.0])
    refs = [SignalSet(loss=[1.5, 2.5, 3.5, 4.5])]
    keep = np.array([[True, False, True, False]])
    new, kept = AttackInputs(target=target, references=refs, keep=keep).split_population([1, 2])
    assert kept.tolist() == [0, 3]
    assert new.target.loss.tolist() == [1.0, 4.0]
    assert new.references[0].loss.tolist() == [1.5, 4.5]
    assert new.keep is not None and new.keep.tolist() == [[True, False]]
    assert new.population_target is not None
    assert new.population_target.loss.tolist() == [2.0, 3.0]
    assert new.population_references[0].loss.tolist() == [2.5, 3.5]
    assert new.population_keep is not None and new.population_keep.tolist() == [[False, True]]
    with pytest.raises(DataError, match="already set"):
        new.split_population([0])
