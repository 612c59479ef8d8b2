"""Evidence that an unlearned model behaves like the oracle (retrained without the data).

For one erasure request served by one method, :class:`Verifier` attacks the forget records
(vs the held-out non-members) under the unlearned model, the oracle and the trained model, and
the retained records before and after; the maths are the plain functions below.

- **Membership AUC**: the LOSS attack (score = −loss), bootstrap CI from
  :func:`privaudit.attacks.metrics.evaluate_scores`; > 0.5 = the forget records still look
  like members.
- **PrivLeak** (MUSE, Shi et al. 2024) = (AUC_unlearned − AUC_oracle) / AUC_oracle × 100 with
  MUSE's orientation of the AUC: held-out records scored *above* the forget records, i.e.
  1 − the membership AUC. So **negative = still remembers** (under-unlearned), **positive =
  over-unlearned** (the forget records now look less like members than never-seen ones),
  0 = the oracle. Its CI carries the unlearned AUC's bootstrap CI (the oracle's AUC is fixed).
- **Forget quality** (TOFU): the KS-test p-value between the unlearned and the oracle's
  per-example losses on the forget set (``scipy.stats.ks_2samp``).
- **Collateral**: the retained records' membership AUC after − before, and the utility drop.
- **Flags**, each with the threshold that fired (``unlearning.verify``): ``under_unlearned`` /
  ``over_unlearned`` when |PrivLeak| > ``privleak_band`` and the unlearned and oracle AUCs are
  further apart than their sampling noise allows (:func:`~privaudit.unlearning.power.
  auc_margin`); ``utility_collapse`` when the utility drop's paired-bootstrap interval lies
  above ``utility_drop_max``. The oracle is the yardstick: it is never flagged.
- **Power** (:mod:`privaudit.unlearning.power`): each result states the smallest PrivLeak,
  AUC departure and KS p-value its sizes can show; a request whose PrivLeak floor is 100% or
  more is NOT INFORMATIVE (not even total memorisation could be told from retraining).
- **U-LiRA** (Hayes et al. 2024; :mod:`privaudit.unlearning.ulira`, where the construction
  is): per-example likelihood-ratio test against reference adapters that trained on each
  record then unlearned it with the same method vs never saw it; ``ulira_auc`` of the forget
  records vs held-out non-members (0.5 = like never seen), for the cheap methods
  (``unlearning.verify.ulira_methods``) when ``unlearning.verify.ulira_references`` > 0; else
  None with ``ulira_reason``.
- **Canary exposure** (causal LM with secret canaries, Carlini et al. 2019): the mean exposure
  in bits of the canaries whose carriers are in the forget set, under the trained model
  (``exposure_bits_before``), the unlearned model (``exposure_bits``) and the oracle.

Per-example losses come from the signal cache (``signals/``, keyed by model and records), so a
model (the trained one, a request's oracle) is evaluated once on a set across methods.

>>> round(privleak(0.78, 0.5), 1)   # trained model judged as if unlearned: still remembers
-56.0
>>> privleak(0.5, 0.5), forget_quality([0.1, 0.4, 0.2], [0.1, 0.4, 0.2])
(0.0, 1.0)
>>> round(utility_drop(0.9, 0.45, "accuracy"), 2), round(utility_drop(10.0, 20.0, "perplexity"), 2)
(0.5, 0.5)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import ks_2samp

from privaudit.attacks.canary_exposure import exposure_of
from privaudit.attacks.metrics import AttackMetrics, evaluate_scores
from privaudit.attacks.references import preserved_adapter
from privaudit.attacks.scores.inputs import SignalSet
from privaudit.attacks.signals import cached_signals, load_signals, save_signals, sequence_nll
from privaudit.mechanisms.data.canaries import Canary, candidate_texts
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.models import set_adapter_state
from privaudit.mechanisms.tasks import EncodedSet
from privaudit.unlearning.base import UnlearnedModel, Unlearner, UnlearningContext, oracle_name
from privaudit.unlearning.config import VerifyConfig
from privaudit.unlearning.evaluate import per_example_loss, per_example_utility, utility
from privaudit.unlearning.power import (
    auc_floor,
    auc_margin,
    ks_pvalue_floor,
    per_test_confidence,
    privleak_floor,
    records_needed,
    utility_drop_interval,
)
from privaudit.unlearning.requests import ResolvedRequest
from privaudit.unlearning.results import ForgetEvidence, UnlearningResult, VerificationFlag
from privaudit.unlearning.ulira import ULiRA

__all__ = [
    "Verifier",
    "flags_for",
    "forget_quality",
    "privleak",
    "rank_results",
    "utility_drop",
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


def flags_for(
    *, privleak_value: float | None, auc_unlearned: float | None, auc_oracle: float | None,
    margin: float, drop: float | None, drop_ci: tuple[float, float] | None, cfg: VerifyConfig,
    ks_pvalue: float | None = None, loss_shift: float | None = None, alpha: float = 0.05,
) -> list[VerificationFlag]:
    """Every flag that fires, with its threshold.

    A PrivLeak flag needs |PrivLeak| beyond the band *and* a significant difference from the
    oracle, by either of two tests at α/2 each (Bonferroni: at most α on an exact retrain):
    the two AUCs further apart than ``margin`` (:func:`~privaudit.unlearning.power.auc_margin`
    at confidence 1 − α/2), or the KS test of the two models' forget-set losses below α/2 with
    the losses shifted the same way (``loss_shift``: unlearned − oracle median loss; > 0 =
    the forget records now cost more than under retraining). ``utility_collapse`` needs the
    drop's paired-bootstrap interval to lie above the threshold."""
    out: list[VerificationFlag] = []
    band = cfg.privleak_band
    ks = ks_pvalue is not None and loss_shift is not None and ks_pvalue < alpha / 2
    if privleak_value is not None and auc_unlearned is not None and auc_oracle is not None:
        gap = auc_unlearned - auc_oracle
        for name, beyond, apart, shifted, side in (
            ("under_unlearned", privleak_value < -band, gap > margin,
             ks and loss_shift is not None and loss_shift < 0, "above"),
            ("over_unlearned", privleak_value > band, -gap > margin,
             ks and loss_shift is not None and loss_shift > 0, "below"),
        ):
            if not (beyond and (apart or shifted)):
                continue
            why = (f"the forget AUC {auc_unlearned:.3f} is {side} the oracle's "
                   f"{auc_oracle:.3f} by more than the {margin:.3f} noise allows" if apart else
                   f"the forget losses differ from the oracle's (KS p = {ks_pvalue:.2g} < "
                   f"{alpha / 2:g}), {'lower' if side == 'above' else 'higher'} than under "
                   "retraining")
            sign = "<" if side == "above" else ">"
            out.append(VerificationFlag(
                name=name,  # type: ignore[arg-type]
                value=privleak_value, threshold=-band if side == "above" else band,
                parameter="unlearning.verify.privleak_band",
                message=f"{name}: PrivLeak {privleak_value:+.1f} {sign} "
                f"{'−' if side == 'above' else '+'}{band:g} and {why}"))
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
    return (f"Indistinguishable from retraining at this sample size: PrivLeak "
            f"{f.privleak:+.1f}% (CI {f.privleak_ci_low:+.1f} to {f.privleak_ci_high:+.1f}; "
            f"this test shows departures beyond ±{f.privleak_floor:.0f}% only), "
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


@dataclass
class Verifier:
    """Attacks every request × method's models on the forget, retained and held-out sets,
    reusing per-example losses through the run's signal cache."""

    ctx: UnlearningContext
    _memo: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    _utility_before: tuple[str, float] | None = None
    _ulira: ULiRA | None = None
    _canary_memo: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _canary_sets: tuple[EncodedSet, EncodedSet] | None = None
    _utility_memo: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def cfg(self) -> VerifyConfig:
        return self.ctx.ucfg.verify

    @property
    def ulira(self) -> ULiRA:
        """U-LiRA's runner, built once: its references are shared by every request."""
        if self._ulira is None:
            self._ulira = ULiRA(self.ctx, self.ulira_signal)
        return self._ulira

    def prepare(self, methods: Sequence[str]) -> None:
        """Check up front that the run handed U-LiRA its references when some method will
        use them (the audit's references stage trains them)."""
        v = self.cfg
        if v.ulira_references and any(m in v.ulira_methods for m in methods):
            self.ulira.references()

    def ulira_signal(self, model: UnlearnedModel, data: EncodedSet) -> np.ndarray:
        """U-LiRA's per-example signal: the confidence logit φ (classification), else −loss."""
        if model.is_ensemble:
            return -self.losses(model, data)
        signals = self._signals(model, data)
        return np.asarray(signals.phi if signals.phi is not None else -signals.loss, float)

    def _keys(self, model: UnlearnedModel, data: EncodedSet) -> tuple[str, str]:
        rsha = hashlib.sha256(("ids:" + "\n".join(data.record_ids)).encode()).hexdigest()
        msha = hashlib.sha256(f"{self._context_sha()}:{model.sha256}".encode()).hexdigest()
        return msha, rsha

    def _signals(self, model: UnlearnedModel, data: EncodedSet) -> SignalSet:
        """Every cached signal of a single-adapter model on ``data``."""
        msha, rsha = self._keys(model, data)
        net, task = self.ctx.bundle.model, self.ctx.recipe.task
        with preserved_adapter(net):
            set_adapter_state(net, model.states[0])
            return cached_signals(net, data, task=task, model_sha256=msha,
                                  records_sha256=rsha, cache_dir=self.ctx.run.path("signals"))

    def _context_sha(self) -> str:
        b, m = self.ctx.bundle, self.ctx.model_cfg
        return hashlib.sha256(json.dumps({
            "base": b.base_sha256, "adapter": b.adapter_config_sha256, "task": m.task,
            "max_length": m.max_length}, sort_keys=True).encode()).hexdigest()

    def losses(self, model: UnlearnedModel, data: EncodedSet) -> np.ndarray:
        """Per-example losses of ``model`` on ``data``, from the signal cache when there."""
        msha, rsha = self._keys(model, data)
        if (msha, rsha) in self._memo:
            return self._memo[(msha, rsha)]
        cache = self.ctx.run.path("signals")
        net, task = self.ctx.bundle.model, self.ctx.recipe.task
        if model.is_ensemble:  # the probability-averaged shards: losses only
            path = cache / f"{msha[:16]}-{rsha[:16]}.npz"
            if path.is_file():
                loss = load_signals(path).loss
            else:
                with preserved_adapter(net):
                    loss = per_example_loss(net, model.states, data, task)
                save_signals(SignalSet(loss=loss), path)
        else:
            loss = self._signals(model, data).loss
        self._memo[(msha, rsha)] = np.asarray(loss, float)
        return self._memo[(msha, rsha)]

    def _auc(self, members: np.ndarray, nonmembers: np.ndarray) -> AttackMetrics:
        a = self.ctx.attacks
        scores = -np.r_[members, nonmembers]
        is_member = np.r_[np.ones(members.size), np.zeros(nonmembers.size)]
        return evaluate_scores(scores, is_member, fprs=tuple(a.fprs), confidence=a.confidence,
                               n_bootstrap=a.bootstrap, seed=self.ctx.recipe.seed)

    def retain_set(self, erased: frozenset[str]) -> EncodedSet:
        """Up to ``retain_sample`` retained training records, chosen by the run's seed."""
        ids = sorted({r for d in self.ctx.clients.values() for r in d.record_ids} - erased
                     - self.ctx.audit_canary_ids)
        rng = np.random.default_rng(self.ctx.recipe.seed)
        if len(ids) > self.cfg.retain_sample:
            ids = sorted(rng.choice(ids, self.cfg.retain_sample, replace=False).tolist())
        return self.ctx.records(frozenset(ids))

    def canary_exposure(self, model: UnlearnedModel, canaries: list[Canary]) -> float:
        """Mean exposure in bits of ``canaries`` (among the run's) under ``model``; the
        candidates' log-perplexities are computed once per model."""
        ctx = self.ctx
        acfg = ctx.attacks.canaries
        everyone = list(ctx.data.canaries)
        if self._canary_sets is None:
            def as_set(texts: list[str], prefix: str) -> EncodedSet:
                return ctx.encode([Record(id=f"{prefix}-{i}", subject_id=prefix, text=t)
                                   for i, t in enumerate(texts)])

            self._canary_sets = (
                as_set([c.text for c in everyone], "canary"),
                as_set(candidate_texts(acfg, everyone, seed=ctx.recipe.seed), "candidate"))
        if model.sha256 not in self._canary_memo:
            net = ctx.bundle.model
            states = model.states if model.is_ensemble else None
            with preserved_adapter(net):
                set_adapter_state(net, model.states[0])
                self._canary_memo[model.sha256] = (
                    sequence_nll(net, self._canary_sets[0], states=states),
                    sequence_nll(net, self._canary_sets[1], states=states))
        canary_nll, candidate_nll = self._canary_memo[model.sha256]
        pick = [everyone.index(c) for c in canaries]
        return exposure_of(canary_nll[pick].tolist(), candidate_nll.tolist(), canaries, acfg,
                           model_name=model.sha256[:12]).mean_bits

    def verify(
        self, result: UnlearningResult, *, model: UnlearnedModel, oracle: UnlearnedModel | None,
        forget: EncodedSet, erased: frozenset[str], unlearner: Unlearner | None = None,
        request: ResolvedRequest | None = None,
    ) -> UnlearningResult:
        """Fill ``result``'s forget/retain evidence, U-LiRA, canary exposure, flags and verdict
        line (in place). ``unlearner`` and ``request``: the method and request that produced
        ``model``, which U-LiRA runs again on its reference models."""
        ctx = self.ctx
        confidence = ctx.attacks.confidence
        trained = UnlearnedModel(states=[ctx.trained_state])
        non = self.losses(trained, ctx.nonmembers)
        f, r = result.forget, result.retain
        f.n_nonmembers = len(ctx.nonmembers)
        f.privleak_band = self.cfg.privleak_band
        auc = auc_o = None
        margin, shift = math.inf, None
        half = per_test_confidence(confidence)  # two tests of one claim (flags_for)
        if len(forget) and len(ctx.nonmembers):
            n, m = len(forget), len(ctx.nonmembers)
            margin = auc_margin(n, m, half)
            f.auc_floor = auc_floor(n, m, confidence)
            l_before = self.losses(trained, forget)
            l_after = self.losses(model, forget)
            non_after = self.losses(model, ctx.nonmembers)
            auc, before = self._auc(l_after, non_after), self._auc(l_before, non)
            f.mia_auc, f.mia_auc_ci_low, f.mia_auc_ci_high = \
                auc.auc, auc.auc_ci_low, auc.auc_ci_high
            f.mia_auc_original, f.mia_auc_original_ci_low, f.mia_auc_original_ci_high = \
                before.auc, before.auc_ci_low, before.auc_ci_high
            f.vulnerability_before = vulnerability(l_before, non)
            f.vulnerability_after = vulnerability(l_after, non_after)
            if oracle is not None:
                l_oracle = self.losses(oracle, forget)
                non_oracle = self.losses(oracle, ctx.nonmembers)
                auc_o = self._auc(l_oracle, non_oracle)
                f.mia_auc_oracle, f.mia_auc_oracle_ci_low, f.mia_auc_oracle_ci_high = \
                    auc_o.auc, auc_o.auc_ci_low, auc_o.auc_ci_high
                f.privleak = privleak(auc.auc, auc_o.auc)
                f.privleak_ci_low = privleak(auc.auc_ci_high, auc_o.auc)
                f.privleak_ci_high = privleak(auc.auc_ci_low, auc_o.auc)
                f.ks_pvalue = forget_quality(l_after, l_oracle)
                f.ks_pvalue_floor = ks_pvalue_floor(n, n)
                f.vulnerability_oracle = vulnerability(l_oracle, non_oracle)
                f.privleak_floor = privleak_floor(n, m, auc_o.auc, half)
                f.records_needed = records_needed(m, auc_o.auc, half)
                shift = float(np.median(l_after) - np.median(l_oracle))
                f.informative = f.privleak_floor < 100.0
        retain = self.retain_set(erased)
        if len(retain) and len(ctx.nonmembers):
            after = self._auc(self.losses(model, retain), self.losses(model, ctx.nonmembers))
            before_r = self._auc(self.losses(trained, retain), non)
            r.n_records = len(retain)
            r.mia_auc, r.mia_auc_ci_low, r.mia_auc_ci_high = \
                after.auc, after.auc_ci_low, after.auc_ci_high
            r.mia_auc_before = before_r.auc
            r.mia_auc_increase = after.auc - before_r.auc
        held = set(forget.record_ids)
        canaries = [c for c in ctx.data.canaries if held & set(c.carriers)]
        if canaries and ctx.recipe.task == "causal-lm":
            f.exposure_canaries = len(canaries)
            f.exposure_bits_before = self.canary_exposure(trained, canaries)
            f.exposure_bits = self.canary_exposure(model, canaries)
            if oracle is not None:
                f.exposure_bits_oracle = self.canary_exposure(oracle, canaries)
        u = self.ulira.evaluate(method=result.method, unlearner=unlearner, request=request,
                                model=model, forget=forget)
        result.ulira_auc, result.ulira_auc_ci_low, result.ulira_auc_ci_high = \
            u.auc, u.ci_low, u.ci_high
        result.ulira_references, result.ulira_reason = u.references, u.reason
        r.utility_before = self.trained_utility()[1]
        result.utility_drop = utility_drop(r.utility_before, r.utility, r.utility_metric)
        drop_ci = self.utility_drop_ci(model, r.utility_metric)
        if drop_ci is not None:
            result.utility_drop_ci_low, result.utility_drop_ci_high = drop_ci
        if result.method != oracle_name():  # the yardstick is never judged against itself
            result.verification_flags = flags_for(
                privleak_value=f.privleak, auc_unlearned=auc.auc if auc else None,
                auc_oracle=auc_o.auc if auc_o else None, margin=margin,
                drop=result.utility_drop, drop_ci=drop_ci, cfg=self.cfg,
                ks_pvalue=f.ks_pvalue, loss_shift=shift, alpha=1 - confidence)
        result.flags += [v.message for v in result.verification_flags]
        result.verdict = verdict_line(result, alpha=1 - half)
        return result

    def trained_utility(self) -> tuple[str, float]:
        """The trained model's utility on the test split, once."""
        ctx = self.ctx
        if self._utility_before is None:
            self._utility_before = utility(ctx.bundle.model, [ctx.trained_state], ctx.test,
                                           ctx.recipe.task)
            set_adapter_state(ctx.bundle.model, ctx.trained_state)
        return self._utility_before

    def _per_example_utility(self, model: UnlearnedModel) -> tuple[np.ndarray, np.ndarray]:
        if model.sha256 not in self._utility_memo:
            ctx = self.ctx
            net = ctx.bundle.model
            with preserved_adapter(net):
                self._utility_memo[model.sha256] = per_example_utility(
                    net, model.states, ctx.test, ctx.recipe.task)
        return self._utility_memo[model.sha256]

    def utility_drop_ci(self, model: UnlearnedModel, metric: str) -> tuple[float, float] | None:
        """Paired-bootstrap interval of ``model``'s utility drop from the trained model's."""
        a = self.ctx.attacks
        trained = UnlearnedModel(states=[self.ctx.trained_state])
        return utility_drop_interval(
            self._per_example_utility(trained), self._per_example_utility(model), metric,
            confidence=a.confidence, n_resamples=a.bootstrap, seed=self.ctx.recipe.seed)
