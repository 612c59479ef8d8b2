"""Within-label attack AUCs (#26): a label mix that differs between members and non-members
moves the pooled AUC; comparing each member only with non-members of its own label does not."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from privaudit.attacks.strata import within_label


def test_a_label_mix_gap_inflates_the_pooled_auc_but_not_the_within_label_one() -> None:
    """No memorisation at all: scores depend on the label only ("easy" records score higher
    whoever holds them); members are 80% easy, non-members 20%."""
    rng = np.random.default_rng(0)
    n = 400
    member_labels = np.where(rng.random(n) < 0.8, "easy", "hard")
    other_labels = np.where(rng.random(n) < 0.2, "easy", "hard")
    labels = np.r_[member_labels, other_labels]
    scores = np.where(labels == "easy", 1.0, 0.0) + rng.normal(0, 0.5, 2 * n)
    is_member = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    pooled = roc_auc_score(is_member, scores)
    per, within = within_label(scores, is_member, list(labels))
    assert pooled > 0.7  # the labels, not memorisation
    assert within is not None and abs(within - 0.5) < 0.05
    assert set(per) == {"easy", "hard"} and all(abs(v - 0.5) < 0.08 for v in per.values())


def test_labels_with_too_few_members_or_non_members_get_no_auc_of_their_own() -> None:
    scores = np.arange(12, dtype=float)
    is_member = np.array([1] * 6 + [0] * 6, bool)
    labels = ["a"] * 5 + ["b"] + ["a"] * 5 + ["b"]
    per, within = within_label(scores, is_member, labels)
    assert set(per) == {"a"} and within == per["a"]
    assert within_label(scores, is_member, [None] * 12) == ({}, None)
