"""Test a DP claim declared for a model privaudit did not train, from below, with the attacks.

An (ε, δ)-DP training bounds every membership test: at a false-positive rate FPR no attack
finds more than ``min(1, e^ε·FPR + δ, 1 − (1 − δ − FPR)/e^ε)`` of the members
(:func:`~privaudit.attacks.dp_audit.max_tpr_under_dp`). For each attack and each reported FPR
this module bounds the true FPR from above and the TPR from below (Clopper–Pearson, the
attack's counts) and calls the claim contradicted when the TPR's lower bound exceeds what the
claim allows at the FPR's upper bound. Over R operating points each bound is taken at
α/(2R) (union bound), so a true claim is contradicted with probability at most α overall.

Validity: DP speaks of one record in or out; reading members against non-members as that
test holds when the members were drawn at random from the pool the non-members come from.
privaudit cannot check the draw of a model trained elsewhere; its blind baseline checks that
the texts do not differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy.stats import beta

from privaudit.attacks.dp_audit import max_tpr_under_dp
from privaudit.attacks.results import AttackResult
from privaudit.mechanisms.dp.results import DeclaredDP, DeclaredDPCheck, DeclaredDPRow

__all__ = ["nonmembers_to_test", "test_declared_claim"]


def _upper(k: int, n: int, alpha: float) -> float:
    return 1.0 if k >= n else float(beta.ppf(1 - alpha, k + 1, n - k))


def _lower(k: int, n: int, alpha: float) -> float:
    return 0.0 if k <= 0 else float(beta.ppf(alpha, k, n - k + 1))


def nonmembers_to_test(epsilon: float, delta: float) -> int:
    """Held-out non-members whose smallest resolvable FPR (10/n) the claim does not already
    allow TPR 1 at: n > 10·e^ε/(1 − δ) (when no reported FPR is small enough).

    >>> nonmembers_to_test(1.0, 0.0)
    28
    """
    return math.floor(10 * math.exp(epsilon) / (1 - delta)) + 1


def test_declared_claim(claim: DeclaredDP, attacks: Sequence[AttackResult], *,
                        confidence: float = 0.95) -> DeclaredDPCheck:
    """The claim against every attack's estimable TPR at every reported FPR. Not
    informative: at no estimable point could even an attack finding every member exceed
    what the claim allows (with these counts and the union bound); then
    ``nonmembers_needed`` makes estimable the largest reported FPR at which the claim
    bounds the TPR below 1 by e^ε·FPR + δ (else the smallest FPR that does)."""
    points = [(a, key, rate) for a in attacks for key, rate in a.tpr_at_fpr.items()
              if rate.estimable and rate.value is not None]
    alpha = (1 - confidence) / (2 * max(len(points), 1))
    rows = []
    reachable = False  # could some row contradict the claim, were every member found?
    for a, key, rate in points:
        fpr_hi = _upper(math.floor(float(key) * a.n_nonmembers), a.n_nonmembers, alpha)
        tpr_lo = _lower(round(rate.value * a.n_members), a.n_members, alpha)  # type: ignore[operator]
        allowed = float(max_tpr_under_dp([fpr_hi], epsilon=claim.epsilon,
                                         delta=claim.delta)[0])
        reachable = reachable or _lower(a.n_members, a.n_members, alpha) > allowed
        rows.append(DeclaredDPRow(attack=a.attack, model=a.model, fpr=key, fpr_upper=fpr_hi,
                                  tpr_ci_low=tpr_lo, max_tpr_allowed=allowed,
                                  contradicts=tpr_lo > allowed))
    informative = reachable
    needed = None
    if not informative:  # the largest reported FPR the claim does not already allow TPR 1 at
        e = math.exp(claim.epsilon)
        testable = [float(k) for a in attacks for k in a.tpr_at_fpr
                    if e * float(k) + claim.delta < 1.0]
        needed = (math.ceil(10 / max(testable)) if testable
                  else nonmembers_to_test(claim.epsilon, claim.delta))
    return DeclaredDPCheck(claim=claim, rows=rows, contradicted=any(r.contradicts for r in rows),
                           informative=informative, nonmembers_needed=needed)
