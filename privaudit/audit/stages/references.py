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
from privaudit.attacks.references import ReferenceSet, reference_population, train_references
from privaudit.audit.config import AuditConfig
from privaudit.core.progress import Reporter
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.data.splits import PreparedData
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
