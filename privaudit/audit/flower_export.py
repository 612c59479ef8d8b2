"""A config's federation, prepared as ``privaudit run`` prepares it and written for Flower's
deployment runtime: each party's share (see :mod:`privaudit.mechanisms.federated.flower.
deploy` for what each holds and how it is loaded back).

``python -m privaudit.audit.flower_export CONFIG --out JOB`` writes ``JOB/server/``,
``JOB/silo-<k>/`` and ``JOB/app/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from privaudit.audit.config import AuditConfig
from privaudit.audit.session import RunSession
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.federated.client import ClientState
from privaudit.mechanisms.federated.engine import TrainingJob
from privaudit.mechanisms.federated.flower.deploy import (
    RECIPE_SECTIONS,
    PreparedSides,
    write_sides,
)
from privaudit.mechanisms.federated.flower.engine import split_job
from privaudit.mechanisms.federated.privacy import build_recipe, client_sizes_of


def recipe_sections(cfg: AuditConfig) -> dict[str, Any]:
    """The config sections a side needs to rebuild its model and privacy recipe (no data
    paths, no erasure requests: a silo learns nothing of the run beyond its own share)."""
    dumped = cfg.model_dump(mode="json")
    return {k: dumped[k] for k in RECIPE_SECTIONS}


def prepare_sides(cfg: AuditConfig, out: Path) -> PreparedSides:
    """Prepare ``cfg``'s federation as ``privaudit run`` does; ``out/build`` caches the base."""
    out = out.resolve()
    session = RunSession.build(cfg, RunDir(out / "build").create())
    bundle, data = session.bundle, session.data
    clients = {c: session.encode(recs) for c, recs in data.clients.items()}
    privacy = build_recipe(cfg.recipe, client_sizes=client_sizes_of(clients),
                           adapter_config_hash=bundle.adapter_config_sha256, seed=cfg.seed,
                           model=bundle.model)
    record_level = cfg.privacy.dp.mode == "record"
    job = TrainingJob(
        model=bundle.model, task=cfg.model.task, initial_state=session.initial_state,
        clients=clients, test=session.encode(data.test),
        federation=cfg.recipe.training_federation(), seed=cfg.seed, strategy=privacy.strategy,
        client_fn=privacy.client_fn,
        client_states={c: ClientState(client_id=c, accountant=privacy.outcome.accountants[c]
                                      if record_level else None) for c in clients},
    )
    # the silos compute with this process's torch threads (bit-identical to in-process)
    everyone, server = split_job(job, store=out / "unused", threads=torch.get_num_threads())
    return PreparedSides(config=recipe_sections(cfg), clients=everyone, server=server,
                         num_labels=len(data.labels) if data.labels else None,
                         adapter_config_sha256=bundle.adapter_config_sha256)


def export_federation(cfg: AuditConfig, out: Path) -> Path:
    """Prepare ``cfg``'s federation and write each party's share under ``out``."""
    out = out.resolve()
    write_sides(prepare_sides(cfg, out), out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m privaudit.audit.flower_export CONFIG --out JOB``."""
    import argparse

    from privaudit.audit.config import load_config

    parser = argparse.ArgumentParser(
        prog="python -m privaudit.audit.flower_export",
        description="Write each party's share of CONFIG's federation for Flower's deployment "
        "runtime (see docs/flower.md).",
    )
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    job = export_federation(load_config(args.config), args.out)
    silos = sorted(p.name for p in job.glob("silo-*"))
    print(f"{job}: server/ (SuperLink), {', '.join(silos)} (one SuperNode each), app/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
