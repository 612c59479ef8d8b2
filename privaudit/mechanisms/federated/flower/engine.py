"""The Flower engine: a TrainingJob run as a Flower ServerApp + ClientApp on Ray.

``privaudit run CONFIG --engine flower`` trains through :class:`FlowerEngine`: the job's
client update and strategy (privaudit's own, privacy wrappers included) are split into what
the clients hold (:class:`~.workload.ClientSide`, put once in Ray's object store) and what the
server holds (:class:`~.workload.ServerSide`: the strategy with the public CKKS context only),
and Flower's simulation runtime moves values between them. The rest of the pipeline sees the
same :class:`~privaudit.mechanisms.federated.engine.TrainingResult` as from the in-process
engine: each round's updates are those the clients kept on their side (with secure
aggregation the server never had them), the accountants those the clients kept in their
Flower context.

Placement comes from the environment:

===================================  =======================================================
``PRIVAUDIT_FLOWER_RAY_ADDRESS``     join a running Ray cluster (``auto`` or ``host:port``);
                                     unset: start a local Ray instance
``PRIVAUDIT_FLOWER_CLIENT_THREADS``  torch threads of a client (default: this process's)
``PRIVAUDIT_FLOWER_CLIENT_CPUS``     CPUs Ray reserves per client actor (default: threads)
``PRIVAUDIT_FLOWER_CLIENT_GPUS``     GPUs per client actor (default 0)
``PRIVAUDIT_FLOWER_STORE``           where clients keep their updates (default: a temp
                                     dir; on a multi-machine cluster, a shared directory)
``PRIVAUDIT_FLOWER_VERBOSE``         1: keep Flower's and Ray's logs
===================================  =======================================================

With the default threads, clients compute exactly what the in-process engine computes (CPU
matrix products can differ in the last bits with another thread count).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from privaudit.core.errors import ConfigError, InternalError, PrivauditError
from privaudit.mechanisms.federated.client import ClientState
from privaudit.mechanisms.federated.engine import (
    Engine,
    RoundRecord,
    TrainingJob,
    TrainingResult,
    register_engine,
)
from privaudit.mechanisms.federated.flower.runinfo import (
    FlowerNode,
    FlowerRun,
    flower_version,
    record_run,
)
from privaudit.mechanisms.federated.flower.workload import (
    ClientSide,
    MaskedCrypto,
    RoundResult,
    ServerSide,
    kept_update,
)
from privaudit.mechanisms.federated.strategy import Strategy, find_layer

if TYPE_CHECKING:
    from privaudit.mechanisms.federated.flower.server_app import Served

OnRound = Callable[[int, RoundResult], None]

INSTALL_HINT = 'pip install "privaudit[flower]"'


@dataclass(frozen=True)
class FlowerOptions:
    """Where clients run (from the environment; see the module docstring)."""

    ray_address: str | None = None
    client_threads: int = 1
    client_cpus: float = 1.0
    client_gpus: float = 0.0
    store: Path | None = None
    verbose: bool = False

    @classmethod
    def from_env(cls) -> FlowerOptions:
        env = os.environ
        try:
            threads = int(env.get("PRIVAUDIT_FLOWER_CLIENT_THREADS", torch.get_num_threads()))
            cpus = float(env.get("PRIVAUDIT_FLOWER_CLIENT_CPUS", threads))
            gpus = float(env.get("PRIVAUDIT_FLOWER_CLIENT_GPUS", "0"))
        except ValueError as exc:
            raise ConfigError(
                f"PRIVAUDIT_FLOWER_CLIENT_THREADS/CPUS/GPUS: must be numbers ({exc})"
            ) from exc
        if threads < 1 or not cpus > 0 or gpus < 0:
            raise ConfigError(
                "PRIVAUDIT_FLOWER_CLIENT_THREADS must be >= 1, _CPUS > 0 and _GPUS >= 0 "
                f"(got {threads}, {cpus}, {gpus})"
            )
        return cls(
            ray_address=env.get("PRIVAUDIT_FLOWER_RAY_ADDRESS") or None,
            client_threads=threads,
            client_cpus=cpus,
            client_gpus=gpus,
            store=Path(store) if (store := env.get("PRIVAUDIT_FLOWER_STORE")) else None,
            verbose=env.get("PRIVAUDIT_FLOWER_VERBOSE", "") not in ("", "0"),
        )


def require_flower() -> str:
    """The flwr version; ConfigError (exit 2) naming the extra when Flower is missing."""
    found = flower_version()
    try:
        import flwr  # noqa: F401
        import ray  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"--engine flower: needs Flower's simulation runtime ({exc.name} is not installed); "
            f"install the extra: {INSTALL_HINT}"
        ) from exc
    return found or "unknown"


def split_job(job: TrainingJob, *, store: Path, threads: int = 1) -> tuple[ClientSide, ServerSide]:
    """What the clients hold and what the server holds of ``job`` (see :mod:`.workload`):
    the secure-aggregation layer is split, the secret-key context going to the clients only."""
    from privaudit.mechanisms.federated.flower.secure import (
        RemoteSecureAggregation,
        crypto_of,
        find_secure_layer,
        split_secure_layer,
    )

    order = list(job.clients)
    states = {c: ClientState(client_id=c) for c in order}
    states |= {c: s for c, s in (job.client_states or {}).items() if c in states}
    client_crypto, server_crypto = None, None
    strategy, masked = split_masked(job.strategy)
    layer = find_secure_layer(strategy)
    if layer is not None:
        client_crypto, public = crypto_of(layer)
        server_crypto = public
        strategy = split_secure_layer(
            strategy, lambda sa: RemoteSecureAggregation(sa.inner, public, channel=sa.channel)
        )
    clients = ClientSide(
        model=job.model, task=job.task, federation=job.federation, client_fn=job.client_fn,
        clients=job.clients, order=order, store=store, crypto=client_crypto, threads=threads,
        masked=masked,
    )
    server = ServerSide(
        model=job.model, task=job.task, test=job.test, rounds=job.federation.rounds,
        start_round=job.start_round, seed=job.seed, strategy=strategy,
        initial_state=job.initial_state, order=order,
        sizes={c: len(d) for c, d in job.clients.items()}, initial_states=states,
        crypto=server_crypto,
    )
    return clients, server


def split_masked(strategy: Strategy) -> tuple[Strategy, MaskedCrypto | None]:
    """``strategy`` with its in-process masked layer (which simulates every client and holds
    the BFV secret key) swapped for the server's half, and the clients' BFV material."""
    from privaudit.mechanisms.federated.flower.masked import RemoteMaskedAggregation
    from privaudit.mechanisms.federated.flower.secure import split_secure_layer
    from privaudit.mechanisms.federated.secure_masked import PairwiseMasking

    found = find_layer(strategy, PairwiseMasking)
    if found is None:
        return strategy, None
    crypto = MaskedCrypto(config=found.cfg, public_context=found.public_context,
                          secret_context=found.key_holder.secret_context())
    return split_secure_layer(strategy, lambda m: RemoteMaskedAggregation(
        m.inner, m.cfg, public_context=m.public_context, channel=m.channel),
        PairwiseMasking), crypto


class FlowerEngine(Engine):
    """Flower's simulation runtime (Ray backend); one virtual SuperNode per client."""

    name = "flower"

    def run(self, job: TrainingJob) -> TrainingResult:
        version = require_flower()
        options = FlowerOptions.from_env()
        seen: set[str] = set()
        if options.store is not None:
            options.store.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="privaudit-flower-", dir=options.store) as tmp:
            store = Path(tmp)
            clients, server = split_job(job, store=store, threads=options.client_threads)

            def round_done(r: int, result: RoundResult) -> None:
                # the data holders' side: the updates the clients kept (with secure
                # aggregation the server never had them in plaintext) go to job.on_round
                updates = [kept_update(store, c, r, result.metrics[c]) for c in result.clients]
                for u in updates:
                    seen.update(u.seen_ids)
                if job.on_round is not None:
                    job.on_round(r, result.global_state, updates, round_record(result))

            served = simulate(clients, server, round_done, options)
        result = TrainingResult(
            initial_state=job.initial_state,
            final_state=served.final_state,
            rounds=[round_record(x) for x in served.rounds],
            client_states=server.initial_states | served.client_states,
            seen_ids=seen,
        )
        record_run(result.final_sha256, FlowerRun(
            flower_version=version, runtime="simulation", seconds=dict(served.seconds),
            nodes=tuple(
                FlowerNode(node_id=n, client_id=c,
                           rounds=tuple(x.round for x in served.rounds if c in x.clients))
                for c, n in served.nodes.items()
            ),
        ))
        return result


register_engine(FlowerEngine.name, FlowerEngine)


def round_record(result: RoundResult) -> RoundRecord:
    return RoundRecord(
        round=result.round,
        global_sha256=result.global_sha256,
        utility_metric=result.utility_metric,
        utility=result.utility,
        seconds=result.seconds,
        clients=list(result.clients),
        client_metrics=dict(result.metrics),
        client_states=dict(result.client_states),
        aggregation=result.aggregation,
    )


def _init_ray(options: FlowerOptions) -> None:
    """Start (or join, with ``options.ray_address``) Ray, unless it is running already; its
    workers import privaudit from this process's ``sys.path``."""
    import ray

    if ray.is_initialized():
        return
    pythonpath = os.pathsep.join(p for p in sys.path if p)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tip: In future versions of Ray")
        ray.init(
            address=options.ray_address,
            include_dashboard=False,
            logging_level=logging.INFO if options.verbose else logging.ERROR,
            log_to_driver=options.verbose,
            runtime_env={"env_vars": {"PYTHONPATH": pythonpath, "FLWR_TELEMETRY_ENABLED": "0"}},
        )


def simulate(
    clients: ClientSide, server: ServerSide, on_round: OnRound, options: FlowerOptions
) -> Served:
    """Run the ServerApp and ClientApp in Flower's simulation runtime (Ray backend)."""
    import ray
    from flwr.app import Context
    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation

    from privaudit.mechanisms.federated.flower.client_app import make_client_app
    from privaudit.mechanisms.federated.flower.server_app import serve
    from privaudit.mechanisms.federated.flower.workload import cached_client_side

    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    loggers = [logging.getLogger(n) for n in ("flwr", "ray")]
    levels = [lg.level for lg in loggers]
    if not options.verbose:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
    box: dict[str, Any] = {}
    began = time.perf_counter()
    try:
        _init_ray(options)
        box["ray_init"] = time.perf_counter() - began
        ref = ray.put(clients)
        key = f"{ref.hex()}-{time.time_ns()}"

        def load(_: Context) -> ClientSide:
            return cached_client_side(key, lambda: ray.get(ref))

        server_app = ServerApp()

        @server_app.main()
        def _main(grid: Grid, context: Context) -> None:
            try:
                box["served"] = serve(grid, server, on_round)
            except BaseException as exc:  # re-raised in the caller's thread below
                box["error"] = exc

        run_simulation(
            server_app=server_app,
            client_app=make_client_app(load),
            num_supernodes=len(clients.order),
            backend_config={
                "client_resources": {"num_cpus": options.client_cpus,
                                     "num_gpus": options.client_gpus},
                "init_args": {"logging_level": "ERROR", "log_to_driver": options.verbose},
            },
            verbose_logging=options.verbose,
        )
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
    if "error" in box:
        error = box["error"]
        if isinstance(error, PrivauditError):
            raise error
        raise InternalError(f"flower engine: the ServerApp failed: {error!r}") from error
    if "served" not in box:
        raise InternalError("flower engine: the simulation ended without a result")
    served: Served = box["served"]
    served.seconds = {
        "ray_init": box.get("ray_init", 0.0),
        "discover": served.discover_seconds,
        "rounds": sum(r.seconds for r in served.rounds),
        "total": time.perf_counter() - began,
    }
    return served
