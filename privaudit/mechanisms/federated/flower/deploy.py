"""Flower's deployment runtime: one SuperLink, one SuperNode per silo, the same apps.

:func:`export_federation` prepares a config's federation exactly as ``privaudit run`` does
(data, model, privacy recipe: noise calibrated, CKKS keys made) and writes what each party
holds, and nothing more:

``JOB/server/server.pt``      the ServerSide: strategy with the PUBLIC CKKS context, test split
``JOB/silo-<k>/client.pt``    one silo's ClientSide: its client's data only, the model, the
                              client update, the CKKS context with the secret key
``JOB/app/``                  the Flower App (``pyproject.toml`` + a module naming the apps)

Each silo's SuperNode runs with ``--node-config "silo-dir='JOB/silo-<k>'"``; the run is
started with ``flwr run JOB/app <connection> --run-config "job-dir='JOB/server'"``. The
ServerApp writes ``JOB/server/result/``: every round's global adapter and ``result.json``
(rounds, nodes, the clients' accountants). Every silo keeps its own updates in its
``store/``. The ``.pt`` files are pickles: load only those you exported yourself.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from privaudit.audit.config import AuditConfig
from privaudit.audit.errors import ConfigError
from privaudit.mechanisms.federated.client import ClientState
from privaudit.mechanisms.federated.engine import TrainingJob
from privaudit.mechanisms.federated.flower import codec
from privaudit.mechanisms.federated.flower.engine import split_job
from privaudit.mechanisms.federated.flower.runinfo import flower_version
from privaudit.mechanisms.federated.flower.workload import (
    ClientSide,
    RoundResult,
    ServerSide,
    cached_client_side,
)
from privaudit.mechanisms.federated.privacy import (
    build_recipe,
    client_sizes_of,
    training_federation,
)
from privaudit.mechanisms.models import adapter_state, save_adapter

SILO_KEY = "silo-dir"
JOB_KEY = "job-dir"
APP_MODULE = "privaudit_flower_app"

_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "privaudit-flower-app"
version = "1.0.0"
description = "privaudit's federated training as a Flower App (generated; see docs/flower.md)"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "privaudit"

[tool.flwr.app.components]
serverapp = "{module}:server_app"
clientapp = "{module}:client_app"

[tool.flwr.app.config]
{job_key} = "{job_dir}"
"""

_MODULE = '''"""privaudit's ServerApp and ClientApp (generated): the code lives in privaudit."""

from privaudit.mechanisms.federated.flower.deploy import client_app, server_app

__all__ = ["client_app", "server_app"]
'''


def export_federation(cfg: AuditConfig, out: Path) -> Path:
    """Prepare ``cfg``'s federation and write each party's share under ``out`` (see module)."""
    from privaudit.audit.pipeline import build_model
    from privaudit.audit.rundir import RunDir
    from privaudit.mechanisms.data import prepare_data
    from privaudit.mechanisms.tasks import EncodedSet, attach_features, encode_records

    out = out.resolve()
    data = prepare_data(cfg.data, task=cfg.model.task, k=cfg.federation.clients, seed=cfg.seed,
                        canaries=cfg.attacks.canaries)
    bundle = build_model(cfg, data, RunDir(out / "build").create())

    def encode(records: list[Any]) -> EncodedSet:
        encoded = encode_records(records, bundle.tokenizer, labels=data.labels,
                                 max_length=cfg.model.max_length)
        return attach_features(encoded, bundle.model)

    clients = {c: encode(recs) for c, recs in data.clients.items()}
    recipe = build_recipe(cfg, client_sizes=client_sizes_of(clients),
                          adapter_config_hash=bundle.adapter_config_sha256, seed=cfg.seed,
                          model=bundle.model)
    record_level = cfg.privacy.dp.mode == "record"
    job = TrainingJob(
        model=bundle.model, task=cfg.model.task, initial_state=adapter_state(bundle.model),
        clients=clients, test=encode(data.test), federation=training_federation(cfg),
        seed=cfg.seed, strategy=recipe.strategy, client_fn=recipe.client_fn,
        client_states={c: ClientState(client_id=c, accountant=recipe.outcome.accountants[c]
                                      if record_level else None) for c in clients},
    )
    # the silos compute with this process's torch threads (bit-identical to in-process)
    everyone, server = split_job(job, store=out / "unused", threads=torch.get_num_threads())
    for index, (client, records) in enumerate(clients.items()):
        silo = out / f"silo-{index}"
        silo.mkdir(parents=True, exist_ok=True)
        mine = dataclasses.replace(everyone, clients={client: records}, order=[client],
                                   store=silo / "store")
        torch.save(mine, silo / "client.pt")
    (out / "server").mkdir(parents=True, exist_ok=True)
    torch.save(server, out / "server" / "server.pt")
    write_app(out / "app", job_dir=out / "server")
    return out


def write_app(app_dir: Path, *, job_dir: Path) -> Path:
    """The Flower App directory ``flwr run`` packages: a pyproject and a two-line module."""
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "pyproject.toml").write_text(
        _PYPROJECT.format(module=APP_MODULE, job_key=JOB_KEY, job_dir=job_dir.as_posix())
    )
    (app_dir / f"{APP_MODULE}.py").write_text(_MODULE)
    return app_dir


def load_silo(silo_dir: str) -> ClientSide:
    side: ClientSide = torch.load(Path(silo_dir) / "client.pt", weights_only=False)
    return side


def _silo_of(context: Any) -> ClientSide:
    silo = context.node_config.get(SILO_KEY)
    if not isinstance(silo, str):
        raise ConfigError(f"SuperNode: start it with --node-config \"{SILO_KEY}='PATH'\"")
    return cached_client_side(silo, lambda: load_silo(silo))


def run_server(grid: Any, context: Any) -> None:
    """The deployment ServerApp's body: load the ServerSide, serve, write the result."""
    from privaudit.mechanisms.federated.flower.server_app import serve

    job_dir = Path(str(context.run_config[JOB_KEY]))
    side: ServerSide = torch.load(job_dir / "server.pt", weights_only=False)
    result_dir = job_dir / "result"
    result_dir.mkdir(parents=True, exist_ok=True)

    def on_round(r: int, result: RoundResult) -> None:
        save_adapter(result.global_state, result_dir / f"round-{r:03d}" / "adapter.safetensors")

    served = serve(grid, side, on_round)
    summary = {
        "flower_version": flower_version(),
        "runtime": "deployment",
        "final_sha256": served.rounds[-1].global_sha256 if served.rounds else None,
        "nodes": [{"node_id": str(n), "client_id": c} for c, n in served.nodes.items()],
        "rounds": [{"round": x.round, "clients": x.clients, "utility": x.utility,
                    "global_sha256": x.global_sha256, "seconds": x.seconds}
                   for x in served.rounds],
        "client_states": {c: json.loads(codec.client_state_to_json(s))
                          for c, s in served.client_states.items()},
    }
    (result_dir / "result.json").write_text(json.dumps(summary, indent=2))


def _apps() -> tuple[Any, Any]:
    from flwr.serverapp import ServerApp

    from privaudit.mechanisms.federated.flower.client_app import make_client_app

    server = ServerApp()
    server.main()(run_server)
    return server, make_client_app(_silo_of)


def __getattr__(name: str) -> Any:
    """``server_app`` / ``client_app``: built on first access (Flower imported only then)."""
    if name in ("server_app", "client_app"):
        server, client = _apps()
        globals().update(server_app=server, client_app=client)
        return server if name == "server_app" else client
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> int:
    """``python -m privaudit.mechanisms.federated.flower.deploy CONFIG --out JOB``."""
    import argparse

    from privaudit.audit.config import load_config

    parser = argparse.ArgumentParser(
        prog="python -m privaudit.mechanisms.federated.flower.deploy",
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
