"""Run the configured attacks against any model of the run, on the audit split.

Two steps, so that everything that does not depend on the attacked model is done once:

- :func:`prepare_attacks` (once per run): RMIA's population points z (held-out test records,
  non-members of every model), the run's reference models (:mod:`privaudit.attacks.
  references`, trained once by the audit's references stage), the secret canaries'
  candidate sentences.
- :func:`run_battery` (once per model: the federated model, each unlearned model, each
  oracle — see :mod:`privaudit.audit.stages.attack`): signals of the model (one adapter, or a SISA
  ensemble of shards, ``states=``) — and of the references and the base model, cached — on
  the audited records and the population; every configured attack on them; metrics with
  confidence intervals; canary exposure for a causal LM. ``members``/``nonmembers`` default
  to the audit split; an unlearning caller passes its forget set and matched non-members;
  ``exclude_members`` drops erased records from the members scored, by index.

Signals are cached by (model, records) under ``RUN/signals``; an attack is a registered pure
function of them; members are labelled 1 and score higher. A record outside the references'
population counts as OUT for every reference, so offline attacks still apply to it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from privaudit.attacks.canary_exposure import measure_exposure
from privaudit.attacks.config import AttacksConfig, AttackSpec
from privaudit.attacks.metrics import evaluate_scores
from privaudit.attacks.reference_fit import fit_warning, utility_warning
from privaudit.attacks.references import ReferenceSet, population_points, preserved_adapter
from privaudit.attacks.results import AttackResult, Exposure, ReferenceModels
from privaudit.attacks.scores import (
    AttackInputs,
    SignalSet,
    get_attack,
)
from privaudit.attacks.signals import cached_signals
from privaudit.attacks.strata import within_label
from privaudit.core.progress import Reporter
from privaudit.core.rundir import RunDir, write_json_atomic
from privaudit.mechanisms.data import PreparedData
from privaudit.mechanisms.data.canaries import Canary, candidate_texts
from privaudit.mechanisms.data.records import Record, records_sha256
from privaudit.mechanisms.model.config import ModelConfig
from privaudit.mechanisms.models import (
    AdapterState,
    ModelBundle,
    ensemble_sha256,
    set_adapter_state,
    state_sha256,
)
from privaudit.mechanisms.tasks import EncodedSet

__all__ = ["AttackSetup", "BatteryResult", "prepare_attacks", "run_battery", "validate_battery"]


def validate_battery(cfg: AttacksConfig) -> None:
    """Build every configured attack once, so unknown names or parameters fail up front."""
    for spec in cfg.battery:
        get_attack(spec.name, **spec.params)


@dataclass
class AttackSetup:
    """What every attacked model shares (built by :func:`prepare_attacks`)."""

    cfg: AttacksConfig
    task: str
    members: list[Record]
    nonmembers: list[Record]
    population: list[Record]  # RMIA's z: non-members of every model, disjoint from the audit
    encode: Callable[[list[Record]], EncodedSet]
    cache_dir: Path
    seed: int
    context_sha256: str  # base model, adapter config, tokenization: part of every signal key
    base_state: AdapterState  # the adapter before training: the "base" reference model
    references: ReferenceSet | None = None
    canaries: list[Canary] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    population_kind: str = "training"
    reference_warnings: list[str] = field(default_factory=list)  # added to reference attacks
    _encoded: dict[str, EncodedSet] = field(default_factory=dict, repr=False)

    def encoded(self, records: list[Record]) -> EncodedSet:
        """``encode(records)``, once per run for the same records (tokenization and the frozen
        prefix's features are the same for every attacked model)."""
        key = records_sha256(records)
        if key not in self._encoded:
            self._encoded[key] = self.encode(records)
        return self._encoded[key]

    def references_section(self, trained_by: str | None = None) -> ReferenceModels | None:
        """The report's ``references`` section (None without references); ``trained_by``:
        how they were made, when not by the run's own recipe."""
        ref = self.references
        if ref is None:
            return None
        return ReferenceModels(
            count=ref.count,
            population=self.population_kind,
            population_size=len(ref.population_ids),
            population_sha256=ref.data_sha256,
            recipe_sha256=ref.recipe_sha256,
            keep_sha256=ref.keep_sha256,
            adapter_sha256=list(ref.sha256),
            utility_metric=ref.utility_metric,
            utility=list(ref.utility),
            seconds=ref.seconds,
            reused=ref.reused,
            trained_by=trained_by,
        )


@dataclass
class BatteryResult:
    """The attacks on one model, and its canary exposure (causal LMs with canaries)."""

    attacks: list[AttackResult]
    exposure: Exposure | None
    seconds: float


def prepare_attacks(
    attacks: AttacksConfig,
    *,
    model: ModelConfig,
    seed: int,
    bundle: ModelBundle,
    data: PreparedData,
    encode: Callable[[list[Record]], EncodedSet],
    run: RunDir,
    initial_state: AdapterState,
    references: ReferenceSet | None = None,
    target_utility: float | None = None,
) -> AttackSetup:
    """Population and canary candidates for ``run_battery``, with the run's ``references``
    (trained on :func:`~privaudit.attacks.references.reference_population`; the first
    ``attacks.references.count`` are used); ``target_utility``: the attacked model's, which
    the references' is checked against (:func:`~privaudit.attacks.reference_fit.
    utility_warning`)."""
    population = population_points(attacks, data)
    context = hashlib.sha256(json.dumps({
        "base": bundle.base_sha256, "adapter": bundle.adapter_config_sha256,
        "task": model.task, "max_length": model.max_length,
    }, sort_keys=True).encode()).hexdigest()
    count, kind = attacks.references.count, attacks.references.population
    if count and (references is None or references.count < count):
        raise ValueError(f"attacks.references.count is {count}; prepare_attacks was given "
                         f"{0 if references is None else references.count} references")
    references = references.first(count) if references is not None and count else None
    warnings: list[str] = []
    most = data.max_records_per_subject()
    if count and kind == "audit" and most > 1:
        warnings.append(
            f"reference models trained on halves of the audit split while data subjects have up "
            f"to {most} records: a non-member's other records are all in that population, a "
            "member's mostly not, which can bias reference-based scores (use "
            "attacks.references.population: training)"
        )
    if references is not None and target_utility is not None:
        far = utility_warning(references.utility_metric, target_utility, references.utility)
        warnings += [far] if far else []
    candidates: list[str] = []
    if data.canaries:
        candidates = candidate_texts(attacks.canaries, data.canaries, seed=seed)
        write_json_atomic(run.path("data", "canaries.json"), {"canaries": [
            {"id": c.id, "insertions": c.insertions, "carriers": list(c.carriers),
             "secret_sha256": c.secret_sha256} for c in data.canaries]})
    return AttackSetup(
        cfg=attacks, task=model.task, members=list(data.members),
        nonmembers=list(data.nonmembers), population=population, encode=encode,
        cache_dir=run.path("signals"), seed=seed, context_sha256=context,
        base_state=initial_state, references=references, canaries=list(data.canaries),
        candidates=candidates, population_kind=kind, reference_warnings=warnings,
    )


def _signal_key(context: str, adapter_sha256: str) -> str:
    return hashlib.sha256(f"{context}:{adapter_sha256}".encode()).hexdigest()


def _reference_model_source(setup: AttackSetup) -> str:
    choice = setup.cfg.reference_model
    if choice == "auto":
        return "references" if setup.references is not None else "base"
    return choice


def _needs(setup: AttackSetup) -> tuple[bool, bool, bool]:
    """(reference signals, base-model signals, population points) needed by the battery."""
    refs = base = pop = False
    source = _reference_model_source(setup)
    for spec in setup.cfg.battery:
        attack = get_attack(spec.name, **spec.params)
        refs = refs or attack.uses_references(source)
        base = base or attack.uses_base_model(source)
        pop = pop or any(r.startswith("population") for r in attack.requires)
    return refs and setup.references is not None, base, pop


def _mean_out_loss(refs: Sequence[SignalSet], keep: np.ndarray) -> SignalSet:
    losses = np.stack([r.loss for r in refs])
    out = ~keep
    return SignalSet(loss=(losses * out).sum(axis=0) / np.maximum(out.sum(axis=0), 1))


def _result(
    spec: AttackSpec, params: dict[str, Any], model_name: str, scores: np.ndarray,
    is_member: np.ndarray, cfg: AttacksConfig, seed: int, n_refs: int,
) -> AttackResult:
    m = evaluate_scores(scores, is_member, fprs=tuple(cfg.fprs), confidence=cfg.confidence,
                        n_bootstrap=cfg.bootstrap, seed=seed)
    return AttackResult(
        attack=spec.key,
        model=model_name,
        auc=m.auc,
        auc_ci_low=m.auc_ci_low,
        auc_ci_high=m.auc_ci_high,
        tpr_at_fpr=dict(m.tpr_at_fpr),
        balanced_accuracy=m.balanced_accuracy,
        n_members=m.n_members,
        n_nonmembers=m.n_nonmembers,
        min_resolvable_fpr=m.min_resolvable_fpr,
        warnings=list(m.warnings),
        roc=m.roc,
        params=params,
        n_references=n_refs,
    )


def _side_signals(
    model: nn.Module, setup: AttackSetup, ref: ReferenceSet | None, need_base: bool,
    records: list[Record], signals: Callable[[str], SignalSet], advance: Callable[[str], None],
) -> tuple[list[SignalSet], np.ndarray | None, SignalSet | None]:
    """The references' signals with their keep masks over ``records``, and the base model's
    (cached after the first attacked model)."""
    ref_signals: list[SignalSet] = []
    keep = None
    if ref is not None:
        for j, (ref_state, sha) in enumerate(zip(ref.states, ref.sha256, strict=True)):
            set_adapter_state(model, ref_state)
            ref_signals.append(signals(sha))
            advance(f"signals of reference {j}")
        keep = ref.keep_for([r.id for r in records])
    base = None
    if need_base:
        set_adapter_state(model, setup.base_state)
        base = signals(state_sha256(setup.base_state))
        advance("signals of the base model")
    return ref_signals, keep, base


def _layout(members: list[Record], nonmembers: list[Record], population: list[Record],
            left_out: frozenset[str]) -> tuple[list[Record], np.ndarray, np.ndarray, np.ndarray]:
    """(every record whose signals are computed — members, non-members, population points —,
    the audited indices without ``left_out`` members, the population's indices, and
    is-member of the audited ones)."""
    audit = [*members, *nonmembers]
    records = [*audit, *population]
    audit_idx = np.array([i for i, r in enumerate(audit)
                          if i >= len(members) or r.id not in left_out], dtype=np.int64)
    pop_idx = np.arange(len(audit), len(records))
    is_member = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))].astype(bool)[audit_idx]
    return records, audit_idx, pop_idx, is_member


def _attack_inputs(
    setup: AttackSetup, target: SignalSet, ref_signals: list[SignalSet], keep: np.ndarray | None,
    base: SignalSet | None, audit_idx: np.ndarray, pop_idx: np.ndarray,
) -> AttackInputs:
    """What the attacks score: the audited records' signals (``audit_idx``), the population
    points' (``pop_idx``), the references' with their keep masks, and the reference model's
    (the references' mean OUT loss, or the base model's)."""
    reference_model = None
    if _reference_model_source(setup) == "references" and keep is not None:
        reference_model = _mean_out_loss(ref_signals, keep).take(audit_idx)
    elif base is not None:
        reference_model = base.take(audit_idx)
    has_pop = pop_idx.size > 0
    return AttackInputs(
        target=target.take(audit_idx),
        references=[s.take(audit_idx) for s in ref_signals],
        keep=None if keep is None else keep[:, audit_idx],
        population_target=target.take(pop_idx) if has_pop else None,
        population_references=[s.take(pop_idx) for s in ref_signals] if has_pop else (),
        population_keep=None if keep is None or not has_pop else keep[:, pop_idx],
        reference_model=reference_model,
    )


def run_battery(
    setup: AttackSetup,
    *,
    model: nn.Module,
    model_name: str,
    reporter: Reporter,
    state: AdapterState | None = None,
    states: Sequence[AdapterState] | None = None,
    members: Sequence[Record] | None = None,
    nonmembers: Sequence[Record] | None = None,
    exclude_members: Collection[str] = (),
) -> BatteryResult:
    """Every configured attack against ``model`` with the adapter ``state`` (the federated,
    an unlearned or an oracle adapter) — or the ensemble ``states`` (SISA's shards, their
    probabilities averaged) — reported as ``model_name``; ``model``'s own adapter state is
    unchanged on return. ``members``/``nonmembers`` default to the audit split;
    ``exclude_members`` (record ids, e.g. erased ones) are left out of the members scored.
    Signals are still computed on the whole split, so that the references' and the base
    model's cached signals serve every model, whatever it excludes."""
    if (state is None) == (states is None) or (states is not None and not states):
        raise ValueError("run_battery: give exactly one of state= (one adapter) and states= "
                         "(a non-empty ensemble)")
    target_states = [state] if state is not None else list(states or ())
    ensemble = target_states if len(target_states) > 1 else None
    started = time.perf_counter()
    cfg = setup.cfg
    need_refs, need_base, need_pop = _needs(setup)
    records, audit_idx, pop_idx, is_member = _layout(
        setup.members if members is None else list(members),
        setup.nonmembers if nonmembers is None else list(nonmembers),
        setup.population if need_pop else [], frozenset(exclude_members))
    encoded = setup.encoded(records)
    rsha = records_sha256(records)
    texts = [r.text for r in records]
    ref = setup.references if need_refs else None
    n_refs = ref.count if ref is not None else 0
    total = 1 + n_refs + int(need_base) + len(cfg.battery) + int(bool(setup.canaries))

    def signals(adapter_sha: str, members: list[AdapterState] | None = None) -> SignalSet:
        return cached_signals(model, encoded, task=setup.task,
                              model_sha256=_signal_key(setup.context_sha256, adapter_sha),
                              records_sha256=rsha, cache_dir=setup.cache_dir, texts=texts,
                              states=members)

    exposure = None
    with reporter.stage("attack", total) as progress, preserved_adapter(model):
        set_adapter_state(model, target_states[0])
        model_sha = ensemble_sha256(target_states)
        target = signals(model_sha, ensemble)
        shards = f" ({len(target_states)} shards)" if ensemble else ""
        progress.advance(f"signals of {model_name}{shards} on {len(records)} records")
        if setup.canaries:
            set_adapter_state(model, target_states[0])
            exposure = measure_exposure(model, setup.canaries, setup.candidates, cfg.canaries,
                                        setup.encoded, model_name=model_name, states=ensemble)
            progress.advance(f"canary exposure: mean {exposure.mean_bits:.2f} bits")
        ref_signals, keep, base = _side_signals(model, setup, ref, need_base, records, signals,
                                                progress.advance)
        inputs = _attack_inputs(setup, target, ref_signals, keep, base, audit_idx, pop_idx)
        results = []
        source = _reference_model_source(setup)
        fit = None if keep is None or not ref_signals else fit_warning(
            target.loss[audit_idx], is_member,
            np.stack([r.loss[audit_idx] for r in ref_signals]), keep[:, audit_idx])
        for spec in cfg.battery:
            attack = get_attack(spec.name, **spec.params).tune(inputs)
            uses_refs = attack.uses_references(source)
            scores = attack.score(inputs)
            result = _result(spec, attack.params.model_dump(), model_name, scores,
                             is_member, cfg, setup.seed, n_refs if uses_refs else 0)
            result.model_sha256 = model_sha
            if setup.task == "classification":
                result.auc_by_label, result.auc_within_label = within_label(
                    scores, is_member, [records[i].label for i in audit_idx])
            if uses_refs:
                result.warnings.extend(setup.reference_warnings + ([fit] if fit else []))
            results.append(result)
            progress.advance(f"{spec.key}: AUC {result.auc:.3f}")
    return BatteryResult(attacks=results, exposure=exposure,
                         seconds=time.perf_counter() - started)
