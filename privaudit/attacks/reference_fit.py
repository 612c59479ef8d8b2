"""Do the reference models train like the attacked model? A check on their generalisation gap.

Reference-based attacks (LiRA, RMIA, the reference attack with references) model how a
record's loss moves when it is trained on, from reference models trained *like the target*.
When they are not — another recipe, fewer epochs, a smaller batch — their IN and OUT losses
sit where the target's do not, and the attack's calibration is off (online LiRA can then rank
members no better than chance although the target memorised them; it is the failure a
declared recipe that is not the model's produces). The symptom is measurable on the audited
records without knowing the recipe:

- the target's gap: mean loss of the non-members − mean loss of the members;
- each reference's gap: mean loss of the audited records it did not train on (OUT) − of
  those it trained on (IN).

If the target's gap lies outside ``[min / FACTOR, max × FACTOR]`` of the references' gaps, the
references learned their members much less (or much more) than the target learned its own,
and every reference-based score of that model carries a warning saying so, with the numbers.

>>> import numpy as np
>>> loss = np.array([0.1, 0.2, 2.0, 2.2])                  # 2 members, 2 non-members
>>> member = np.array([True, True, False, False])
>>> refs = np.array([[1.9, 2.0, 2.1, 2.0], [2.1, 1.9, 2.1, 2.1]])
>>> keep = np.array([[True, False, True, False], [False, True, False, True]])
>>> round(gap(loss, member), 2), [round(g, 2) for g in reference_gaps(refs, keep)]
(1.95, [0.0, 0.1])
>>> fit_warning(loss, member, refs, keep).startswith("the references do not train like")
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["FACTOR", "fit_warning", "gap", "reference_gaps"]

#: how far (as a ratio) the target's gap may lie outside the references' before the warning
FACTOR = 2.0


def gap(loss: np.ndarray, is_in: np.ndarray) -> float:
    """Mean loss of the OUT records minus that of the IN records (nan when one side is
    empty)."""
    loss, is_in = np.asarray(loss, dtype=np.float64), np.asarray(is_in, dtype=bool)
    if is_in.all() or not is_in.any():
        return float("nan")
    return float(loss[~is_in].mean() - loss[is_in].mean())


def reference_gaps(losses: np.ndarray, keep: np.ndarray) -> list[float]:
    """Each reference's gap on the audited records: (count, N) losses and keep masks."""
    return [gap(row, k) for row, k in zip(np.asarray(losses), np.asarray(keep), strict=True)]


def fit_warning(loss: np.ndarray, is_member: np.ndarray, ref_losses: np.ndarray,
                keep: np.ndarray) -> str | None:
    """The warning for reference-based scores when the target's gap is outside
    ``[min / FACTOR, max × FACTOR]`` of the references' gaps; None when it is inside (or a gap
    is undefined)."""
    target = gap(loss, is_member)
    gaps = [g for g in reference_gaps(ref_losses, keep) if np.isfinite(g)]
    if not gaps or not np.isfinite(target):
        return None
    low, high = min(gaps), max(gaps)
    inside = (low / FACTOR if low > 0 else low * FACTOR) <= target <= \
        (high * FACTOR if high > 0 else high / FACTOR)
    if inside:
        return None
    side = "less" if target > high else "more"
    return (f"the references do not train like the attacked model: its member/non-member loss "
            f"gap is {target:.3f} nats, the references' IN/OUT gaps {low:.3f} to {high:.3f} "
            f"(they learned their members {side} than it learned its own, beyond a factor "
            f"{FACTOR:g}); this score is not calibrated and is not evidence either way")


#: references whose mean utility is this far from the target's are warned of (relative:
#: accuracy below (1 − UTILITY_GAP) × the target's, perplexity above it ÷ (1 − UTILITY_GAP))
UTILITY_GAP = 0.25


def utility_warning(metric: str, target: float, references: Sequence[float]) -> str | None:
    """A warning when the references' mean utility is far from the target's (their attacks
    model another kind of model, so their scores are not evidence about this one); None when
    close, or without references.

    >>> utility_warning("accuracy", 0.34, [0.09, 0.25]) is not None
    True
    >>> utility_warning("accuracy", 0.97, [0.75, 0.91]) is None
    True
    """
    values = [v for v in references if math.isfinite(v)]
    if not values or not math.isfinite(target):
        return None
    mean = sum(values) / len(values)
    far = mean < (1 - UTILITY_GAP) * target if metric == "accuracy" else \
        mean > target / (1 - UTILITY_GAP)
    if not far:
        return None
    shown = ", ".join(f"{v:.3g}" for v in values)
    return (f"the reference models' {metric} ({shown}; mean {mean:.3g}) is far from the "
            f"target's {target:.3g} (more than {UTILITY_GAP:.0%} apart): they are not trained "
            "like the target, so reference-based scores are not evidence about it (check "
            "attacks.references and the recipe they train with)")
