"""Evidence that an unlearned model behaves like the oracle (retrained without the data).

For one erasure request served by one method, :class:`Verifier` attacks the forget records
(vs the held-out non-members) under the unlearned model, the oracle and the trained model, and
the retained records before and after.

- **The maths** — membership AUC, PrivLeak, forget quality, collateral, the flags and the
  verdict line — are plain functions in :mod:`privaudit.unlearning.evidence`.
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
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np

from privaudit.attacks.canary_exposure import exposure_of
from privaudit.attacks.metrics import AttackMetrics, evaluate_scores
from privaudit.attacks.references import preserved_adapter
from privaudit.attacks.scores.inputs import SignalSet
from privaudit.attacks.signals import cached_signals, load_signals, save_signals, sequence_nll
from privaudit.mechanisms.data.canaries import Canary, candidate_texts
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.model.shipped import shipped
from privaudit.mechanisms.models import set_adapter_state
from privaudit.mechanisms.tasks import EncodedSet
from privaudit.unlearning.base import UnlearnedModel, Unlearner, UnlearningContext, oracle_name
from privaudit.unlearning.comparison import ForgetComparison, compare_forget
from privaudit.unlearning.config import VerifyConfig
from privaudit.unlearning.evaluate import per_example_loss, per_example_utility
from privaudit.unlearning.evidence import flags_for as flags_for
from privaudit.unlearning.evidence import forget_quality as forget_quality
from privaudit.unlearning.evidence import privleak as privleak
from privaudit.unlearning.evidence import rank_results as rank_results
from privaudit.unlearning.evidence import utility_drop as utility_drop
from privaudit.unlearning.evidence import verdict_line
from privaudit.unlearning.evidence import vulnerability as vulnerability
from privaudit.unlearning.oracle import retrain_replicates
from privaudit.unlearning.paired import (
    match_nonmembers,
)
from privaudit.unlearning.power import (
    utility_drop_interval,
)
from privaudit.unlearning.relearning import probe_relearning, relearnable_flag
from privaudit.unlearning.requests import ResolvedRequest
from privaudit.unlearning.results import ForgetEvidence, RetainEvidence, UnlearningResult
from privaudit.unlearning.robustness import Exposure, ShippedProbe, not_robust_flag
from privaudit.unlearning.ulira import ULiRA, ulira_references_needed

__all__ = [
    "ForgetComparison",
    "Verifier",
    "compare_forget",
    "flags_for",
    "forget_quality",
    "privleak",
    "rank_results",
    "utility_drop",
    "vulnerability",
]


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
    _replicates: dict[frozenset[str], list[UnlearnedModel]] = field(default_factory=dict)
    _retain_memo: dict[frozenset[str], EncodedSet] = field(default_factory=dict)
    _shipped: ShippedProbe | None = None
    probe_seconds: float = 0.0  # the robustness probes' time (unlearning.robustness)
    _relearned: dict[tuple[str, int, tuple[str, ...]], tuple[np.ndarray, np.ndarray]] = \
        field(default_factory=dict)

    @property
    def cfg(self) -> VerifyConfig:
        return self.ctx.ucfg.verify

    @property
    def shipped_probe(self) -> ShippedProbe:
        """The shipped-variant probe, built once: it memoises losses across methods."""
        if self._shipped is None:
            self._shipped = ShippedProbe(self.ctx, self._auc)
        return self._shipped

    @property
    def ulira(self) -> ULiRA:
        """U-LiRA's runner, built once: its references are shared by every request."""
        if self._ulira is None:
            self._ulira = ULiRA(self.ctx, self.ulira_signal)
        return self._ulira

    def prepare(self, methods: Sequence[str]) -> None:
        """Check up front that the run handed U-LiRA its references when some method will
        use them (the audit's references stage trains them)."""
        if ulira_references_needed(self.cfg, methods):
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
        """Up to ``retain_sample`` retained training records, chosen by the run's seed;
        encoded once per erased set (every method of a request is judged on the same)."""
        if erased not in self._retain_memo:
            ids = sorted({r for d in self.ctx.clients.values() for r in d.record_ids}
                         - erased - self.ctx.audit_canary_ids)
            rng = np.random.default_rng(self.ctx.recipe.seed)
            if len(ids) > self.cfg.retain_sample:
                ids = sorted(rng.choice(ids, self.cfg.retain_sample, replace=False).tolist())
            self._retain_memo[erased] = self.ctx.records(frozenset(ids))
        return self._retain_memo[erased]

    def canary_exposure(self, model: UnlearnedModel, canaries: list[Canary],
                        variant: str | None = None) -> float:
        """Mean exposure in bits of ``canaries`` (among the run's) under ``model`` (or its
        shipped ``variant``: one adapter only); the candidates' log-perplexities are computed
        once per model."""
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
        key = f"{model.sha256}:{variant or 'fp32'}"
        if key not in self._canary_memo:
            net = ctx.bundle.model
            states = model.states if model.is_ensemble else None
            with preserved_adapter(net):
                set_adapter_state(net, model.states[0])
                with shipped(net, variant) if variant else nullcontext():
                    sets = [self.shipped_probe.prepared(s, variant) if variant else s
                            for s in self._canary_sets]
                    self._canary_memo[key] = (sequence_nll(net, sets[0], states=states),
                                              sequence_nll(net, sets[1], states=states))
        canary_nll, candidate_nll = self._canary_memo[key]
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
        cmp = ForgetComparison()
        if len(forget) and len(ctx.nonmembers):
            trained_losses = (self.losses(trained, forget), non)
            after = (self.losses(model, forget), self.losses(model, ctx.nonmembers))
            theirs = None if oracle is None else (self.losses(oracle, forget),
                                                  self.losses(oracle, ctx.nonmembers))
            extra = [] if oracle is None or result.method == oracle_name() else [
                (self.losses(o, forget), self.losses(o, ctx.nonmembers))
                for o in self.replicates(erased)]
            cmp = compare_forget(f, before=trained_losses, after=after, oracle=theirs,
                                 auc=self._auc, confidence=confidence,
                                 matching=match_nonmembers(forget, ctx.nonmembers),
                                 replicates=extra, n_resamples=ctx.attacks.bootstrap,
                                 seed=ctx.recipe.seed)
        self._retain_evidence(r, model, trained, erased, non)
        self._canary_evidence(f, model, oracle, trained, forget)
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
                privleak_value=f.privleak, auc_unlearned=cmp.auc.auc if cmp.auc else None,
                difference=cmp.difference, spread=cmp.spread, drop=result.utility_drop,
                drop_ci=drop_ci, cfg=self.cfg, confidence=confidence)
            self._probe(result, model=model, oracle=oracle, forget=forget, erased=erased)
        result.flags += [v.message for v in result.verification_flags]
        result.verdict = verdict_line(result, alpha=1 - confidence)
        return result

    def _probe(self, result: UnlearningResult, *, model: UnlearnedModel,
               oracle: UnlearnedModel | None, forget: EncodedSet, erased: frozenset[str]
               ) -> None:
        """The shipped-variant and relearning probes (``unlearning.robustness``), their flags
        added to ``result``'s."""
        ctx, rcfg = self.ctx, self.ctx.ucfg.robustness
        t0 = time.perf_counter()
        if rcfg.variants and len(forget) and len(ctx.nonmembers):
            match = match_nonmembers(forget, ctx.nonmembers)
            held = ctx.nonmembers.subset(list(match.indices)) if match.matched \
                else ctx.nonmembers
            result.robustness = self.shipped_probe.probe(
                rcfg.variants, model=model, oracle=oracle, forget=forget,
                nonmembers=held, replicates=self.replicates(erased) if oracle else [],
                exposure=self._variant_exposure(forget))
            flag = not_robust_flag(result.robustness, result.verification_flags,
                                   band=self.cfg.privleak_band)
            result.verification_flags += [flag] if flag else []
        result.relearning = probe_relearning(
            ctx, model=model, oracle=oracle, forget=forget, erased=erased,
            losses=self.losses, auc=self._auc, request_id=result.request_id,
            memo=self._relearned)
        flag = relearnable_flag(result.relearning, confidence=ctx.attacks.confidence)
        result.verification_flags += [flag] if flag else []
        self.probe_seconds += time.perf_counter() - t0

    def _variant_exposure(self, forget: EncodedSet) -> Exposure | None:
        """A causal LM's canary exposure under a variant, for the canaries ``forget``
        carries (None: no such canaries, or an ensemble)."""
        held = set(forget.record_ids)
        canaries = [c for c in self.ctx.data.canaries if held & set(c.carriers)]
        if not canaries or self.ctx.recipe.task != "causal-lm":
            return None

        def exposure(model: UnlearnedModel, variant: str) -> float | None:
            return None if model.is_ensemble else self.canary_exposure(model, canaries,
                                                                       variant)
        return exposure

    def replicates(self, erased: frozenset[str]) -> list[UnlearnedModel]:
        """The oracle retrained ``oracle_replicates`` more times with other seeds (once per
        erased set, kept for the run's other methods)."""
        if erased not in self._replicates:
            self._replicates[erased] = retrain_replicates(self.ctx, erased,
                                                          self.cfg.oracle_replicates)
        return self._replicates[erased]

    def _retain_evidence(self, r: RetainEvidence, model: UnlearnedModel,
                         trained: UnlearnedModel, erased: frozenset[str],
                         non: np.ndarray) -> None:
        """Collateral: the retained records' membership AUC after vs before (``non``: the
        trained model's non-member losses)."""
        retain, nonmembers = self.retain_set(erased), self.ctx.nonmembers
        if not (len(retain) and len(nonmembers)):
            return
        after = self._auc(self.losses(model, retain), self.losses(model, nonmembers))
        before = self._auc(self.losses(trained, retain), non)
        r.n_records = len(retain)
        r.mia_auc, r.mia_auc_ci_low, r.mia_auc_ci_high = \
            after.auc, after.auc_ci_low, after.auc_ci_high
        r.mia_auc_before = before.auc
        r.mia_auc_increase = after.auc - before.auc

    def _canary_evidence(self, f: ForgetEvidence, model: UnlearnedModel,
                         oracle: UnlearnedModel | None, trained: UnlearnedModel,
                         forget: EncodedSet) -> None:
        """Exposure of the secret canaries carried by the forget set (causal LMs)."""
        held = set(forget.record_ids)
        canaries = [c for c in self.ctx.data.canaries if held & set(c.carriers)]
        if not canaries or self.ctx.recipe.task != "causal-lm":
            return
        f.exposure_canaries = len(canaries)
        f.exposure_bits_before = self.canary_exposure(trained, canaries)
        f.exposure_bits = self.canary_exposure(model, canaries)
        if oracle is not None:
            f.exposure_bits_oracle = self.canary_exposure(oracle, canaries)

    def trained_utility(self) -> tuple[str, float]:
        """The trained model's utility on the test split, once."""
        if self._utility_before is None:
            self._utility_before = self.model_utility(
                UnlearnedModel(states=[self.ctx.trained_state]))
        return self._utility_before

    def model_utility(self, model: UnlearnedModel) -> tuple[str, float]:
        """Accuracy or perplexity of ``model`` on the test split, from the per-example
        pieces the utility-drop interval resamples (one pass over the test split per model,
        as :func:`~privaudit.unlearning.evaluate.utility` sums them)."""
        values, weights = self._per_example_utility(model)
        if self.ctx.recipe.task == "classification":
            return "accuracy", float(values.sum()) / max(len(values), 1)
        return "perplexity", math.exp(float(values.sum()) / max(float(weights.sum()), 1.0))

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
