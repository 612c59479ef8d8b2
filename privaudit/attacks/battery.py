"""Run the configured attacks against one model on the audit split.

Signals come from ``signals.py`` (once per model and records, cached); every attack is a
registered pure function of those arrays; ``metrics.py`` turns scores into ROC, AUC and TPR at
fixed FPR with confidence intervals. Members are labelled 1, non-members 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from torch import nn

from privaudit.attacks.metrics import evaluate_scores
from privaudit.attacks.scores import AttackInputs, get_attack
from privaudit.attacks.signals import cached_signals
from privaudit.audit.config import AttacksConfig
from privaudit.audit.progress import Reporter
from privaudit.mechanisms.data.records import Record, records_sha256
from privaudit.mechanisms.tasks import EncodedSet
from privaudit.reports.schema import AttackResult, RateCI, RocCurve


def validate_battery(cfg: AttacksConfig) -> None:
    """Build every configured attack once, so unknown names or parameters fail up front."""
    for spec in cfg.battery:
        get_attack(spec.name, **spec.params)


def run_battery(
    cfg: AttacksConfig,
    *,
    model: nn.Module,
    task: str,
    model_name: str,
    model_sha256: str,
    members: Sequence[Record],
    nonmembers: Sequence[Record],
    encode: Callable[[list[Record]], EncodedSet],
    cache_dir: Path,
    seed: int,
    reporter: Reporter,
) -> list[AttackResult]:
    records = [*members, *nonmembers]
    is_member = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))].astype(bool)
    results: list[AttackResult] = []
    with reporter.stage("attack", len(cfg.battery) + 1) as progress:
        target = cached_signals(
            model,
            encode(records),
            task=task,
            model_sha256=model_sha256,
            records_sha256=records_sha256(records),
            cache_dir=cache_dir,
            texts=[r.text for r in records],
        )
        progress.advance(f"signals of {model_name} on {len(records)} records")
        inputs = AttackInputs(target=target)
        for spec in cfg.battery:
            attack = get_attack(spec.name, **spec.params)
            scores = attack.score(inputs)
            m = evaluate_scores(
                scores,
                is_member,
                fprs=tuple(cfg.fprs),
                confidence=cfg.confidence,
                n_bootstrap=cfg.bootstrap,
                seed=seed,
            )
            results.append(
                AttackResult(
                    attack=spec.name,
                    model=model_name,
                    auc=m.auc,
                    auc_ci_low=m.auc_ci_low,
                    auc_ci_high=m.auc_ci_high,
                    tpr_at_fpr={
                        k: RateCI(value=v.value, ci_low=v.ci_low, ci_high=v.ci_high)
                        for k, v in m.tpr_at_fpr.items()
                    },
                    balanced_accuracy=m.balanced_accuracy,
                    n_members=m.n_members,
                    n_nonmembers=m.n_nonmembers,
                    warnings=list(m.warnings),
                    roc=RocCurve(**m.roc.model_dump()),
                )
            )
            progress.advance(f"{spec.name}: AUC {m.auc:.3f}")
    return results
