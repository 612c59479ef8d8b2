"""Which FPRs a set of held-out non-members can resolve (pure Python: the gate and the
verdict read it without loading numpy or scikit-learn).

At a threshold whose FPR is f, n non-members show about n·f false positives. With fewer than
:data:`MIN_FALSE_POSITIVES` of them the best threshold is set by the top one or two
non-members, the TPR there has no reliable point, and the report calls it *not estimable*:
it states only an upper bound (:func:`privaudit.attacks.metrics.rate_at_fpr`). The smallest
FPR n non-members resolve is therefore 10/n.

>>> min_resolvable_fpr(100), nonmembers_needed(0.001), resolves(9_999, 0.001)
(0.1, 10000, False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MIN_FALSE_POSITIVES",
    "min_resolvable_fpr",
    "nonmembers_needed",
    "resolves",
    "tpr_estimable",
]

#: An FPR f is resolvable by n non-members when n·f ≥ this: at least ten false positives at
#: the threshold (the rule of thumb of Carlini et al., "Membership Inference Attacks From
#: First Principles", 2022).
MIN_FALSE_POSITIVES = 10


def min_resolvable_fpr(n_nonmembers: int) -> float:
    """The smallest FPR ``n_nonmembers`` resolve: 10/n (1.0 with ten or fewer).

    >>> min_resolvable_fpr(100), min_resolvable_fpr(10_000), min_resolvable_fpr(4)
    (0.1, 0.001, 1.0)
    """
    return 1.0 if n_nonmembers <= MIN_FALSE_POSITIVES else MIN_FALSE_POSITIVES / n_nonmembers


def nonmembers_needed(fpr: float) -> int:
    """The fewest non-members that resolve ``fpr``: ⌈10/FPR⌉.

    >>> nonmembers_needed(0.01), nonmembers_needed(0.001)
    (1000, 10000)
    """
    return math.ceil(MIN_FALSE_POSITIVES / fpr - 1e-9)


def resolves(n_nonmembers: int, fpr: float) -> bool:
    """Whether ``n_nonmembers`` resolve ``fpr``: at least 10/FPR of them.

    >>> resolves(1000, 0.01), resolves(999, 0.01), resolves(1000, 0.001)
    (True, False, False)
    """
    return n_nonmembers >= nonmembers_needed(fpr)


def tpr_estimable(rate: Mapping[str, Any], n_nonmembers: int, fpr: float) -> bool:
    """Whether a report's ``tpr_at_fpr`` entry (a dict of report.json) is a point: not marked
    ``estimable: false``, has a value, and ``n_nonmembers`` resolve ``fpr`` (a report of
    schema ≤ 0.4 gave a point even when they did not).

    >>> tpr_estimable({"value": 0.2, "ci_low": 0.1, "ci_high": 0.3}, 1000, 0.01)
    True
    >>> tpr_estimable({"value": 0.2, "ci_low": 0.1, "ci_high": 0.3}, 400, 0.01)  # schema 0.4
    False
    >>> tpr_estimable({"value": None, "ci_low": 0.0, "ci_high": 0.3, "estimable": False},
    ...               1000, 0.01)
    False
    """
    return (rate.get("estimable", True) is not False and rate.get("value") is not None
            and resolves(n_nonmembers, fpr))
