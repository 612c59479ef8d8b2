"""U-LiRA: a per-example membership test of an unlearned model (Hayes, Shumailov,
Triantafillou, Khalifa, Papernot, "Inexact Unlearning Needs More Careful Evaluations to Avoid
a False Sense of Privacy", 2024, §4: per-example U-MIAs; their U-LiRA adapts LiRA, Carlini et
al. 2022, to unlearning).

The question, per forget record x: does the model look like one that *trained on x and then
unlearned it with this method*, or like one that *never saw x*? Population attacks (one
threshold for every record, like the LOSS attack behind PrivLeak) overstate how well
unlearning worked; a test calibrated per record does not.

Construction (one erasure request × one method):

1. **Records.** F = the request's forget records; N = as many held-out audit non-members as
   there are forget records (fewer if the audit split has fewer), drawn by the run's seed and
   shared by every method of the request. Matching the sizes keeps a reference's unlearning
   job the size of the target's (gradient methods stop on the forget set's mean loss, so the
   set's size changes what they do to each record).
2. **References.** 2·P reference adapters (P = ``unlearning.verify.ulira_references``) trained
   once per run by the audit's references stage (:mod:`privaudit.audit.stages.references`)
   and handed to both U-LiRA (the first 2·P) and the attack battery (the first
   ``attacks.references.count``): one recipe, one population, one cache in
   ``models/references/``; their keep masks are balanced complementary pairs, so every
   record of F ∪ N is IN for exactly P of them.
3. **Unlearning the references.** Reference j unlearns U_j = (F ∪ N) ∩ IN_j with the judged
   method (same config, its own seed), from its own client partition, its retained data being
   the rest of what it trained on; its stopping reference is its mean loss on the audit
   non-members it did not train on (the target's rule, in the reference's world). Each
   unlearned reference is cached under ``unlearning/<request>/ulira/<method>/``. Under that
   model every record of U_j is *trained-then-unlearned*, every other record of F ∪ N is
   *never seen*.
4. **Scores.** s = the confidence logit φ (LiRA's signal) for classification, −loss for a
   causal LM, of every record under every unlearned reference and under the judged model.
5. **Per-example test** (:func:`ulira_scores`). Per record: μ_u, μ_n = the means of s over the
   references that unlearned it / never saw it.
   - From :data:`PER_EXAMPLE_MIN` pairs on — Hayes et al.'s U-LiRA proper — each side gets its
     own per-record σ and Λ = log N(s; μ_u, σ_u²) − log N(s; μ_n, σ_n²) (LiRA's online test).
   - With fewer pairs (the affordable case: 1–4), μ_u rests on 1–4 draws and the two-sided
     ratio has no power: on the memorising tiny model an untouched model judged as unlearned
     by gradient ascent, NPO or GradDiff scored AUC 0.51–0.57 with 2 pairs, because those
     methods stop where the forget set looks unseen *on average*, so μ_u − μ_n is noise. The
     test is then one-sided against the never-seen side (LiRA's offline test, which Carlini
     et al. recommend for few references): Λ = log Φ((s − μ_n)/σ), σ pooled over records
     (within-record residuals; with one pair there are none, σ² = ½·Var over records of
     s_u − s_n). The unlearned references still matter: μ_n(x) comes from models that ran the
     same unlearning job on other records, so a method that shifts every record's score is
     not mistaken for one that forgot x. Same model, same records: 0.71–0.77 for the untouched
     model, 0.69 for a gradient ascent whose PrivLeak also says it still remembers. With a
     shared σ the AUC does not depend on σ.
6. **AUC.** Λ of the forget records vs Λ of the non-members, both under the judged model, with
   a bootstrap CI (:func:`privaudit.attacks.metrics.evaluate_scores`). 0.5 = the forget records
   look exactly like records the model never saw; above 0.5 = the attacker still tells them
   apart. (Hayes et al. compare each record across many target models; with one target model
   the never-seen side comes from held-out records passed through the same test.)

Approximations, said in the report: a reference unlearns only this request's records (not the
requests before it, which a chained method also unlearned); a client or subject request
becomes a set of records spread over the reference's clients.

**Cost.** Each reference runs the method once, so U-LiRA is applied only to methods whose
per-reference cost is small — ``gradient_ascent``, ``graddiff``, ``npo`` (a few dozen steps)
and ``finetune_retain`` (a few federated rounds), as chosen in
``unlearning.verify.ulira_methods``. The oracle is the yardstick; ``sisa`` and ``federaser``
retrain (a SISA ensemble would need sharded references too): for them ``ulira_auc`` is None
with the reason in ``ulira_reason``.

Worked example, one record unlearned by two references (φ = 2, 4) and never seen by two
(φ = −1, 1), judged model φ = 3: μ_u = 3, μ_n = 0, σ_u = σ_n = √2. Per-example (two pairs
allowed to count as enough): Λ = (3/√2)²/2 = 2.25. One-sided with the pooled σ (√2 here):
Λ = log Φ(3/√2) = log 0.98305 = −0.01709.

>>> ref, unlearned = np.array([[2.0], [4.0], [-1.0], [1.0]]), np.array([[1], [1], [0], [0]])
>>> ulira_scores(np.array([3.0]), ref, unlearned.astype(bool), per_example_min=2).round(5)
array([2.25])
>>> ulira_scores(np.array([3.0]), ref, unlearned.astype(bool)).round(5)
array([-0.01709])
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.stats import norm

from privaudit.attacks.metrics import evaluate_scores
from privaudit.attacks.reference_plan import ReferencePlan
from privaudit.attacks.references import ReferenceSet, preserved_adapter
from privaudit.core.errors import InternalError
from privaudit.core.rundir import write_json_atomic
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.tasks import EncodedSet
from privaudit.unlearning.base import (
    UNLEARNERS,
    ErasureTarget,
    UnlearnedModel,
    Unlearner,
    UnlearningContext,
    concat_sets,
    derive_seed,
)
from privaudit.unlearning.config import VerifyConfig
from privaudit.unlearning.requests import ResolvedRequest

__all__ = ["PER_EXAMPLE_MIN", "ULiRA", "ULiRAOutcome", "pooled_sigma", "ulira_scores"]

#: Pairs of references from which each record gets its own σ_u, σ_n (below: one pooled σ).
PER_EXAMPLE_MIN = 8
_MIN_STD = 1e-6

Scorer = Callable[[UnlearnedModel, EncodedSet], np.ndarray]


def pooled_sigma(ref: np.ndarray, unlearned: np.ndarray) -> float:
    """One σ for every record: the pooled within-record standard deviation (residuals about
    each record's mean on each side, both sides pooled); with one reference per side, √(½·Var)
    over records of the paired differences (1.0 when that is undefined).

    >>> ref = np.array([[1.0, 3.0], [0.0, 0.0]])
    >>> pooled_sigma(ref, np.array([[True, True], [False, False]]))  # ½·Var([1, 3]) = 1
    1.0
    """
    ref = np.asarray(ref, np.float64)
    sel = np.asarray(unlearned, bool)
    sq, dof = 0.0, 0
    for side in (sel, ~sel):
        vals = np.where(side, ref, np.nan)
        counts = side.sum(axis=0)
        sq += float(np.nansum((vals - np.nanmean(vals, axis=0)) ** 2))
        dof += int(counts.sum() - np.count_nonzero(counts))
    if dof > 0:
        return max(float(np.sqrt(sq / dof)), _MIN_STD)
    diff = np.nanmean(np.where(sel, ref, np.nan), 0) - np.nanmean(np.where(~sel, ref, np.nan), 0)
    if diff.size < 2:
        return 1.0
    return max(float(np.sqrt(0.5 * np.var(diff, ddof=1))), _MIN_STD)


def ulira_scores(
    target: np.ndarray, ref: np.ndarray, unlearned: np.ndarray, *,
    per_example_min: int = PER_EXAMPLE_MIN,
) -> np.ndarray:
    """Λ per record, higher = more like a record the model trained on and then unlearned:
    log N(s; μ_u, σ_u²) − log N(s; μ_n, σ_n²) from ``per_example_min`` pairs on, else the
    one-sided log Φ((s − μ_n)/σ) with one pooled σ. ``target`` (N,): the judged model's scores;
    ``ref`` (R, N): the unlearned references' scores; ``unlearned`` (R, N): True where the
    reference trained on the record and unlearned it, False where it never saw it. Every
    record needs at least one reference on each side (balanced pairs give P per side)."""
    s = np.asarray(target, np.float64)
    ref = np.asarray(ref, np.float64)
    sel = np.asarray(unlearned, bool)
    n_u, n_n = sel.sum(axis=0), (~sel).sum(axis=0)
    if ref.shape != sel.shape or ref.shape[1:] != s.shape:
        raise ValueError(f"U-LiRA: shapes differ: target {s.shape}, references {ref.shape}, "
                         f"mask {sel.shape}")
    if s.size and (n_u.min() < 1 or n_n.min() < 1):
        raise ValueError("U-LiRA needs every record unlearned by >= 1 reference and unseen by "
                         ">= 1")
    mu_u = np.nanmean(np.where(sel, ref, np.nan), axis=0)
    mu_n = np.nanmean(np.where(~sel, ref, np.nan), axis=0)
    if s.size and min(n_u.min(), n_n.min()) >= max(per_example_min, 2):
        sd_u = np.maximum(np.nanstd(np.where(sel, ref, np.nan), axis=0, ddof=1), _MIN_STD)
        sd_n = np.maximum(np.nanstd(np.where(~sel, ref, np.nan), axis=0, ddof=1), _MIN_STD)
        log_u = -0.5 * ((s - mu_u) / sd_u) ** 2 - np.log(sd_u)
        log_n = -0.5 * ((s - mu_n) / sd_n) ** 2 - np.log(sd_n)
        return np.asarray(log_u - log_n, np.float64)
    sigma = pooled_sigma(ref, sel) if s.size else 1.0
    return np.asarray(norm.logcdf((s - mu_n) / sigma), np.float64)


@dataclass
class ULiRAOutcome:
    """U-LiRA of one request × method: the AUC, or None with the reason."""

    auc: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    references: int | None = None
    reason: str | None = None
    n_forget: int = 0
    n_nonmembers: int = 0
    seconds: float = 0.0
    forget_scores: list[float] = field(default_factory=list)  # Λ per forget record


def _sha(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def ulira_references_needed(verify: VerifyConfig, methods: Sequence[str]) -> int:
    """Reference models U-LiRA needs to judge requests served by ``methods``: 2P when it
    judges one of them (``verify.ulira_methods``, P = ``verify.ulira_references``), else 0."""
    judged = any(m in verify.ulira_methods for m in methods)
    return 2 * verify.ulira_references if judged else 0


@dataclass
class ULiRA:
    """Runs U-LiRA for the erase stage: references trained (or loaded) once per run, the
    non-member sample drawn once per request, every model scored through ``score``."""

    ctx: UnlearningContext
    score: Scorer  # the judged signal s of a model on records (cached by the caller)
    _records: dict[str, Record] = field(default_factory=dict)
    _encoded: dict[str, tuple[EncodedSet, int]] = field(default_factory=dict)
    _samples: dict[str, tuple[EncodedSet, EncodedSet]] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        return self.ctx.ucfg.verify.ulira_references

    def skip_reason(self, method: str, model: UnlearnedModel) -> str | None:
        """Why U-LiRA does not judge ``method`` (None: it does)."""
        v = self.ctx.ucfg.verify
        if not self.pairs:
            return "unlearning.verify.ulira_references is 0 (U-LiRA off)"
        unsupported = UNLEARNERS.get(method).ulira_unsupported if method in UNLEARNERS else None
        if unsupported:
            return (f"not applied to {method}: {unsupported}; U-LiRA runs the method "
                    "once per reference model, so it judges only the cheap methods "
                    "(gradient_ascent, graddiff, npo, finetune_retain)")
        if method not in v.ulira_methods:
            return (f"{method} is not in unlearning.verify.ulira_methods "
                    f"({', '.join(v.ulira_methods) or 'empty'})")
        if model.is_ensemble:
            return f"{method} produced an ensemble; U-LiRA references are single adapters"
        return None

    # ------------------------------------------------------------------ references

    def references(self) -> ReferenceSet:
        """The run's references (``ctx.references``, trained once by the audit's references
        stage): U-LiRA uses the first 2·P."""
        refs = self.ctx.references
        if refs is None or refs.plan is None or refs.count < 2 * self.pairs:
            have = 0 if refs is None else refs.count
            raise InternalError(
                f"U-LiRA needs {2 * self.pairs} reference models (unlearning.verify."
                f"ulira_references = {self.pairs} pairs); the run handed it {have}"
            )
        return refs

    @staticmethod
    def _plan(refs: ReferenceSet) -> ReferencePlan:
        if refs.plan is None:
            raise InternalError("U-LiRA: the reference set carries no training plan")
        return refs.plan

    def _target_noise(self) -> Mapping[str, float] | None:
        privacy = getattr(self.ctx, "privacy", None)
        noise = getattr(privacy, "noise_multipliers", None)
        return dict(noise) if noise else None

    def _noise_multiplier(self) -> float | None:
        noise = self._target_noise()
        return float(np.median(list(noise.values()))) if noise else None

    def _index(self) -> None:
        if self._encoded:
            return
        ctx = self.ctx
        for r in [*ctx.data.training, *ctx.data.nonmembers, *ctx.data.test]:
            self._records.setdefault(r.id, r)
        for data in [*ctx.clients.values(), ctx.nonmembers, ctx.test]:
            for i, rid in enumerate(data.record_ids):
                self._encoded.setdefault(rid, (data, i))

    def encoded(self, ids: Sequence[str]) -> EncodedSet:
        """Records by id, from the run's encoded sets (frozen-prefix features included);
        ids the run never encoded are encoded now."""
        self._index()
        missing = [self._records[i] for i in ids if i not in self._encoded]
        if missing:
            extra = self.ctx.encode(missing)
            for i, rid in enumerate(extra.record_ids):
                self._encoded[rid] = (extra, i)
        pad = self.ctx.test.pad_id
        parts = [self._encoded[i][0].subset([self._encoded[i][1]]) for i in ids]
        return concat_sets(parts, pad_id=pad)

    def _clients_of(self, refs: ReferenceSet, j: int) -> dict[str, EncodedSet]:
        """Reference j's client partition, as :func:`train_references` drew it."""
        self._index()
        inside = [self._records[rid] for rid, k in zip(refs.population_ids, refs.keep[j],
                                                       strict=True) if k]
        parts = self._plan(refs).clients_of(inside, j)
        return {c: self.encoded([r.id for r in recs]) for c, recs in parts.items() if recs}

    # ------------------------------------------------------------------ one request

    def sample(self, request: ResolvedRequest, forget: EncodedSet) -> tuple[EncodedSet,
                                                                           EncodedSet]:
        """(forget records in the references' population, the matched non-member sample)."""
        if request.id not in self._samples:
            refs = self.references()
            population = set(refs.population_ids)
            f_ids = [r for r in forget.record_ids if r in population]
            non = [r for r in self.ctx.nonmembers.record_ids if r in population]
            rng = np.random.default_rng(derive_seed(self.ctx.recipe.seed, "ulira", request.id))
            n = min(len(f_ids), len(non))
            picked = sorted(rng.choice(len(non), n, replace=False).tolist()) if n else []
            self._samples[request.id] = (self.encoded(f_ids),
                                         self.encoded([non[i] for i in picked]))
        return self._samples[request.id]

    def evaluate(
        self, *, method: str, unlearner: Unlearner | None, request: ResolvedRequest | None,
        model: UnlearnedModel, forget: EncodedSet,
    ) -> ULiRAOutcome:
        """U-LiRA of ``model`` (``method``'s answer to ``request``), or the reason it is not
        evaluated."""
        reason = self.skip_reason(method, model)
        if reason is not None:
            return ULiRAOutcome(reason=reason)
        if unlearner is None or request is None:
            return ULiRAOutcome(reason="U-LiRA needs the method and the request that produced "
                                "the model (verify was called without them)")
        started = time.perf_counter()
        f_set, n_set = self.sample(request, forget)
        if len(f_set) == 0 or len(n_set) == 0:
            what = "forget records" if len(f_set) == 0 else "held-out non-members"
            return ULiRAOutcome(reason=f"no {what} in the reference models' population "
                                "(attacks.references.population)")
        refs = self.references()
        ids = [*f_set.record_ids, *n_set.record_ids]
        both = concat_sets([f_set, n_set], pad_id=f_set.pad_id)
        n_refs = 2 * self.pairs
        keep = refs.keep_for(ids)[:n_refs]
        ref_scores = np.stack([
            self.score(self._unlearned_reference(refs, j, method, unlearner, request,
                                                 frozenset(np.asarray(ids)[keep[j]].tolist())),
                       both)
            for j in range(n_refs)])
        lam = ulira_scores(self.score(model, both), ref_scores, keep)
        a = self.ctx.attacks
        is_member = np.r_[np.ones(len(f_set)), np.zeros(len(n_set))]
        m = evaluate_scores(lam, is_member, fprs=tuple(a.fprs), confidence=a.confidence,
                            n_bootstrap=a.bootstrap, seed=self.ctx.recipe.seed)
        return ULiRAOutcome(
            auc=m.auc, ci_low=m.auc_ci_low, ci_high=m.auc_ci_high, references=n_refs,
            n_forget=len(f_set), n_nonmembers=len(n_set),
            seconds=time.perf_counter() - started,
            forget_scores=[float(x) for x in lam[: len(f_set)]])

    def _unlearned_reference(
        self, refs: ReferenceSet, j: int, method: str, unlearner: Unlearner,
        request: ResolvedRequest, forget: frozenset[str],
    ) -> UnlearnedModel:
        """Reference j after ``method`` unlearned ``forget`` from it (cached in the run)."""
        ctx = self.ctx
        start = UnlearnedModel(states=[refs.states[j]])
        if not forget:
            return start
        seed = derive_seed(ctx.recipe.seed, method, request.id, "ulira", j)
        key = _sha({"reference": refs.sha256[j], "method": method, "seed": seed,
                    "unlearning": ctx.ucfg.model_dump(mode="json"), "forget": sorted(forget),
                    "noise": self._noise_multiplier()})
        path = ctx.run.path("unlearning", request.id, "ulira", method, f"ref-{j:03d}",
                            "adapter.safetensors")
        meta = path.with_name("meta.json")
        if path.is_file() and meta.is_file():
            stored = json.loads(meta.read_text(encoding="utf-8"))
            cached = UnlearnedModel.load(path)
            if stored.get("key") == key and stored.get("sha256") == cached.sha256:
                return cached
        clients = self._clients_of(refs, j)
        unseen = {rid for rid, k in zip(refs.population_ids, refs.keep[j], strict=True)
                  if not k}
        out_non = [r for r in ctx.nonmembers.record_ids if r in unseen]
        ref_ctx = replace(
            ctx, recipe=self._plan(refs).recipe,
            clients=clients, trained_state=refs.states[j],
            nonmembers=self.encoded(out_non))
        ref_loss = float(np.mean(self._losses(start, ref_ctx.nonmembers))) \
            if out_non else 0.0
        target = ErasureTarget(request=request, forget=forget, erased=forget, start=start,
                               seed=seed, reference_loss=ref_loss)
        with preserved_adapter(ctx.bundle.model):
            outcome = unlearner.unlearn(ref_ctx, target, {"methods": {}, "requests": []})
        sha = outcome.model.save(path)
        write_json_atomic(meta, {"key": key, "sha256": sha, "reference": refs.sha256[j],
                                 "forget_records": len(forget),
                                 "stopping_reason": outcome.stopping_reason})
        return outcome.model

    def _losses(self, model: UnlearnedModel, data: EncodedSet) -> np.ndarray:
        from privaudit.unlearning.evaluate import per_example_loss

        with preserved_adapter(self.ctx.bundle.model):
            return per_example_loss(self.ctx.bundle.model, model.states, data,
                                    self.ctx.recipe.task)
