"""The attack stage: the whole battery against every model the run produced.

Models, in the order of ``report.json`` ``attacks[]`` (whose ``model`` key names them):

- ``federated``: the trained global adapter;
- per erasure request, in the order served, each model the erase stage wrote (the oracle
  first, then the methods): named ``<method>/<request-id>`` after its directory
  ``models/<method>/<request-id>/`` (the oracle: ``oracle/<request-id>``). A SISA model is
  the ensemble of its shards, attacked as the model it serves: the mean of the shards'
  probabilities (``attacks/signals.py``).

What is attacked. Every model on the audit split: members are the audit members, minus —
for a model produced after erasure requests — every record erased so far (those are no
longer its training data; whether it still remembers them is the forget-set evidence of
``unlearning/verify.py``, reported under ``unlearning[]``); non-members are the audit
non-members (held-out subjects: never trained on, never erased). So each row answers the
same question — can an attacker tell this model's training records from unseen ones? — and
the unlearned models' rows show what unlearning did to the records it kept.

Cost, and why every attack runs on every model. Everything that does not depend on the
attacked model is done once (the references stage trains the reference models;
:func:`~privaudit.attacks.battery.prepare_attacks`: population, encoded records with their
frozen-prefix features); signals are cached
per (model hash, records hash), so the references' and the base model's signals are computed
for the first model and read back for every other. An extra model costs one batched forward
pass over the audit split and the population (S passes per batch for an S-shard ensemble),
canary scoring for a causal LM, and the metrics' bootstrap. Erased members are left out by
index, not by re-encoding a smaller record set, so the references' signals stay cached.
Measured on the ``demo`` run (MiniLM, 4 attacks, 2 references, 400 audit records + 160
population points; 2 CPU threads, each model a fresh adapter so nothing is cached): about
1.1 s for each further single adapter and 4.2 s for SISA's 4-shard ensemble (one pass per
shard), so the demo's 7 extra models add about 11 s to the first model's 5 s; an adapter
identical to one already attacked (a method that stopped at once) is read from the cache.
That is cheap enough to run the full battery on every model, rather than LOSS and the
strongest attack only on the unlearned ones.

Exposure: the report's ``exposure`` section is the federated model's; the mean bits of every
attacked model go to ``exposure.per_model``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from privaudit.attacks.battery import AttackSetup, run_battery
from privaudit.attacks.blind import blind_baseline
from privaudit.core.progress import Reporter
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.models import AdapterState
from privaudit.reports.schema import AttackResult, BlindBaseline, Exposure, UnlearningResult
from privaudit.unlearning.base import UnlearnedModel
from privaudit.unlearning.ledger import read_ledger

__all__ = ["AttackStageResult", "AttackedModel", "attacked_models", "run_attack_stage"]

FEDERATED = "federated"


@dataclass(frozen=True)
class AttackedModel:
    """One model to attack: its report name, its adapter(s) and the records erased from it."""

    name: str
    states: list[AdapterState]
    erased: frozenset[str] = frozenset()


@dataclass
class AttackStageResult:
    attacks: list[AttackResult]
    exposure: Exposure | None
    seconds: dict[str, float] = field(default_factory=dict)  # per model
    blind: BlindBaseline | None = None  # the text-only attack on the audit split


def model_name(result: UnlearningResult) -> str:
    """``<method>/<request-id>``: the model's directory under ``models/``."""
    return f"{result.method}/{result.request_id}"


def _erased_after(run: RunDir) -> dict[str, frozenset[str]]:
    """Request id → every record erased once it was served (it and the requests before)."""
    erased: set[str] = set()
    out: dict[str, frozenset[str]] = {}
    for entry in read_ledger(run).get("requests", []):
        erased |= set(entry.get("record_ids", ()))
        out[str(entry["id"])] = frozenset(erased)
    return out


def attacked_models(
    run: RunDir, trained_state: AdapterState, unlearning: Sequence[UnlearningResult]
) -> list[AttackedModel]:
    """The federated model, then every unlearned model and oracle (see the module docstring),
    loaded from the run directory."""
    erased = _erased_after(run)
    models = [AttackedModel(FEDERATED, [trained_state])]
    seen = {FEDERATED}
    for result in unlearning:
        name = model_name(result)
        if name in seen:
            continue
        seen.add(name)
        model = UnlearnedModel.load(run.path(result.model_path))
        models.append(AttackedModel(name, model.states,
                                    erased.get(result.request_id, frozenset())))
    return models


def run_attack_stage(
    setup: AttackSetup,
    *,
    model: nn.Module,
    models: Sequence[AttackedModel],
    reporter: Reporter,
    check_split: bool = True,
) -> AttackStageResult:
    """The battery against each of ``models`` on the audit split, and (``check_split``) the
    blind baseline on it; ``model``'s adapter is unchanged on return."""
    attacks: list[AttackResult] = []
    exposure: Exposure | None = None
    per_model_bits: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for target in models:
        t0 = time.perf_counter()
        battery = run_battery(setup, model=model, states=target.states,
                              model_name=target.name, reporter=reporter,
                              exclude_members=target.erased)
        n_members = sum(r.id not in target.erased for r in setup.members)
        for a in battery.attacks:
            a.members_erased = len(setup.members) - n_members
        attacks += battery.attacks
        if battery.exposure is not None:
            per_model_bits[target.name] = battery.exposure.mean_bits
            if exposure is None or target.name == FEDERATED:
                exposure = battery.exposure
        seconds[target.name] = time.perf_counter() - t0
        reporter.info(f"[attack] {target.name}: {len(battery.attacks)} attacks on "
                      f"{n_members} members in {seconds[target.name]:.1f} s")
    if exposure is not None:
        exposure.per_model = per_model_bits
    return AttackStageResult(attacks=attacks, exposure=exposure, seconds=seconds,
                             blind=split_check(setup, reporter) if check_split else None)


def split_check(setup: AttackSetup, reporter: Reporter) -> BlindBaseline:
    """The blind baseline on the audit split (``attacks/blind.py``): does the split leak?"""
    blind = blind_baseline([r.text for r in setup.members], [r.text for r in setup.nonmembers],
                           seed=setup.seed, confidence=setup.cfg.confidence,
                           n_bootstrap=setup.cfg.bootstrap,
                           subjects=([r.subject_id for r in setup.members],
                                     [r.subject_id for r in setup.nonmembers]))
    reporter.info(f"[attack] blind baseline (texts only): AUC {blind.auc:.3f}, "
                  f"p = {blind.p_value:.2g}{' — the split leaks' if blind.leaks else ''}")
    return blind
