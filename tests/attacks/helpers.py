"""The pipeline's preparation steps, for tests that attack models other than the target."""

from __future__ import annotations

from pathlib import Path

from privaudit.attacks.battery import AttackSetup, prepare_attacks
from privaudit.audit.config import AuditConfig
from privaudit.audit.pipeline import build_model
from privaudit.audit.stages.references import references_stage
from privaudit.core.progress import PlainReporter
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.data import prepare_data
from privaudit.mechanisms.models import ModelBundle, adapter_state
from privaudit.mechanisms.tasks import EncodedSet, attach_features, encode_records

QUIET = PlainReporter(quiet=True)


def attack_setup(cfg: AuditConfig, run_dir: Path) -> tuple[ModelBundle, AttackSetup]:
    """Data, the base model with its initial adapter, and the attack setup of ``cfg`` in
    ``run_dir`` (references come from the run's cache when it ran before)."""
    data = prepare_data(cfg.data, task=cfg.model.task, k=cfg.federation.clients, seed=cfg.seed,
                        canaries=cfg.attacks.canaries)
    run = RunDir(run_dir).create()
    bundle = build_model(cfg, data, run)

    def encode(records: list) -> EncodedSet:  # type: ignore[type-arg]
        enc = encode_records(records, bundle.tokenizer, labels=data.labels,
                             max_length=cfg.model.max_length)
        return attach_features(enc, bundle.model)

    initial = adapter_state(bundle.model)
    references = references_stage(
        cfg, count=cfg.attacks.references.count, bundle=bundle, data=data, encode=encode,
        run=run, initial_state=initial, engine="inprocess", reporter=QUIET)
    setup = prepare_attacks(cfg.attacks, model=cfg.model, seed=cfg.seed, bundle=bundle,
                            data=data, encode=encode, run=run, initial_state=initial,
                            references=references)
    return bundle, setup
