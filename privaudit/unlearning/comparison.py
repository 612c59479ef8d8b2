"""The forget-set comparison of one erasure: an unlearned model against the trained model
and the oracle (and its extra retrainings), on per-record losses — shared by the run's
erasure stage (:class:`~privaudit.unlearning.verify.Verifier`) and ``audit-model
--unlearned`` (:mod:`privaudit.audit.external_erasure`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from privaudit.attacks.metrics import AttackMetrics
from privaudit.unlearning.evidence import forget_quality, privleak, vulnerability
from privaudit.unlearning.paired import (
    Matching,
    PairedDifference,
    RetrainSpread,
    auc_difference,
    retrain_interval,
)
from privaudit.unlearning.power import (
    auc_floor,
    ks_pvalue_floor,
    privleak_floor,
    records_needed,
)
from privaudit.unlearning.results import ForgetEvidence

__all__ = ["ForgetComparison", "LossPair", "compare_forget"]


@dataclass
class ForgetComparison:
    """What :func:`flags_for` needs from :func:`compare_forget`."""

    auc: AttackMetrics | None = None
    auc_oracle: AttackMetrics | None = None
    difference: PairedDifference | None = None
    spread: RetrainSpread | None = None


LossPair = tuple[np.ndarray, np.ndarray]  # (forget-set losses, held-out losses) of one model


def _matched(pair: LossPair, pick: np.ndarray) -> LossPair:
    return pair[0], pair[1][pick]


def _variability(spread: RetrainSpread | None, confidence: float) -> str:
    if spread is None:
        return ("not estimated (unlearning.verify.oracle_replicates: 0): the paired interval "
                "covers the sampling of records only; another retraining could differ from "
                "the oracle by more, so a flag may be the oracle's own noise")
    return (f"estimated from {spread.replicates + 1} retrainings with different seeds (forget "
            f"AUC {min(spread.aucs):.3f} to {max(spread.aucs):.3f}, sd {spread.sd:.3f}): a "
            f"method is flagged only outside the {confidence:.0%} prediction interval of "
            f"another retraining, {spread.low:.3f} to {spread.high:.3f}")


def compare_forget(f: ForgetEvidence, *, before: LossPair | None, after: LossPair,
                   oracle: LossPair | None, auc: Callable[[np.ndarray, np.ndarray],
                                                          AttackMetrics],
                   confidence: float, matching: Matching | None = None,
                   replicates: Sequence[LossPair] = (), n_resamples: int = 0,
                   seed: int = 0) -> ForgetComparison:
    """Fill ``f``'s forget-set evidence from per-record losses of the trained model
    (``before``), the unlearned one (``after``), the oracle and its ``replicates`` (extra
    retrainings), in place: the forget AUCs with their intervals against the ``matching``
    held-out records (the unmatched AUCs next to them), the paired difference from the
    oracle, the retraining spread, PrivLeak, the KS test, per-record vulnerability, and what
    the test can show at this size. ``auc`` scores members against held-out records by their
    losses. Shared by the run's erasure stage and ``audit-model --unlearned``; ``before=None``
    (the shipped-variant probes: the trained model is not put through each variant) leaves
    the trained model's AUC and vulnerabilities unset."""
    if matching is not None:
        f.nonmember_matching = matching.statement
        if matching.matched:
            f.mia_auc_unmatched = auc(*after).auc
            f.mia_auc_oracle_unmatched = auc(*oracle).auc if oracle is not None else None
            pick = np.asarray(matching.indices, int)
            before = None if before is None else _matched(before, pick)
            after = _matched(after, pick)
            oracle = None if oracle is None else _matched(oracle, pick)
            replicates = [_matched(r, pick) for r in replicates]
    n, m = len(after[0]), len(after[1])
    f.n_nonmembers = m
    cmp = ForgetComparison()
    f.auc_floor = auc_floor(n, m, confidence)
    cmp.auc = auc(*after)
    f.mia_auc, f.mia_auc_ci_low, f.mia_auc_ci_high = \
        cmp.auc.auc, cmp.auc.auc_ci_low, cmp.auc.auc_ci_high
    if before is not None:
        trained = auc(*before)
        f.mia_auc_original, f.mia_auc_original_ci_low, f.mia_auc_original_ci_high = \
            trained.auc, trained.auc_ci_low, trained.auc_ci_high
        f.vulnerability_before = vulnerability(*before)
    f.vulnerability_after = vulnerability(*after)
    if oracle is None:
        return cmp
    cmp.auc_oracle = auc_o = auc(*oracle)
    f.mia_auc_oracle, f.mia_auc_oracle_ci_low, f.mia_auc_oracle_ci_high = \
        auc_o.auc, auc_o.auc_ci_low, auc_o.auc_ci_high
    f.privleak = privleak(cmp.auc.auc, auc_o.auc)
    f.privleak_ci_low = privleak(cmp.auc.auc_ci_high, auc_o.auc)
    f.privleak_ci_high = privleak(cmp.auc.auc_ci_low, auc_o.auc)
    cmp.difference = d = auc_difference(after, oracle, confidence=confidence,
                                        n_resamples=n_resamples, seed=seed)
    if d is not None:
        f.auc_difference, f.auc_difference_ci_low, f.auc_difference_ci_high = \
            d.value, d.ci_low, d.ci_high
        if f.privleak is not None:  # PrivLeak = −Δ / (1 − AUC_oracle) × 100
            f.privleak_ci_low = privleak(auc_o.auc + d.ci_high, auc_o.auc)
            f.privleak_ci_high = privleak(auc_o.auc + d.ci_low, auc_o.auc)
    f.oracle_aucs = [auc_o.auc] + [auc(*r).auc for r in replicates]
    cmp.spread = retrain_interval(f.oracle_aucs, confidence=confidence)
    if cmp.spread is not None:
        f.retrain_low, f.retrain_high = cmp.spread.low, cmp.spread.high
    f.oracle_variability = _variability(cmp.spread, confidence)
    f.ks_pvalue = forget_quality(after[0], oracle[0])
    f.ks_pvalue_floor = ks_pvalue_floor(n, n)
    f.vulnerability_oracle = vulnerability(*oracle)
    floor = privleak_floor(n, m, auc_o.auc, confidence)  # inf: PrivLeak undefined
    f.privleak_floor = floor if math.isfinite(floor) else None
    f.records_needed = records_needed(m, auc_o.auc, confidence)
    f.informative = floor < 100.0
    return cmp
