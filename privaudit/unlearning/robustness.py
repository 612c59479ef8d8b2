"""Does an erasure certificate hold for what is shipped? The forget evidence re-run on the
merged and quantized artifacts (``unlearning.robustness.variants``).

For each variant (:mod:`privaudit.mechanisms.model.shipped`: merged, int8, int4, nf4) the
unlearned model, its oracle (and the oracle's extra retrainings) are put through the same
transformation (not the trained model: PrivLeak and the paired test need only the oracle; the
trained model's forget AUC is in the fp32 evidence), and the forget records are compared with
the held-out records matched to them exactly as at fp32
(:func:`~privaudit.unlearning.comparison.compare_forget`: forget AUC with its interval,
PrivLeak, the paired difference and swap test; for a causal LM the canaries' exposure). The
fp32 flag rules (:func:`~privaudit.unlearning.evidence.flags_for`) are applied to each variant,
each at α/V for V probed variants (Bonferroni: the intervals and the swap test at 1 − α/V, so
that probing more variants does not raise the chance of flagging an exact retrain on one); a
method whose fp32 evidence raised no under/over-unlearning flag but whose variant's does is
flagged ``not_robust_to_quantization``, naming the variant (Zhang et al., ICLR 2025:
utility-constrained unlearning that survives at full precision can come back after 4-bit
quantization). A model byte-identical to its oracle (SISA, served exactly) is identical under
every variant: it is not evaluated again and never flagged.

Losses are memoised per (model, variant, records), computed in one pass over the forget and
held-out records batched by length; a frozen prefix's features (``mechanisms/prefix.py``) are
recomputed once per quantized variant — the prefix carries no adapter, so its quantized output
is the same for every model.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from privaudit.attacks.metrics import AttackMetrics
from privaudit.attacks.references import preserved_adapter
from privaudit.mechanisms.model.shipped import FrozenCache, describe, shipped
from privaudit.mechanisms.models import set_adapter_state
from privaudit.mechanisms.tasks import EncodedSet, FeatureCache, attach_features
from privaudit.unlearning.base import UnlearnedModel, UnlearningContext, concat_sets
from privaudit.unlearning.comparison import ForgetComparison, LossPair, compare_forget
from privaudit.unlearning.config import VerifyConfig
from privaudit.unlearning.evaluate import in_length_order, per_example_loss
from privaudit.unlearning.evidence import flags_for
from privaudit.unlearning.probe_results import RobustnessEvidence, VariantEvidence
from privaudit.unlearning.results import ForgetEvidence, VerificationFlag

__all__ = ["ShippedProbe", "judge_variant", "not_robust_flag", "variant_test"]

#: the fp32 flags a variant is judged by (utility is not re-measured per variant)
_FORGET_FLAGS = ("under_unlearned", "over_unlearned")

Exposure = Callable[[UnlearnedModel, str], float | None]
#: variant losses are compared to this many significant digits: a merge's float rounding
#: (~1e-6 relative on float32 logits) would otherwise reorder records whose losses differ by
#: less — memorised records' losses sit near 0, a few 1e-6 apart — and move an AUC
DIGITS = 5


def significant(x: np.ndarray, digits: int = DIGITS) -> np.ndarray:
    """``x`` rounded to ``digits`` significant digits.

    >>> [float(f"{v:.6g}") for v in significant(np.array([3.14159e-6, 2.71828, 0.0]))]
    [3.1416e-06, 2.7183, 0.0]
    """
    mag = np.where(x != 0, 10.0 ** np.floor(np.log10(np.abs(np.where(x != 0, x, 1.0)))), 1.0)
    return np.round(x / mag, digits - 1) * mag


def variant_test(confidence: float, bootstrap: int, variants: int) -> tuple[float, int]:
    """(confidence, resamples) each of ``variants`` probed variants is judged at. Bonferroni:
    1 − α/V, so that probing more variants does not raise the chance that an exact retrain is
    flagged on one; the swap test's p-value cannot go below ~2/(resamples + 1), so at least
    4/(α/V) resamples, that the test at α/V can reject at all.

    >>> c, r = variant_test(0.95, 200, 4)
    >>> round(c, 6), r
    (0.9875, 320)
    """
    alpha = (1 - confidence) / variants
    return 1 - alpha, max(bootstrap, math.ceil(4 / alpha))


def _records_sha(data: EncodedSet) -> str:
    return hashlib.sha256(("ids:" + "\n".join(data.record_ids)).encode()).hexdigest()


@dataclass
class ShippedProbe:
    """Per-example losses of shipped variants, and the forget evidence on each."""

    ctx: UnlearningContext
    auc: Callable[[np.ndarray, np.ndarray], AttackMetrics]
    _memo: dict[tuple[str, str, str, str], LossPair] = field(default_factory=dict)
    _features: dict[str, FeatureCache] = field(default_factory=dict)
    _frozen: FrozenCache = field(default_factory=dict)
    seconds: float = 0.0

    def prepared(self, data: EncodedSet, variant: str) -> EncodedSet:
        """``data`` as the variant's model sees it — called inside :func:`shipped`: a merge
        leaves the frozen prefix alone; a quantized prefix computes other features."""
        if variant == "merged" or data.features is None:
            return data
        return attach_features(replace(data, features=None), self.ctx.bundle.model,
                               cache=self._features.setdefault(variant, {}))

    def pair(self, model: UnlearnedModel, forget: EncodedSet, held: EncodedSet,
             variant: str) -> LossPair:
        """Per-example losses of ``variant`` of ``model`` on the forget and the held-out
        records (memoised): one pass under the variant over both sets, batched by length."""
        key = (model.sha256, variant, _records_sha(forget), _records_sha(held))
        if key not in self._memo:
            net, task = self.ctx.bundle.model, self.ctx.recipe.task

            def losses(data: EncodedSet) -> np.ndarray:
                with shipped(net, variant, cache=self._frozen):
                    seen = self.prepared(data, variant)
                    if not model.is_ensemble:
                        return per_example_loss(net, None, seen, task)
                # SISA's shards: each merged and quantized on its own
                return per_example_loss(net, model.states, seen, task, member=lambda: shipped(
                    net, variant, cache=self._frozen))

            with preserved_adapter(net):
                set_adapter_state(net, model.states[0])
                both = significant(in_length_order(
                    concat_sets([forget, held], pad_id=held.pad_id), losses))
            self._memo[key] = (both[:len(forget)], both[len(forget):])
        return self._memo[key]

    def probe(
        self, variants: Sequence[str], *, model: UnlearnedModel, oracle: UnlearnedModel | None,
        replicates: Sequence[UnlearnedModel], forget: EncodedSet,
        nonmembers: EncodedSet, exposure: Exposure | None = None,
    ) -> RobustnessEvidence | None:
        """The evidence of every variant; None without an oracle or without records."""
        if not variants or oracle is None or not (len(forget) and len(nonmembers)):
            return None
        t0 = time.perf_counter()
        out = RobustnessEvidence()
        test = variant_test(self.ctx.attacks.confidence, self.ctx.attacks.bootstrap,
                            len(variants))
        for variant in variants:
            setattr(out, variant, self._variant(variant, model, oracle, replicates,
                                                forget, nonmembers, exposure, test))
        self.seconds += time.perf_counter() - t0
        return out

    def _variant(
        self, variant: str, model: UnlearnedModel, oracle: UnlearnedModel,
        replicates: Sequence[UnlearnedModel], forget: EncodedSet,
        nonmembers: EncodedSet, exposure: Exposure | None, test: tuple[float, int],
    ) -> VariantEvidence:
        v = VariantEvidence(variant=variant, description=describe(variant))
        if model.sha256 == oracle.sha256:  # the same model: PrivLeak and Δ are 0 exactly
            v.identical_to_oracle, v.privleak, v.auc_difference = True, 0.0, 0.0
            return v

        def pair(m: UnlearnedModel) -> LossPair:
            return self.pair(m, forget, nonmembers, variant)

        f, cmp, flags = judge_variant(
            pair(model), pair(oracle), [pair(r) for r in replicates], auc=self.auc,
            cfg=self.ctx.ucfg.verify, test=test, seed=self.ctx.recipe.seed)
        v.mia_auc, v.mia_auc_ci_low, v.mia_auc_ci_high = \
            f.mia_auc, f.mia_auc_ci_low, f.mia_auc_ci_high
        v.mia_auc_oracle = f.mia_auc_oracle
        v.privleak, v.privleak_ci_low, v.privleak_ci_high, v.privleak_floor = \
            f.privleak, f.privleak_ci_low, f.privleak_ci_high, f.privleak_floor
        v.auc_difference = f.auc_difference
        v.auc_difference_ci_low, v.auc_difference_ci_high = \
            f.auc_difference_ci_low, f.auc_difference_ci_high
        v.auc_difference_pvalue = cmp.difference.p_value if cmp.difference else None
        if exposure is not None:
            v.exposure_bits, v.exposure_bits_oracle = \
                exposure(model, variant), exposure(oracle, variant)
        v.failed = [fl.name for fl in flags]
        return v


def judge_variant(
    after: LossPair, oracle: LossPair, replicates: Sequence[LossPair], *,
    auc: Callable[[np.ndarray, np.ndarray], AttackMetrics], cfg: VerifyConfig,
    test: tuple[float, int], seed: int,
) -> tuple[ForgetEvidence, ForgetComparison, list[VerificationFlag]]:
    """One variant's forget evidence and flags from the (forget, held-out) losses of the
    unlearned model, the oracle and its replicates under that variant, judged at ``test``
    (:func:`variant_test`) by the fp32 rules."""
    f = ForgetEvidence(n_records=len(after[0]), mean_loss_before=float("nan"),
                       mean_loss_after=float(after[0].mean()))
    confidence, resamples = test
    cmp = compare_forget(f, before=None, after=after, oracle=oracle, auc=auc,
                         confidence=confidence, replicates=replicates,
                         n_resamples=resamples, seed=seed)
    flags = flags_for(privleak_value=f.privleak,
                      auc_unlearned=cmp.auc.auc if cmp.auc else None,
                      difference=cmp.difference, spread=cmp.spread, drop=None,
                      drop_ci=None, cfg=cfg, confidence=confidence)
    return f, cmp, flags


def not_robust_flag(evidence: RobustnessEvidence | None,
                    fp32_flags: Sequence[VerificationFlag], *, band: float
                    ) -> VerificationFlag | None:
    """``not_robust_to_quantization`` when the fp32 evidence raised no forget flag and some
    variant's evidence does; it names every such variant."""
    if evidence is None or any(f.name in _FORGET_FLAGS for f in fp32_flags):
        return None
    failing = [v for v in evidence.probed() if v.failed]
    if not failing:
        return None
    worst = min(failing, key=lambda v: v.privleak if v.privleak is not None else 0.0)
    parts = [f"{' and '.join(v.failed)} on {v.variant} (PrivLeak {v.privleak:+.1f}, forget AUC "
             f"{v.mia_auc:.3f} vs the oracle's {v.mia_auc_oracle:.3f} under the same "
             f"transformation, paired p = {v.auc_difference_pvalue:.2g})" for v in failing]
    return VerificationFlag(
        name="not_robust_to_quantization", value=worst.privleak or 0.0, threshold=band,
        parameter="unlearning.robustness.variants",
        message="not_robust_to_quantization: the fp32 adapter passes but its shipped "
        f"variant fails — {'; '.join(parts)}")
