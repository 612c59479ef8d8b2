"""An erasure judged against retraining itself: the paired difference of forget AUCs, the
oracle's own variability, and held-out records matched to the forget set.

- **Paired difference.** The unlearned model and the oracle score the *same* forget records
  against the *same* held-out records, so their AUCs are compared as a pair:
  Δ = AUC_unlearned − AUC_oracle with a percentile interval from a bootstrap that resamples
  the forget records and the held-out records once for both models
  (``scipy.stats.bootstrap`` over record indices); whether it differs from 0 is decided by
  the paired swap test (:func:`swap_test`), exact at any number of records.
- **The oracle's own variability.** A retraining with another seed gives another forget AUC.
  With k ≥ 1 extra retrainings (``unlearning.verify.oracle_replicates``) the k + 1 forget AUCs
  give a prediction interval for one more retraining, mean ± t_{k, (1+c)/2} · s · √(1 + 1/(k+1))
  (s their sample standard deviation): an unlearned model inside it is as close to the oracle
  as another retraining would be. With none, the variability is not estimated, the
  certificate says so, and nothing is widened.
- **Matched held-out records.** Forget records of one subject or topic can be harder (or
  easier) than held-out records in general, which moves the AUC without any memorisation.
  The comparison uses the held-out records with the forget set's labels (classification) and
  in the length bands (quartiles of the held-out lengths) the forget records fall in, when at
  least ``MIN_MATCHED`` remain; the unmatched AUC is reported next to it.

>>> spread = retrain_interval([0.50, 0.54, 0.46], confidence=0.95)
>>> round(spread.low, 3), round(spread.high, 3), spread.replicates
(0.301, 0.699, 2)
>>> retrain_interval([0.5], confidence=0.95) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap, permutation_test
from scipy.stats import t as student_t

from privaudit.mechanisms.tasks import EncodedSet

__all__ = ["MIN_MATCHED", "Matching", "PairedDifference", "RetrainSpread", "auc_difference",
           "match_nonmembers", "retrain_interval", "swap_test"]

#: fewest matched held-out records the comparison uses; fewer → the unmatched set, said so
MIN_MATCHED = 20

LossPair = tuple[np.ndarray, np.ndarray]  # (forget-set losses, held-out losses) of one model


@dataclass(frozen=True)
class PairedDifference:
    """Δ = AUC_unlearned − AUC_oracle on the same records, its paired interval, and the
    two-sided p-value of the paired swap test."""

    value: float
    ci_low: float
    ci_high: float
    p_value: float = 1.0


@dataclass(frozen=True)
class RetrainSpread:
    """The forget AUCs of k + 1 retrainings and the prediction interval for one more."""

    aucs: tuple[float, ...]
    mean: float
    sd: float
    low: float
    high: float

    @property
    def replicates(self) -> int:
        """k: retrainings beyond the oracle itself."""
        return len(self.aucs) - 1


@dataclass(frozen=True)
class Matching:
    """Which held-out records the forget set is compared with, and how they were chosen."""

    indices: tuple[int, ...]
    matched: bool
    statement: str


def _wins(forget: np.ndarray, held: np.ndarray) -> np.ndarray:
    """n × m: 1 where the forget record's loss is below the held-out one's (more member-like
    under score = −loss), ½ on ties."""
    f, h = forget[:, None], held[None, :]
    return (f < h).astype(float) + 0.5 * (f == h)


def _counts(indices: np.ndarray, size: int) -> np.ndarray:
    """Per resample (rows), how often each record was drawn."""
    flat = indices.reshape(-1, indices.shape[-1])
    out = np.zeros((flat.shape[0], size))
    np.add.at(out, (np.arange(flat.shape[0])[:, None], flat), 1.0)
    return out


def auc_difference(after: LossPair, oracle: LossPair, *, confidence: float,
                   n_resamples: int, seed: int) -> PairedDifference | None:
    """Δ and its paired-bootstrap percentile interval; None without resamples or with
    fewer than two forget or held-out records. The bootstrap resamples record indices, so
    each resample draws the same records for both models."""
    gap = _wins(np.asarray(after[0], float), np.asarray(after[1], float)) - \
        _wins(np.asarray(oracle[0], float), np.asarray(oracle[1], float))
    n, m = gap.shape
    delta = float(gap.mean()) if gap.size else 0.0
    if n_resamples < 1 or n < 2 or m < 2:
        return None

    def statistic(i: np.ndarray, j: np.ndarray, axis: int = -1) -> np.ndarray:
        wf, wh = _counts(np.asarray(i), n), _counts(np.asarray(j), m)
        value = np.einsum("bi,bi->b", wf @ gap, wh) / (n * m)
        return value.reshape(np.asarray(i).shape[:-1])

    res = bootstrap((np.arange(n), np.arange(m)), statistic, n_resamples=n_resamples,
                    confidence_level=confidence, method="percentile", vectorized=True,
                    random_state=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):  # a degenerate resample set
        low = high = delta
    p = swap_test(after, oracle, n_resamples=n_resamples, seed=seed)
    return PairedDifference(delta, min(low, delta), max(high, delta), p)


def swap_test(after: LossPair, oracle: LossPair, *, n_resamples: int, seed: int) -> float:
    """Two-sided p-value of Δ under the hypothesis that the two models are exchangeable on
    every record (the unlearned model is one more retraining): each record's pair of losses
    is swapped between the models at random (``scipy.stats.permutation_test``,
    ``permutation_type="samples"``). Exact at any size, unlike a bootstrap of a few records."""
    n = len(after[0])
    x = np.r_[np.asarray(after[0], float), np.asarray(after[1], float)]
    y = np.r_[np.asarray(oracle[0], float), np.asarray(oracle[1], float)]
    m = x.size - n

    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        a, b = np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1)

        def auc(v: np.ndarray) -> np.ndarray:
            f, h = v[..., :n, None], v[..., None, n:]
            return np.asarray(((f < h) + 0.5 * (f == h)).mean(axis=(-2, -1)))

        return auc(a) - auc(b)

    res = permutation_test((x, y), statistic, permutation_type="samples", vectorized=True,
                           n_resamples=n_resamples, alternative="two-sided",
                           batch=max(1, 5_000_000 // max(1, n * m)),
                           random_state=np.random.default_rng(seed + 1))
    return float(res.pvalue)


def retrain_interval(aucs: Sequence[float], *, confidence: float) -> RetrainSpread | None:
    """The prediction interval for one more retraining's forget AUC from these retrainings'
    (the oracle's first); None with fewer than two."""
    values = np.asarray(list(aucs), float)
    if values.size < 2:
        return None
    k = values.size - 1
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    half = float(student_t.ppf((1 + confidence) / 2, k)) * sd * math.sqrt(1 + 1 / values.size)
    return RetrainSpread(tuple(float(v) for v in values), mean, sd, mean - half, mean + half)


def _lengths(data: EncodedSet) -> np.ndarray:
    return np.asarray([len(ids) for ids in data.input_ids], float)


def match_nonmembers(forget: EncodedSet, nonmembers: EncodedSet, *,
                     min_records: int = MIN_MATCHED) -> Matching:
    """The held-out records matched to ``forget`` (module docstring), else all of them."""
    everyone = tuple(range(len(nonmembers)))
    if not len(forget) or not len(nonmembers):
        return Matching(everyone, False, "no matching: an empty forget or held-out set")
    keep = np.ones(len(nonmembers), bool)
    parts = []
    if forget.labels is not None and nonmembers.labels is not None:
        labels = sorted(set(forget.labels))
        keep &= np.isin(np.asarray(nonmembers.labels), labels)
        parts.append(f"the forget set's {len(labels)} label(s)")
    held_len, own_len = _lengths(nonmembers), _lengths(forget)
    edges = np.unique(np.quantile(held_len, [0.25, 0.5, 0.75]))
    bands = np.searchsorted(edges, held_len, side="right")
    wanted = np.unique(np.searchsorted(edges, own_len, side="right"))
    keep &= np.isin(bands, wanted)
    parts.append(f"{len(wanted)} of {len(edges) + 1} length band(s) "
                 f"({int(own_len.min())}–{int(own_len.max())} tokens)")
    chosen = tuple(int(i) for i in np.flatnonzero(keep))
    if len(chosen) < min_records:
        return Matching(everyone, False, f"unmatched: only {len(chosen)} of "
                        f"{len(nonmembers)} held-out records share {' and '.join(parts)} "
                        f"(fewer than {min_records}); all {len(nonmembers)} are used")
    return Matching(chosen, True, f"matched: {len(chosen)} of {len(nonmembers)} held-out "
                    f"records, those with {' and '.join(parts)}")
