"""The :class:`Unlearner` base, its registry, and the values every method shares.

A method is a class with a ``name``, an ``exactness`` (``exact`` | ``approximate``) and one
job: :meth:`Unlearner.unlearn` turns an :class:`ErasureTarget` (the records to forget, the
records erased so far, the model to start from) into a :class:`MethodOutcome` (the unlearned
model and what it cost). The erase stage (``stage.py``) times it, evaluates it and writes the
:class:`~privaudit.reports.schema.UnlearningResult`. ``register_unlearner`` /
``get_unlearner`` is the registry the config names methods through.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

from privaudit.attacks.config import AttacksConfig
from privaudit.attacks.references import ReferenceSet
from privaudit.core.errors import ConfigError
from privaudit.core.registry import Registry
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.data.config import DataConfig, PartitionConfig
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.data.splits import PreparedData
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.federated.privacy import FEDERATION, PrivacyOutcome
from privaudit.mechanisms.federated.recipe import TrainingRecipe
from privaudit.mechanisms.model.config import ModelConfig
from privaudit.mechanisms.models import (
    AdapterState,
    ModelBundle,
    ensemble_sha256,
    ensemble_state,
    load_adapter,
    save_adapter,
)
from privaudit.mechanisms.tasks import EncodedSet
from privaudit.unlearning import registry as _methods
from privaudit.unlearning.config import UnlearningConfig
from privaudit.unlearning.requests import ErasureRequest, ResolvedRequest
from privaudit.unlearning.results import UnlearningResult

Exactness = Literal["exact", "approximate"]

__all__ = [
    "ErasureTarget",
    "MethodOutcome",
    "UnlearnedModel",
    "Unlearner",
    "UnlearningContext",
    "UnlearningResult",
    "available_unlearners",
    "derive_seed",
    "get_unlearner",
    "register_unlearner",
]


def derive_seed(seed: int, *parts: object) -> int:
    """A seed for one derived job (a method on a request), stable across runs."""
    text = "/".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % (2**31 - 1)


def federation_examples(recipe: TrainingRecipe, clients: Mapping[str, EncodedSet]) -> int:
    """Examples a federation of ``recipe`` processes: rounds × local epochs × records."""
    fed = recipe.federation
    return fed.rounds * fed.local_epochs * sum(len(d) for d in clients.values())


@dataclass
class UnlearnedModel:
    """One adapter, or one per shard (SISA) whose predicted probabilities are averaged."""

    states: list[AdapterState]

    @property
    def is_ensemble(self) -> bool:
        return len(self.states) > 1

    def combined(self) -> AdapterState:
        """The state as stored: shard ``k``'s tensors under ``shard-KK/<name>``."""
        return self.states[0] if not self.is_ensemble else ensemble_state(self.states)

    @property
    def sha256(self) -> str:
        return ensemble_sha256(self.states)

    def save(self, path: Path) -> str:
        return save_adapter(self.combined(), path)

    @classmethod
    def load(cls, path: Path) -> UnlearnedModel:
        flat = load_adapter(path)
        if not all(k.startswith("shard-") and "/" in k for k in flat):
            return cls(states=[flat])
        shards: dict[int, AdapterState] = {}
        for key, t in flat.items():
            head, name = key.split("/", 1)
            shards.setdefault(int(head.removeprefix("shard-")), {})[name] = t
        return cls(states=[shards[k] for k in sorted(shards)])


@dataclass
class UnlearningContext:
    """What every method may use: the run's data, model, recipe and trained adapters, and
    the config sections unlearning reads (never the whole config)."""

    recipe: TrainingRecipe  # what the run's federation trained with
    model_cfg: ModelConfig
    data_cfg: DataConfig  # the oracle derives the retained clients from the corpus again
    attacks: AttacksConfig  # the forget-set evidence uses the battery's statistics settings
    ucfg: UnlearningConfig
    bundle: ModelBundle
    data: PreparedData
    clients: dict[str, EncodedSet]  # the training clients, encoded, in partition order
    test: EncodedSet
    nonmembers: EncodedSet
    initial_state: AdapterState  # the LoRA initialisation every training run starts from
    trained_state: AdapterState  # the final global adapter
    run: RunDir
    engine: str
    encode: Callable[[list[Record]], EncodedSet]
    dp_guarantee: tuple[float, float] | None = None  # record-level (ε, δ) of the training run
    privacy: PrivacyOutcome | None = None  # the run's noise and accountants (None without DP)
    # DP-audit canaries the target trained with: part of every client's records above (so the
    # oracle retrains on exactly the target's training set minus the erased records), never
    # erasable, and not among the retained records attacked for collateral
    audit_canary_ids: frozenset[str] = frozenset()
    # the run's reference models (trained once by the audit's references stage), for U-LiRA;
    # None when U-LiRA needs none
    references: ReferenceSet | None = None

    @property
    def partition(self) -> PartitionConfig:
        return self.data_cfg.partition

    def run_noise(self, clients: Mapping[str, Any]) -> dict[str, float] | None:
        """The run's own σ for ``clients`` (record mode; z in client mode), for retraining:
        the same noise as the run instead of a fresh calibration (which would also make a
        one-round retraining spend the run's whole ε). None without DP, or when a client's
        σ is unknown (then train_federation calibrates)."""
        p = self.privacy
        if p is None or p.dp_mode == "none" or not p.noise_multipliers:
            return None
        keys = [FEDERATION] if p.dp_mode == "client" else list(clients)
        if any(k not in p.noise_multipliers for k in keys):
            return None
        return {k: p.noise_multipliers[k] for k in keys}

    def continued_privacy(self) -> PrivacyOutcome | None:
        """A copy of the run's privacy outcome whose accountants go on counting further DP
        training on the retained records (the run's own outcome is left untouched)."""
        if self.privacy is None or self.privacy.dp_mode == "none":
            return None
        return PrivacyOutcome.from_dict(self.privacy.to_dict())

    def retain_clients(self, erased: frozenset[str]) -> dict[str, EncodedSet]:
        """Every client's records minus ``erased``; clients left with none are dropped."""
        out: dict[str, EncodedSet] = {}
        for c, d in self.clients.items():
            keep = [i for i, rid in enumerate(d.record_ids) if rid not in erased]
            if keep:
                out[c] = d if len(keep) == len(d) else d.subset(keep)
        return out

    def forget_by_client(self, forget: frozenset[str]) -> dict[str, EncodedSet]:
        """The records of ``forget`` at each client holding some (partition order)."""
        out: dict[str, EncodedSet] = {}
        for c, d in self.clients.items():
            idx = [i for i, rid in enumerate(d.record_ids) if rid in forget]
            if idx:
                out[c] = d.subset(idx)
        return out

    def records(self, ids: frozenset[str]) -> EncodedSet:
        """The training records ``ids`` (in partition order), encoded."""
        parts = [d.subset([i for i, r in enumerate(d.record_ids) if r in ids])
                 for d in self.clients.values()]
        return concat_sets(parts, pad_id=next(iter(self.clients.values())).pad_id)


def concat_sets(parts: Sequence[EncodedSet], *, pad_id: int) -> EncodedSet:
    """The records of ``parts`` one after another (labels and cached features kept)."""
    labelled = [p.labels for p in parts if p.labels is not None]
    featured = [p.features for p in parts if p.features is not None]
    return EncodedSet(
        record_ids=tuple(r for p in parts for r in p.record_ids),
        input_ids=tuple(x for p in parts for x in p.input_ids),
        labels=tuple(y for lab in labelled for y in lab) if labelled else None,
        pad_id=pad_id,
        features=tuple(f for fs in featured for f in fs) if len(featured) == len(parts) else None,
    )


@dataclass
class ErasureTarget:
    """One request as one method must serve it.

    ``forget`` is what this method's starting model still holds of the erased data (usually
    the request's records); ``erased`` is every record erased so far, this request included:
    nothing trained after the request may see any of it.
    """

    request: ResolvedRequest
    forget: frozenset[str]
    erased: frozenset[str]
    start: UnlearnedModel
    seed: int
    reference_loss: float  # trained model's mean loss on the matched held-out records

    @property
    def request_id(self) -> str:
        return self.request.id


@dataclass
class MethodOutcome:
    """What a method returns; the stage adds timing, evaluation and files."""

    model: UnlearnedModel
    examples_processed: int
    trained_ids: set[str] = field(default_factory=set)  # ids any descent/training step used
    ascended_ids: set[str] = field(default_factory=set)  # forget ids used by gradient ascent
    stopping_reason: str | None = None
    flags: list[str] = field(default_factory=list)
    seconds: float | None = None  # the method's own time when it also ran its oracle (SISA)
    exactness: Exactness | None = None  # a downgrade of the class's claim (a failed check)
    oracle_seconds: float | None = None  # set by a method that carries its own oracle (SISA)
    oracle_model: UnlearnedModel | None = None
    files: list[Path] = field(default_factory=list)  # extra files written (checkpoints)
    # record-level ε of the retained records for the model this method released, when its
    # own DP training continued the run's accountants (None: no further DP training)
    retained_epsilon: float | None = None
    ledger: dict[str, Any] = field(default_factory=dict)  # state the next request resumes


class Unlearner(ABC):
    """A method that serves an erasure request. Subclasses set ``name`` and ``exactness``.

    ``chained``: the method starts from its own output for the previous request (True) or
    recomputes from the training run's artifacts every time (False: oracle, FedEraser).
    ``prepare`` runs once after training, before any request (SISA trains its shards there).
    """

    name: ClassVar[str] = ""
    exactness: ClassVar[Exactness] = "approximate"
    chained: ClassVar[bool] = True
    #: the yardstick every other method is judged against (the oracle); never judged itself
    is_oracle: ClassVar[bool] = False
    #: what it trains right after the federation, before any request (SISA: its shards), or
    #: None; a run not trained with it cannot serve a request with it
    trains: ClassVar[str | None] = None
    #: why U-LiRA does not judge it (U-LiRA runs a method once per reference model), or None
    ulira_unsupported: ClassVar[str | None] = None

    def __init__(self, cfg: UnlearningConfig) -> None:
        self.cfg = cfg

    def prepare(self, ctx: UnlearningContext, ledger: Mapping[str, Any]) -> dict[str, Any]:
        """Training-time work before any request; returns what the ledger keeps. Default none."""
        return {}

    def start_model(self, ctx: UnlearningContext, ledger: Mapping[str, Any]) -> UnlearnedModel:
        """The model this method unlearns from when it has no output of its own yet."""
        return UnlearnedModel(states=[ctx.trained_state])

    def latest_model(self, ctx: UnlearningContext, ledger: Mapping[str, Any],
                     entry: Mapping[str, Any]) -> UnlearnedModel:
        """The model a chained method continues from: its output for the previous request
        (``entry``: its ledger entry)."""
        return UnlearnedModel.load(ctx.run.path(entry["model"]))

    def estimate_steps(self, fed: FederationConfig, *, clients: int, per_round: int,
                       retraining: int) -> int:
        """At most how many local steps one request takes on a federation of ``clients``
        clients whose round takes ``per_round`` steps (the dry run's estimate). A method that
        does not say is counted as a retraining (``retraining`` steps)."""
        return retraining

    def estimate_training(self, sizes: Mapping[str, int], fed: FederationConfig,
                          requests: Sequence[ErasureRequest]) -> tuple[int, int]:
        """(models, local steps) of what it trains before any request (:attr:`trains`) and
        retrains for ``requests``; (0, 0) for a method that trains nothing ahead."""
        return 0, 0

    @abstractmethod
    def unlearn(
        self, ctx: UnlearningContext, target: ErasureTarget, ledger: Mapping[str, Any]
    ) -> MethodOutcome:
        """Remove ``target.forget`` from ``target.start``; never train on ``target.erased``."""


#: The unlearning methods, by name (:class:`~privaudit.core.registry.Registry`); the
#: built-in ones are imported on first lookup (:mod:`privaudit.unlearning.registry`).
UNLEARNERS: Registry[type[Unlearner]] = cast("Registry[type[Unlearner]]", _methods.REGISTRY)


def register_unlearner(name: str, cls: type[Unlearner]) -> None:
    UNLEARNERS.register(name, cls)


def get_unlearner(name: str, *, where: str = "unlearning.methods") -> type[Unlearner]:
    """The unlearner registered as ``name``; an unknown name is a ConfigError naming ``where``
    (the config field, or the CLI option that gave it)."""
    return UNLEARNERS.get(name, where=where)


def available_unlearners() -> list[str]:
    """Every registered method name except the oracle (which always runs first)."""
    return _methods.method_names()


def oracle_name() -> str:
    """The name of the registered oracle: the method every other one is judged against."""
    found = [n for n in UNLEARNERS.names() if UNLEARNERS.get(n).is_oracle]
    if len(found) != 1:
        raise ConfigError(f"unlearning: exactly one oracle must be registered; got {found}")
    return found[0]
