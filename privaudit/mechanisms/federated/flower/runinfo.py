"""What a Flower training leaves for the report: the Flower version and the nodes that took part.

The Flower engine records one :class:`FlowerRun` per training, keyed by the sha256 of the
adapter it produced, so that the report finds the run of ITS model among the many trainings
of one audit (target, references, oracles, retraining). Imports no Flower: the report reads
it whether or not the optional extra is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version


@dataclass(frozen=True)
class FlowerNode:
    node_id: int
    client_id: str
    rounds: tuple[int, ...]


@dataclass(frozen=True)
class FlowerRun:
    flower_version: str
    runtime: str  # "simulation" (Ray backend) or "deployment" (SuperLink + SuperNodes)
    nodes: tuple[FlowerNode, ...] = field(default_factory=tuple)
    #: where the wall time went: ray_init, discover (actors up, workload loaded), rounds,
    #: total (run_simulation from start to shutdown); not part of the report
    seconds: dict[str, float] = field(default_factory=dict)


_RUNS: dict[str, FlowerRun] = {}


def flower_version() -> str | None:
    """The installed flwr version, None without the ``flower`` extra."""
    try:
        return version("flwr")
    except PackageNotFoundError:
        return None


def record_run(final_sha256: str, run: FlowerRun) -> None:
    _RUNS[final_sha256] = run


def run_for(final_sha256: str) -> FlowerRun | None:
    """The Flower training that produced the adapter with this sha256 in this process."""
    return _RUNS.get(final_sha256)


def flower_run(engine: str, final_sha256: str) -> FlowerRun | None:
    """For the report: the Flower run of the reported adapter (engine ``flower``); when this
    process did not train it (a resumed run), the Flower version alone."""
    if engine != "flower":
        return None
    return run_for(final_sha256) or FlowerRun(
        flower_version=flower_version() or "unknown", runtime="simulation"
    )
