"""The maths and words of the unlearning evidence: plain functions of losses, AUCs and a
result, which :class:`~privaudit.unlearning.verify.Verifier` measures and applies.

- **Membership AUC**: the LOSS attack (score = −loss), bootstrap CI from
  :func:`privaudit.attacks.metrics.evaluate_scores`; > 0.5 = the forget records still look
  like members.
- **PrivLeak** (MUSE, Shi et al. 2024) = (AUC_unlearned − AUC_oracle) / AUC_oracle × 100 with
  MUSE's orientation of the AUC: held-out records scored *above* the forget records, i.e.
  1 − the membership AUC. So **negative = still remembers** (under-unlearned), **positive =
  over-unlearned** (the forget records now look less like members than never-seen ones),
  0 = the oracle. Its CI is the paired interval of the AUC difference from the oracle
  (:mod:`privaudit.unlearning.paired`), scaled by the oracle's 1 − AUC.
- **Forget quality** (TOFU): the KS-test p-value between the unlearned and the oracle's
  per-example losses on the forget set (``scipy.stats.ks_2samp``).
- **Collateral**: the retained records' membership AUC after − before, and the utility drop.
- **Flags**, each with the threshold that fired (``unlearning.verify``): ``under_unlearned`` /
  ``over_unlearned`` when |PrivLeak| > ``privleak_band``, the paired interval of the AUC
  difference from the oracle excludes 0, and (when estimated) the unlearned AUC lies outside
  what another retraining gives (:mod:`privaudit.unlearning.paired`); ``utility_collapse``
  when the utility drop's paired-bootstrap interval lies above ``utility_drop_max``. The
  oracle is the yardstick: it is never flagged.

>>> round(privleak(0.78, 0.5), 1)   # trained model judged as if unlearned: still remembers
-56.0
>>> privleak(0.5, 0.5), forget_quality([0.1, 0.4, 0.2], [0.1, 0.4, 0.2])
(0.0, 1.0)
>>> round(utility_drop(0.9, 0.45, "accuracy"), 2), round(utility_drop(10.0, 20.0, "perplexity"), 2)
(0.5, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import ks_2samp

from privaudit.unlearning.base import oracle_name
from privaudit.unlearning.config import VerifyConfig
from privaudit.unlearning.paired import PairedDifference, RetrainSpread
from privaudit.unlearning.results import ForgetEvidence, UnlearningResult, VerificationFlag

__all__ = [
    "flags_for",
    "forget_quality",
    "privleak",
    "rank_results",
    "ulira_words",
    "utility_drop",
    "verdict_line",
    "vulnerability",
]


def privleak(auc_unlearned: float, auc_oracle: float) -> float | None:
    """PrivLeak in % from two *membership* AUCs (forget vs held-out, > 0.5 = member-like),
    turned into MUSE's orientation (1 − AUC) so that negative = still remembers. None when
    undefined: the oracle itself ranks every forget record above every held-out one (AUC 1).

    >>> privleak(0.9, 1.0) is None
    True
    """
    muse_u, muse_o = 1.0 - auc_unlearned, 1.0 - auc_oracle
    if muse_o <= 0.0:
        return None
    return (muse_u - muse_o) / muse_o * 100.0


def forget_quality(losses_unlearned: ArrayLike, losses_oracle: ArrayLike) -> float:
    """KS-test p-value between two models' per-example losses on the forget set."""
    a, b = np.asarray(losses_unlearned, float), np.asarray(losses_oracle, float)
    if np.array_equal(a, b):
        return 1.0
    return float(ks_2samp(a, b).pvalue)


def vulnerability(losses: ArrayLike, nonmember_losses: ArrayLike) -> list[float]:
    """Per record: the share of held-out records with a higher loss (ties half) — 0.5 looks
    like a never-seen record, 1 = more member-like than every held-out record.

    >>> vulnerability([0.0, 1.0, 9.0], [0.5, 1.0, 2.0, 3.0])
    [1.0, 0.625, 0.0]
    """
    ref = np.sort(np.asarray(nonmember_losses, float))
    x = np.asarray(losses, float)
    above = ref.size - np.searchsorted(ref, x, side="right")
    ties = np.searchsorted(ref, x, side="right") - np.searchsorted(ref, x, side="left")
    return [float(v) for v in (above + 0.5 * ties) / max(ref.size, 1)]


def utility_drop(before: float, after: float, metric: str) -> float:
    """Relative utility lost: 1 − after/before (accuracy), 1 − before/after (perplexity)."""
    if metric == "perplexity":
        return 1.0 - before / after if after > 0 else float("nan")
    return 1.0 - after / before if before > 0 else float("nan")


def _against_retraining(spread: RetrainSpread | None, auc: float, side: str) -> str | None:
    """Why ``auc`` is beyond another retraining (None: it is not), or that this was not
    estimated."""
    if spread is None:
        return "(the oracle's own variability was not estimated)"
    outside = auc > spread.high if side == "above" else auc < spread.low
    if not outside:
        return None
    return (f"outside what another retraining gives ({spread.low:.3f} to {spread.high:.3f}, "
            f"from {spread.replicates + 1} retrainings)")


def flags_for(
    *, privleak_value: float | None, auc_unlearned: float | None,
    difference: PairedDifference | None, spread: RetrainSpread | None,
    drop: float | None, drop_ci: tuple[float, float] | None, cfg: VerifyConfig,
    confidence: float = 0.95,
) -> list[VerificationFlag]:
    """Every flag that fires, with its threshold.

    ``under_unlearned`` / ``over_unlearned`` need all of: |PrivLeak| beyond the band; Δ =
    AUC_unlearned − AUC_oracle on the same records (:func:`~privaudit.unlearning.paired.
    auc_difference`) on that side and significant by the paired swap test at 1 − confidence;
    and, when the oracle's variability was estimated (``spread``: k + 1 retrainings), the
    unlearned AUC outside the prediction interval of another retraining. Each test alone errs
    at most 1 − confidence on an exact retrain, so together they do too. (The KS forget
    quality is reported, not used: two retrainings' forget losses can differ in level with no
    record more member-like than another, and KS then rejects a retrain.)
    ``utility_collapse`` needs the drop's paired-bootstrap interval to lie above the
    threshold."""
    out: list[VerificationFlag] = []
    band, alpha = cfg.privleak_band, 1 - confidence
    if privleak_value is not None and auc_unlearned is not None and difference is not None:
        d = difference
        for name, beyond, side in (("under_unlearned", privleak_value < -band, "above"),
                                   ("over_unlearned", privleak_value > band, "below")):
            retrain = _against_retraining(spread, auc_unlearned, side)
            apart = d.p_value < alpha and (d.value > 0 if side == "above" else d.value < 0)
            if not (beyond and apart and retrain is not None):
                continue
            sign = "<" if side == "above" else ">"
            out.append(VerificationFlag(
                name=name,  # type: ignore[arg-type]
                value=privleak_value, threshold=-band if side == "above" else band,
                parameter="unlearning.verify.privleak_band",
                message=f"{name}: PrivLeak {privleak_value:+.1f} {sign} "
                f"{'−' if side == 'above' else '+'}{band:g} and the forget AUC "
                f"{auc_unlearned:.3f} is {side} the oracle's by {abs(d.value):.3f} on the "
                f"same records (paired swap test p = {d.p_value:.2g} < {alpha:.2g}; "
                f"{confidence:.0%} interval of the difference {d.ci_low:+.3f} to "
                f"{d.ci_high:+.3f}), {retrain}"))
    if drop is not None and drop_ci is not None and drop_ci[0] > cfg.utility_drop_max:
        out.append(VerificationFlag(
            name="utility_collapse", value=drop, threshold=cfg.utility_drop_max,
            parameter="unlearning.verify.utility_drop_max",
            message=f"utility_collapse: utility dropped {drop:.1%} (at least {drop_ci[0]:.1%} "
            f"with confidence) > {cfg.utility_drop_max:.0%}"))
    return out


def ulira_words(r: UnlearningResult) -> str:
    """U-LiRA in a few words, for the verdict line."""
    if r.ulira_auc is None:
        return "U-LiRA NOT EVALUATED"
    tail = ""
    if r.ulira_auc_ci_low is not None and r.ulira_auc_ci_high is not None:
        tail = f", CI {r.ulira_auc_ci_low:.2f} to {r.ulira_auc_ci_high:.2f}"
    floor = r.forget.auc_floor
    if floor is not None and floor >= 0.5:
        return (f"U-LiRA AUC {r.ulira_auc:.2f}, NOT INFORMATIVE: {r.forget.n_records} forget "
                f"record(s) cannot show any departure from 0.5 (floor ±{floor:.2f})")
    if floor is not None:
        tail += f"; shows departures beyond ±{floor:.2f} only"
    return f"U-LiRA AUC {r.ulira_auc:.2f} (0.5 = like never seen{tail})"


def _ks_words(f: ForgetEvidence, alpha: float) -> str:
    floor = f.ks_pvalue_floor
    if f.ks_pvalue is None:
        return "forget quality not measured"
    if floor is not None and floor > alpha:
        return (f"forget-quality p = {f.ks_pvalue:.2g} (not informative: with {f.n_records} "
                f"record(s) KS cannot go below p = {floor:.2g})")
    return f"forget-quality p = {f.ks_pvalue:.2g}"


def verdict_line(r: UnlearningResult, *, alpha: float = 0.05) -> str:
    """The evidence of one result in plain words (``alpha``: 1 − the run's confidence)."""
    f = r.forget
    if r.method == oracle_name():
        return ("The reference: the federation retrained without the erased records. Every "
                "method is judged against it; it is not judged itself.")
    if f.privleak is None and f.mia_auc_oracle is not None:
        return ("PrivLeak is undefined: even the oracle, which never saw the forget records, "
                "ranks every one of them above every held-out record (membership AUC 1), so "
                f"this forget set cannot be told apart by this attack; {_ks_words(f, alpha)}; "
                f"{ulira_words(r)}.")
    if f.privleak is None and f.mia_auc_oracle is not None:
        return ("PrivLeak is undefined: the oracle itself (retrained without these records) "
                "ranks every forget record above every held-out one (forget AUC 1), so the "
                "comparison with retraining has no room to show anything.")
    if f.privleak is None:
        return "No oracle ran, so the erasure could not be compared with retraining."
    if r.verification_flags:
        head = "; ".join(v.name.replace("_", "-") for v in r.verification_flags)
        return (f"Not like retraining ({head}): PrivLeak {f.privleak:+.1f}%, "
                f"{_ks_words(f, alpha)}; {ulira_words(r)}.")
    if f.informative is False:
        return (f"NOT INFORMATIVE: with {f.n_records} forget and {f.n_nonmembers} held-out "
                f"records PrivLeak can only show departures beyond ±{f.privleak_floor:.0f}%, "
                "so not even a model that still remembers every erased record could be told "
                f"from retraining (at least {f.records_needed} records needed); PrivLeak "
                f"{f.privleak:+.1f}%, {_ks_words(f, alpha)}; {ulira_words(r)}.")
    paired = ""
    if f.auc_difference is not None:
        paired = (f", forget AUC {f.auc_difference:+.3f} from the oracle's on the same records "
                  f"(paired interval {f.auc_difference_ci_low:+.3f} to "
                  f"{f.auc_difference_ci_high:+.3f}); the oracle's own variability "
                  f"{'estimated' if f.retrain_low is not None else 'not estimated'}")
    return (f"Indistinguishable from retraining at this sample size: PrivLeak "
            f"{f.privleak:+.1f}% (CI {f.privleak_ci_low:+.1f} to {f.privleak_ci_high:+.1f}; "
            f"this test shows departures beyond ±{f.privleak_floor:.0f}% only){paired}, "
            f"{_ks_words(f, alpha)}; {ulira_words(r)}.")


def rank_results(results: Sequence[UnlearningResult]) -> None:
    """Rank one request's methods (oracle excluded) by evidence: methods with a verification
    flag (under/over-unlearned, utility collapse) after those without, then |PrivLeak|,
    forget quality (higher), utility drop (lower), cost (lower), name; sets ``rank`` (1 =
    best). Cost is the examples processed, not wall time: wall time varies from run to run,
    and the ranking must not (the report's content digest covers it)."""
    def key(r: UnlearningResult) -> tuple[int, float, float, float, int, str]:
        leak = r.forget.privleak
        return (len(r.verification_flags),
                abs(leak) if leak is not None and np.isfinite(leak) else float("inf"),
                -(r.forget.ks_pvalue or 0.0), r.utility_drop or 0.0, r.examples_processed,
                r.method)

    methods = sorted((r for r in results if r.method != oracle_name()), key=key)
    for i, r in enumerate(methods, 1):
        r.rank = i
