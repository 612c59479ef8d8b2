"""Attack AUCs within each label: members compared with non-members of their own label only.

When members and non-members differ in label mix, the pooled AUC measures the labels as well
as memorisation (a label the model finds easy looks "member-like" whoever holds it). The
within-label AUC compares each member only with non-members of the same label: per label
(``auc_by_label``, labels with at least ``MIN_PER_SIDE`` members and non-members), and the
pair-weighted mean over those labels (``auc_within_label``) — the Mann–Whitney AUC over the
same-label pairs only (``sklearn.metrics.roc_auc_score`` per label).

>>> import numpy as np
>>> scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
>>> is_member = np.array([1, 1, 1, 0, 0, 1, 1, 0, 0, 0], bool)
>>> labels = ["a"] * 5 + ["b"] * 5
>>> per, pooled = within_label(scores, is_member, labels, min_per_side=2)
>>> per, pooled
({'a': 1.0, 'b': 1.0}, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = ["MIN_PER_SIDE", "within_label"]

#: members and non-members a label needs for its own AUC
MIN_PER_SIDE = 5


def within_label(scores: np.ndarray, is_member: np.ndarray, labels: Sequence[str | None], *,
                 min_per_side: int = MIN_PER_SIDE) -> tuple[dict[str, float], float | None]:
    """(AUC per label, the pair-weighted within-label AUC); ({}, None) when no label has
    enough of both sides."""
    tags = np.asarray([lab or "" for lab in labels], dtype=object)
    per: dict[str, float] = {}
    weight: dict[str, int] = {}
    for label in sorted({t for t in tags if t}):
        pick = tags == label
        n_in, n_out = int(is_member[pick].sum()), int((~is_member[pick]).sum())
        if n_in >= min_per_side and n_out >= min_per_side:
            per[label] = float(roc_auc_score(is_member[pick], scores[pick]))
            weight[label] = n_in * n_out
    if not per:
        return {}, None
    total = sum(weight.values())
    return per, float(sum(per[k] * weight[k] for k in per) / total)
