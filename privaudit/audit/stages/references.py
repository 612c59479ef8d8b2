"""The references stage: the run's reference (shadow) models, trained once (or loaded from
the run's cache) and handed to both U-LiRA (the erase stage) and the attack battery.

How many: ``attacks.references.count`` for the battery, and ``2 ×
unlearning.verify.ulira_references`` when U-LiRA will judge a method that serves a request —
the larger of the two. Keep masks are nested across even counts, so the battery's
references are the first ``attacks.references.count`` of the set and U-LiRA's the first
``2P``: one set, one training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from privaudit.attacks.reference_plan import reference_plan
from privaudit.attacks.references import (
    ReferenceSet,
    balanced_keep,
    reference_population,
    train_references,
)
from privaudit.audit.config import AuditConfig
from privaudit.core.errors import ConfigError
from privaudit.core.progress import Reporter
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.data.splits import PreparedData
from privaudit.mechanisms.federated.privacy import privacy_problems
from privaudit.mechanisms.models import AdapterState, ModelBundle
from privaudit.mechanisms.tasks import EncodedSet
from privaudit.unlearning.ulira import ulira_references_needed

__all__ = ["references_needed", "references_stage"]


def references_needed(cfg: AuditConfig, methods: Sequence[str], *, serving: bool) -> int:
    """References the run needs: the battery's count, or U-LiRA's 2P when it will judge one
    of ``methods`` on a request (``serving``), whichever is larger."""
    ulira = ulira_references_needed(cfg.unlearning.verify, methods) if serving else 0
    return max(cfg.attacks.references.count, ulira)


def references_stage(
    cfg: AuditConfig,
    *,
    count: int,
    bundle: ModelBundle,
    data: PreparedData,
    encode: Callable[[list[Record]], EncodedSet],
    run: RunDir,
    initial_state: AdapterState,
    engine: str,
    reporter: Reporter,
    target_noise: Mapping[str, float] | None = None,
) -> ReferenceSet | None:
    """``count`` references trained like the target (None when ``count`` is 0);
    ``target_noise``: the target's calibrated DP noise multipliers, which they reuse."""
    if not count:
        return None
    plan = reference_plan(
        cfg.recipe, cfg.attacks.references, model=cfg.model, partition=cfg.data.partition,
        noise_multiplier=float(np.median(list(target_noise.values()))) if target_noise else None,
        count=count,
    )
    return train_references(
        plan, bundle, reference_population(cfg.attacks, data), encode,
        initial_state=initial_state, engine=engine, cache_root=run.path("models", "references"),
        reporter=reporter,
    )


def reference_problems(cfg: AuditConfig, data: PreparedData) -> list[str]:
    """What would stop a reference federation, found before any training (``--dry-run``):
    each reference re-partitions its half of the population with its own seed, so a client
    can come out smaller than the DP batch or the secure-aggregation threshold allows. The
    run's own checks (:func:`~privaudit.mechanisms.federated.privacy.privacy_problems`) on
    every reference's client sizes; the target's noise is reused by the references, so the
    ε calibration is not checked here (a stand-in noise multiplier is used)."""
    count = references_needed(cfg, cfg.unlearning.methods, serving=bool(cfg.unlearning.requests))
    if not count:
        return []
    try:
        plan = reference_plan(cfg.recipe, cfg.attacks.references, model=cfg.model,
                              partition=cfg.data.partition, noise_multiplier=1.0, count=count)
    except ConfigError as exc:
        return list(exc.problems)
    population = reference_population(cfg.attacks, data)
    keep = balanced_keep(count, len(population), seed=plan.recipe.seed)
    for j in range(count):
        inside = [r for r, k in zip(population, keep[j], strict=True) if k]
        sizes = {c: len(recs) for c, recs in plan.clients_of(inside, j).items() if recs}
        found = privacy_problems(plan.recipe, client_sizes=sizes)
        if found:
            where = (f"attacks.references: reference {j} trains on half the population "
                     f"({len(inside)} records over {len(sizes)} clients, the smallest "
                     f"{min(sizes.values(), default=0)})")
            return [f"{where}: {p}" for p in found]
    return []
