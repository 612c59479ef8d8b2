"""The train stage: the federation trained on the run's clients, every round kept.

Per round it writes the global adapter, each client's update, ``privacy.json`` (accountants
with their whole history, ε so far, the secure-aggregation log) and the clients' training
losses (private: never in report.json), and a ``progress.json`` that lets an interrupted run
continue after its last complete round (``--resume``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from privaudit.audit.session import RunSession
from privaudit.audit.stage_inputs import TRAIN, recompute_reason, section_hashes, sections_sha256
from privaudit.core.hashing import ordered_ids_sha256
from privaudit.core.progress import Reporter
from privaudit.core.rundir import RunDir, sha256_file, verify_outputs, write_json_atomic
from privaudit.mechanisms.dp.gradient_canaries import CanaryObserver
from privaudit.mechanisms.federated.client import ClientUpdate
from privaudit.mechanisms.federated.engine import RoundRecord
from privaudit.mechanisms.federated.privacy import (
    PRNG_WARNING,
    PrivacyOutcome,
    check_privacy,
    client_sizes_of,
)
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.models import (
    AdapterState,
    adapter_state,
    base_state,
    load_adapter,
    save_adapter,
    state_sha256,
)
from privaudit.mechanisms.tasks import EncodedSet
from privaudit.reports.schema import ClientDropout, RoundUtility


@dataclass
class TrainedModel:
    """What the train stage hands on: the final adapter, its rounds and its privacy."""

    state: AdapterState
    sha256: str
    rounds: list[RoundUtility]
    #: DP accountants (whole history) and secure-aggregation logs of the run
    privacy: PrivacyOutcome = field(default_factory=PrivacyOutcome)


def round_message(rec: RoundRecord) -> str:
    """One round as the progress line shows it."""
    parts = [f"round {rec.round}: {rec.utility_metric} {rec.utility:.3f}"]
    if rec.epsilon is not None:
        parts.append(f"ε {rec.epsilon:.3g}")
    secure = rec.aggregation.secure_aggregation if rec.aggregation is not None else None
    if secure is not None and secure.rejections:
        named = ", ".join(f"{x.client_id} ({x.reason})" for x in secure.rejections)
        parts.append(f"rejected: {named}")
    if rec.dropouts:
        parts.append("dropped: " + ", ".join(d.describe() for d in rec.dropouts))
    return ", ".join(parts)


@dataclass
class _PartialTraining:
    round: int
    rounds: list[RoundUtility]
    privacy: PrivacyOutcome
    outputs: list[Path]


def _partial_training(run: RunDir, inputs_sha: str) -> _PartialTraining | None:
    """The rounds an interrupted training with the same inputs completed, if intact."""
    path = run.path("models", "global", "progress.json")
    try:
        progress = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if progress.get("inputs_sha256") != inputs_sha:
        return None
    outputs = [run.path(rel) for rel in progress.get("outputs", {})]
    # a checkpoint that is there but altered raises VerificationError naming it
    if not verify_outputs(run.root, progress.get("outputs", {}), manifest=run.relative(path)):
        return None
    r = int(progress["round"])
    privacy = json.loads(run.path("models", "global", f"round-{r:03d}", "privacy.json").read_text())
    return _PartialTraining(
        round=r,
        rounds=[RoundUtility(**x) for x in progress["rounds"]],
        privacy=PrivacyOutcome.from_dict(privacy),
        outputs=outputs,
    )


@dataclass
class _RoundWriter:
    """Writes each finished round into the run directory and keeps ``progress.json``."""

    run: RunDir
    inputs_sha: str
    rounds: list[RoundUtility]
    outputs: list[Path]

    def write(self, r: int, state: AdapterState, updates: list[ClientUpdate],
              rec: RoundRecord) -> None:
        run, outputs = self.run, self.outputs
        outputs.append(run.global_adapter(r))
        save_adapter(state, run.global_adapter(r))
        for u in updates:
            outputs.append(run.client_update(r, u.client_id))
            save_adapter(u.delta, run.client_update(r, u.client_id))
        privacy_path = run.path("models", "global", f"round-{r:03d}", "privacy.json")
        snapshot = rec.privacy.to_dict() if rec.privacy is not None else {}
        write_json_atomic(privacy_path, {"round": r, "epsilon": rec.epsilon} | snapshot)
        outputs.append(privacy_path)
        losses = {c: m["train_loss"] for c, m in rec.client_metrics.items()
                  if "train_loss" in m}  # canary clients do not train
        loss_path = run.train_losses(r)  # private: never in report.json
        write_json_atomic(loss_path, {"round": r, "train_loss": losses})
        outputs.append(loss_path)
        self.rounds.append(RoundUtility(
            round=rec.round, value=rec.utility, seconds=rec.seconds,
            global_sha256=rec.global_sha256, participants=list(losses),
            dropouts=[ClientDropout(client_id=d.client_id, reason=d.reason, detail=d.detail,
                                    steps=d.steps) for d in rec.dropouts],
        ))
        write_json_atomic(run.path("models", "global", "progress.json"), {
            "inputs_sha256": self.inputs_sha,
            "round": r,
            "rounds": [x.model_dump() for x in self.rounds],
            "outputs": {run.relative(p): sha256_file(p) for p in outputs},
        })


def _inputs_sha256(session: RunSession, clients: dict[str, EncodedSet], engine: str) -> str:
    inputs = json.dumps(
        {
            "config": sections_sha256(session.cfg, TRAIN),  # only what training depends on
            "engine": engine,
            "base": session.bundle.base_sha256,
            "clients": {c: ordered_ids_sha256(list(d.record_ids)) for c, d in clients.items()},
        },
        sort_keys=True,
    )
    return hashlib.sha256(inputs.encode()).hexdigest()


def _finished(run: RunDir, rounds: int) -> TrainedModel:
    state = load_adapter(run.global_adapter(rounds))
    summary = json.loads(run.path("models", "global", "training.json").read_text())
    return TrainedModel(
        state=state,
        sha256=state_sha256(state),
        rounds=[RoundUtility(**r) for r in summary["rounds"]],
        privacy=PrivacyOutcome.from_dict(summary.get("privacy", {})),
    )


def canary_gradients_path(run: RunDir, round_index: int) -> Path:
    """A round's noisy gradient sums along each gradient canary of the DP audit."""
    return run.path("models", "global", f"round-{round_index:03d}", "canary-gradients.json")


def train_stage(session: RunSession, clients: dict[str, EncodedSet], test: EncodedSet,
                run: RunDir, *, engine: str, reporter: Reporter, resume: bool,
                gradient_canaries: CanaryObserver | None = None,
                ) -> TrainedModel:
    """Train the federation on ``clients`` (with a DP audit's ``gradient_canaries`` in
    DP-SGD's clipped gradients, if any). ``resume`` reuses a finished stage, or continues
    an interrupted one after its last complete round (the accountants go on with their
    history)."""
    cfg, bundle = session.cfg, session.bundle
    # DP and HE settings are checked (noise calibrated) before any training: exit 2
    check_privacy(cfg.recipe, client_sizes=client_sizes_of(clients), model=bundle.model)
    if cfg.privacy.dp.mode != "none":  # once per run, not once per process
        reporter.info(f"[train] note: {PRNG_WARNING}")
    inputs_sha = _inputs_sha256(session, clients, engine)
    rounds_total = cfg.federation.rounds
    if resume and run.stage_is_current("train", inputs_sha):
        reporter.info("[train] resumed: checkpoints and manifest unchanged")
        return _finished(run, rounds_total)

    why = recompute_reason(run, "train", cfg, TRAIN) if resume else None
    if why:
        reporter.info(f"[train] recomputed: {why}")
    partial = _partial_training(run, inputs_sha) if resume else None
    writer = _RoundWriter(run, inputs_sha, rounds=[], outputs=[])
    start, initial_state = 1, adapter_state(bundle.model)
    if partial is not None:
        start, writer.rounds, writer.outputs = partial.round + 1, partial.rounds, partial.outputs
        initial_state = load_adapter(run.global_adapter(partial.round))
        reporter.info(f"[train] resumed after round {partial.round} of {rounds_total}")
    else:
        run.path("models", "global", "progress.json").unlink(missing_ok=True)
    base_before = state_sha256(base_state(bundle.model))
    with reporter.stage("train", rounds_total - start + 1) as progress:

        def on_round(r: int, state: AdapterState, updates: list[ClientUpdate],
                     rec: RoundRecord) -> None:
            writer.write(r, state, updates, rec)
            if gradient_canaries is not None:  # the round's noisy sums along each canary
                path = canary_gradients_path(run, r)
                write_json_atomic(path, {"round": r,
                                         "sums": gradient_canaries.pop_round(r).tolist()})
                writer.outputs.append(path)
            progress.advance(round_message(rec))

        result = train_federation(
            cfg.recipe, bundle, clients, test, initial_state=initial_state, seed=cfg.seed,
            engine=engine, on_round=on_round, start_round=start,
            resume=partial.privacy if partial is not None else None,
            gradient_canaries=gradient_canaries,
        )
    if state_sha256(base_state(bundle.model)) != base_before:
        raise RuntimeError("base model weights changed during LoRA training")
    privacy = result.privacy if result.privacy is not None else PrivacyOutcome()
    summary_path = run.path("models", "global", "training.json")
    write_json_atomic(summary_path, {
        "rounds": [r.model_dump() for r in writer.rounds],
        "final_sha256": result.final_sha256,
        "privacy": privacy.to_dict(),
    })
    run.complete_stage("train", inputs_sha256=inputs_sha,
                       outputs=[*writer.outputs, summary_path],
                       sections=section_hashes(cfg, TRAIN))
    return TrainedModel(state=result.final_state, sha256=result.final_sha256,
                        rounds=writer.rounds, privacy=privacy)
