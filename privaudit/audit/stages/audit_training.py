"""The DP audit's own training (``attacks.dp_audit.run: separate``): the released model stays
clean of canaries.

Canaries change the model they are trained into. With ``run: separate`` (the default for
gradient canaries) the target training runs without them, and this stage runs a second
training of the same recipe and data — the same calibrated σ, sampling rate and schedule,
another seed for the batches and the noise — with the gradient canaries in DP-SGD's clipped
gradients. Its model is never released nor written: only each round's noisy gradient sums
along the canaries are kept (``attacks/dp-audit-training/round-NNN.json``), which is all the
audit scores. The DP guarantee being audited is the mechanism's, so a second execution of it
tests the same claim.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from privaudit.audit.session import RunSession
from privaudit.audit.stage_inputs import DP_AUDIT, recompute_reason, section_hashes, sections_sha256
from privaudit.core.progress import Reporter
from privaudit.core.rundir import RunDir, write_json_atomic
from privaudit.mechanisms.dp.gradient_canaries import CanaryObserver, GradientCanaryPlan
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.engine import RoundRecord
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.tasks import EncodedSet

__all__ = ["AUDIT_SEED_OFFSET", "audit_round_path", "audit_training_stage"]

STAGE = "dp_audit_training"
#: the audit training's seed is the run's plus this: its batches and noise are its own
AUDIT_SEED_OFFSET = 7_919


def audit_round_path(run: RunDir, round_index: int) -> Path:
    return run.path("attacks", "dp-audit-training", f"round-{round_index:03d}.json")


def _inputs_sha256(session: RunSession, plan: GradientCanaryPlan) -> str:
    return hashlib.sha256(json.dumps(
        {"config": sections_sha256(session.cfg, DP_AUDIT), "base": session.bundle.base_sha256,
         "canaries": plan.sealed.commitment_sha256}, sort_keys=True).encode()).hexdigest()


def audit_training_stage(session: RunSession, plan: GradientCanaryPlan,
                         clients: dict[str, EncodedSet], test: EncodedSet, run: RunDir, *,
                         engine: str, reporter: Reporter, resume: bool) -> list[Path]:
    """Train the audit federation with the canaries; the rounds' canary sums, as files."""
    cfg = session.cfg
    rounds = cfg.federation.rounds
    inputs = _inputs_sha256(session, plan)
    paths = [audit_round_path(run, r) for r in range(1, rounds + 1)]
    if resume and run.stage_is_current(STAGE, inputs):
        reporter.info("[dp-audit] resumed: the audit training's canary sums are unchanged")
        return paths
    why = recompute_reason(run, STAGE, cfg, DP_AUDIT) if resume else None
    if why:
        reporter.info(f"[dp-audit] recomputed: {why}")
    observer = CanaryObserver(plan)
    with reporter.stage("dp-audit training", rounds) as progress:

        def on_round(r: int, state: AdapterState, updates: list[ClientUpdate],
                     rec: RoundRecord) -> None:
            write_json_atomic(audit_round_path(run, r),
                              {"round": r, "sums": observer.pop_round(r).tolist()})
            progress.advance(f"audit round {r}/{rounds}")

        train_federation(cfg.recipe, session.bundle, clients, test.subset([]),  # no evaluation
                         initial_state=session.initial_state,
                         seed=cfg.seed + AUDIT_SEED_OFFSET, engine=engine, on_round=on_round,
                         gradient_canaries=observer)
    run.complete_stage(STAGE, inputs_sha256=inputs, outputs=paths,
                       sections=section_hashes(cfg, DP_AUDIT))
    return paths
