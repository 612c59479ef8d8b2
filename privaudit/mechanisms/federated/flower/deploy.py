"""Flower's deployment runtime: one SuperLink, one SuperNode per silo, the same apps.

:func:`privaudit.audit.flower_export.export_federation` prepares a config's federation exactly
as ``privaudit run`` does (data, model, privacy recipe: noise calibrated, CKKS keys made) and
:func:`write_sides` writes what each party holds, and nothing more — as data, never as
pickles (loading an export runs no code from it):

``JOB/server/``   ``server.json`` (the recipe's config sections, schedule, client sizes, the
                  clients' initial states), ``model.safetensors``, ``initial.safetensors``
                  (the global adapter before round 1), the test split (``test.json`` +
                  ``test-features.safetensors``), ``ckks-public.ctx`` (the PUBLIC CKKS context)
``JOB/silo-<k>/`` ``silo.json``, ``model.safetensors``, its client's data only (``data.json``
                  + ``data-features.safetensors``), ``ckks-client.ctx`` (the context with the
                  secret key)
``JOB/app/``      the Flower App (``pyproject.toml`` + a module naming the apps)

Loading rebuilds each side from those files: the model's architecture from the config, its
weights from safetensors, the client update and the strategy from the same privacy recipe
(:func:`build_recipe`, same client sizes, so the same calibrated noise), the CKKS material
from the exported contexts. Each silo's SuperNode runs with ``--node-config
"silo-dir='JOB/silo-<k>'"``; the run is started with ``flwr run JOB/app <connection>
--run-config "job-dir='JOB/server'"``. The ServerApp writes ``JOB/server/result/``: every
round's global adapter and ``result.json`` (rounds, nodes, the clients' accountants). Every
silo keeps its own updates in its ``store/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from privaudit.core.errors import ConfigError
from privaudit.mechanisms.dp.config import DPConfig
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.federated.flower import codec
from privaudit.mechanisms.federated.flower.masked import find_masked_layer
from privaudit.mechanisms.federated.flower.runinfo import flower_version
from privaudit.mechanisms.federated.flower.workload import (
    ClientCrypto,
    ClientSide,
    MaskedCrypto,
    RoundResult,
    ServerCrypto,
    ServerSide,
    cached_client_side,
)
from privaudit.mechanisms.federated.privacy import (
    build_recipe,
)
from privaudit.mechanisms.federated.recipe import TrainingRecipe
from privaudit.mechanisms.model.config import ModelConfig
from privaudit.mechanisms.models import load_adapter, save_adapter
from privaudit.mechanisms.secagg import SecureAggregationConfig
from privaudit.mechanisms.tasks import EncodedSet

SILO_KEY = "silo-dir"
JOB_KEY = "job-dir"
APP_MODULE = "privaudit_flower_app"
SILO_FORMAT = "privaudit-flower-silo/1"
SERVER_FORMAT = "privaudit-flower-server/1"
#: the config sections a side needs to rebuild its model and privacy recipe (no data paths,
#: no erasure requests: a silo learns nothing of the run beyond its own share)
RECIPE_SECTIONS = ("seed", "model", "federation", "privacy", "secure_aggregation")

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


@dataclass
class PreparedSides:
    """Both sides of a config's federation, in memory, before they are written."""

    config: dict[str, Any]  # the recipe's config sections (RECIPE_SECTIONS), as JSON
    clients: ClientSide  # every client; each silo gets its own one
    server: ServerSide
    num_labels: int | None
    adapter_config_sha256: str


def write_sides(sides: PreparedSides, out: Path) -> None:
    """Each silo's share and the server's, as JSON, safetensors and CKKS context bytes."""
    common = {"config": sides.config, "num_labels": sides.num_labels,
              "adapter_config_sha256": sides.adapter_config_sha256,
              "sizes": dict(sides.server.sizes)}
    everyone = sides.clients
    for index, client in enumerate(everyone.order):
        silo = out / f"silo-{index}"
        silo.mkdir(parents=True, exist_ok=True)
        save_model(everyone.model, str(silo / "model.safetensors"))
        _write_encoded(silo, "data", everyone.clients[client])
        if everyone.crypto is not None:
            (silo / "ckks-client.ctx").write_bytes(everyone.crypto.client_context)
        masked = everyone.masked
        if masked is not None:  # every silo encrypts; the first one alone holds the BFV key
            (silo / "bfv-public.ctx").write_bytes(masked.public_context)
            if index == 0 and masked.secret_context is not None:
                (silo / "bfv-secret.ctx").write_bytes(masked.secret_context)
        _write_json(silo / "silo.json", common | {
            "format": SILO_FORMAT, "client": client, "threads": everyone.threads,
            "crypto": _crypto_json(everyone.crypto),
            "masked": None if masked is None else masked.config.model_dump(mode="json")})
    server = sides.server
    folder = out / "server"
    folder.mkdir(parents=True, exist_ok=True)
    save_model(server.model, str(folder / "model.safetensors"))
    save_adapter(server.initial_state, folder / "initial.safetensors")
    _write_encoded(folder, "test", server.test)
    if server.crypto is not None:
        (folder / "ckks-public.ctx").write_bytes(server.crypto.server_context)
    remote = find_masked_layer(server.strategy)
    if remote is not None:
        (folder / "bfv-public.ctx").write_bytes(remote.public_context)
    _write_json(folder / "server.json", common | {
        "format": SERVER_FORMAT, "order": list(server.order), "rounds": server.rounds,
        "start_round": server.start_round, "seed": server.seed,
        "round_timeout": server.round_timeout, "connect_timeout": server.connect_timeout,
        "initial_states": {c: json.loads(codec.client_state_to_json(s))
                           for c, s in server.initial_states.items()},
        "crypto": _crypto_json(server.crypto),
        "masked": None if remote is None else remote.cfg.model_dump(mode="json")})
    write_app(out / "app", job_dir=folder)


# -- reading an export: data only ------------------------------------------------------------


def _crypto_json(crypto: ClientCrypto | ServerCrypto | None) -> dict[str, Any] | None:
    """What a side's meta file says of its CKKS settings (the context is a file of its own)."""
    if crypto is None:
        return None
    return {"config": crypto.config.model_dump(mode="json"),
            "adapter_config_hash": crypto.adapter_config_hash}


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _read_json(path: Path, fmt: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (export the federation first)") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ConfigError(f"{path}: format must be {fmt!r} (got {got!r})")
    return doc


def _write_encoded(folder: Path, name: str, data: EncodedSet) -> None:
    if data.features is not None:
        save_file({str(i): f.contiguous() for i, f in enumerate(data.features)},
                  str(folder / f"{name}-features.safetensors"))
    _write_json(folder / f"{name}.json", {
        "record_ids": list(data.record_ids), "input_ids": [list(x) for x in data.input_ids],
        "labels": None if data.labels is None else list(data.labels), "pad_id": data.pad_id,
        "features": data.features is not None})


def _read_encoded(folder: Path, name: str) -> EncodedSet:
    path = folder / f"{name}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        features = None
        if doc["features"]:
            tensors = load_file(str(folder / f"{name}-features.safetensors"))
            features = tuple(tensors[str(i)] for i in range(len(doc["record_ids"])))
        return EncodedSet(
            record_ids=tuple(str(i) for i in doc["record_ids"]),
            input_ids=tuple(tuple(int(t) for t in x) for x in doc["input_ids"]),
            labels=None if doc["labels"] is None else tuple(int(y) for y in doc["labels"]),
            pad_id=int(doc["pad_id"]),
            features=features,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not an exported data split ({exc})") from None


def _training_recipe(config: dict[str, Any]) -> tuple[ModelConfig, TrainingRecipe]:
    """The model section and the training recipe of an export's ``config`` sections."""
    try:
        model = ModelConfig.model_validate(config["model"])
        return model, TrainingRecipe(
            seed=int(config["seed"]), task=model.task,
            federation=FederationConfig.model_validate(config["federation"]),
            dp=DPConfig.model_validate((config.get("privacy") or {}).get("dp", {})),
            secure_aggregation=SecureAggregationConfig.model_validate(
                config["secure_aggregation"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"export: its config sections are not valid ({exc})") from None


def _rebuild(meta: dict[str, Any], folder: Path) -> tuple[TrainingRecipe, nn.Module, Any]:
    """The training recipe, the model with the exported weights, and the privacy recipe."""
    from privaudit.mechanisms.models import apply_lora, load_base_model, load_tokenizer

    mcfg, recipe = _training_recipe(meta["config"])
    tokenizer = load_tokenizer(mcfg)
    base = load_base_model(mcfg, tokenizer=tokenizer, num_labels=meta["num_labels"],
                           seed=recipe.seed)
    model, _ = apply_lora(mcfg, base, seed=recipe.seed)
    load_model(model, str(folder / "model.safetensors"), strict=True)
    privacy = build_recipe(recipe, client_sizes={c: int(n) for c, n in meta["sizes"].items()},
                           adapter_config_hash=meta["adapter_config_sha256"], seed=recipe.seed,
                           model=model)
    return recipe, model, privacy


def load_silo(silo_dir: str | Path) -> ClientSide:
    """One silo's ClientSide, rebuilt from its exported files (no pickle)."""
    silo = Path(silo_dir)
    meta = _read_json(silo / "silo.json", SILO_FORMAT)
    recipe, model, privacy = _rebuild(meta, silo)
    crypto = None
    if meta["crypto"] is not None:
        crypto = ClientCrypto(
            config=SecureAggregationConfig.model_validate(meta["crypto"]["config"]),
            client_context=(silo / "ckks-client.ctx").read_bytes(),
            adapter_config_hash=str(meta["crypto"]["adapter_config_hash"]))
    client = str(meta["client"])
    masked = None
    if meta.get("masked") is not None:
        secret = silo / "bfv-secret.ctx"
        masked = MaskedCrypto(
            config=SecureAggregationConfig.model_validate(meta["masked"]),
            public_context=(silo / "bfv-public.ctx").read_bytes(),
            secret_context=secret.read_bytes() if secret.is_file() else None)
    return ClientSide(
        model=model, task=recipe.task, federation=recipe.training_federation(),
        client_fn=privacy.client_fn, clients={client: _read_encoded(silo, "data")},
        order=[client], store=silo / "store", crypto=crypto, threads=int(meta["threads"]),
        masked=masked)


def load_server_side(job_dir: str | Path) -> ServerSide:
    """The ServerSide, rebuilt from ``JOB/server`` (no pickle; the PUBLIC context only)."""
    from privaudit.mechanisms.federated.flower.masked import RemoteMaskedAggregation
    from privaudit.mechanisms.federated.flower.secure import (
        RemoteSecureAggregation,
        split_secure_layer,
    )
    from privaudit.mechanisms.federated.secure_masked import PairwiseMasking

    folder = Path(job_dir)
    meta = _read_json(folder / "server.json", SERVER_FORMAT)
    recipe, model, privacy = _rebuild(meta, folder)
    strategy, crypto = privacy.strategy, None
    if meta["crypto"] is not None:
        public = ServerCrypto(
            config=SecureAggregationConfig.model_validate(meta["crypto"]["config"]),
            server_context=(folder / "ckks-public.ctx").read_bytes(),
            adapter_config_hash=str(meta["crypto"]["adapter_config_hash"]))
        crypto = public
        strategy = split_secure_layer(
            strategy, lambda sa: RemoteSecureAggregation(sa.inner, public, channel=sa.channel))
    if meta.get("masked") is not None:  # the recipe's masked layer made its own key: replace
        context = (folder / "bfv-public.ctx").read_bytes()
        strategy = split_secure_layer(strategy, lambda m: RemoteMaskedAggregation(
            m.inner, m.cfg, public_context=context), PairwiseMasking)
    return ServerSide(
        model=model, task=recipe.task, test=_read_encoded(folder, "test"),
        rounds=int(meta["rounds"]), start_round=int(meta["start_round"]),
        seed=int(meta["seed"]), strategy=strategy,
        initial_state=load_adapter(folder / "initial.safetensors"),
        order=[str(c) for c in meta["order"]], sizes={c: int(n) for c, n in meta["sizes"].items()},
        initial_states={c: codec.client_state_from_json(json.dumps(s))
                        for c, s in meta["initial_states"].items()},
        crypto=crypto, round_timeout=float(meta["round_timeout"]),
        connect_timeout=float(meta["connect_timeout"]))


def write_app(app_dir: Path, *, job_dir: Path) -> Path:
    """The Flower App directory ``flwr run`` packages: a pyproject and a two-line module."""
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "pyproject.toml").write_text(
        _PYPROJECT.format(module=APP_MODULE, job_key=JOB_KEY, job_dir=job_dir.as_posix())
    )
    (app_dir / f"{APP_MODULE}.py").write_text(_MODULE)
    return app_dir


def _silo_of(context: Any) -> ClientSide:
    silo = context.node_config.get(SILO_KEY)
    if not isinstance(silo, str):
        raise ConfigError(f"SuperNode: start it with --node-config \"{SILO_KEY}='PATH'\"")
    return cached_client_side(silo, lambda: load_silo(silo))


def run_server(grid: Any, context: Any) -> None:
    """The deployment ServerApp's body: load the ServerSide, serve, write the result."""
    from privaudit.mechanisms.federated.flower.server_app import serve

    job_dir = Path(str(context.run_config[JOB_KEY]))
    side = load_server_side(job_dir)
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
