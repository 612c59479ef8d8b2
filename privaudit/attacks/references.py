"""Reference (shadow) models: LoRA adapters trained like the target on random halves of a
population that contains the audited records (Carlini et al., S&P 2022, §IV; Zarifzadeh et al.,
ICML 2024, for RMIA's use of them).

- Recipe: the run's own :class:`~privaudit.mechanisms.federated.recipe.TrainingRecipe`
  through :func:`train_federation`, the single training entry point, so the references get
  the target's federation, DP and engine — only ``attacks.references.overrides`` changes
  that, and secure aggregation is off unless ``attacks.references.secure_aggregation`` (CKKS
  sums equal plain sums up to ~1e-6, so the references learn the same; only the time
  differs). With DP noise calibrated to a target ε, the references take the target's
  calibrated σ (same noise and clipping per step). :mod:`privaudit.attacks.reference_plan`
  makes that recipe. Every reference starts from the target's initial adapter; the base
  model is shared.
- Data: the population — by default every training record plus the held-out audit
  non-members and RMIA population points, so that a member's and a non-member's other
  records (same data subject) are IN equally often and a half is about the target's size —
  is split by :func:`balanced_keep` into complementary pairs of random halves: each record
  is IN for exactly half of any even number of references, and the first 2m references of a
  larger set are a valid set of 2m. Each half is partitioned over the clients with the run's
  partition scheme.
- Cache: reference j is stored under ``RUN/models/references/<recipe>-<data>/ref-NNN/`` with
  a ``meta.json`` naming its key (recipe hash, population hash, j, keep row); a later run with
  the same key loads it (its sha256 checked) instead of training. ``keep.json`` stores the
  keep masks next to the population's record ids.

Cost: only the adapters train (on the cached frozen prefix when ``model.lora.top_layers`` is
set), on half the population each; per-round utility is measured on at most 32 records the
reference did not train on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from privaudit.attacks.config import AttacksConfig
from privaudit.attacks.reference_plan import ReferencePlan, reference_seed
from privaudit.core.errors import ConfigError
from privaudit.core.progress import Reporter
from privaudit.core.rundir import sha256_file, write_json_atomic
from privaudit.mechanisms.data.records import Record, records_sha256
from privaudit.mechanisms.data.splits import PreparedData
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.models import (
    AdapterState,
    ModelBundle,
    adapter_state,
    load_adapter,
    save_adapter,
    set_adapter_state,
    state_sha256,
)
from privaudit.mechanisms.tasks import EncodedSet

__all__ = [
    "ReferenceSet",
    "balanced_keep",
    "population_points",
    "preserved_adapter",
    "reference_population",
    "train_references",
]

_UTILITY_RECORDS = 32


@dataclass(frozen=True, eq=False)
class ReferenceSet:
    """Trained reference adapters and which population records each trained on."""

    population_ids: tuple[str, ...]
    keep: np.ndarray  # (count, P) bool: True = IN
    states: tuple[AdapterState, ...]
    sha256: tuple[str, ...]
    recipe_sha256: str
    data_sha256: str
    utility_metric: str
    utility: tuple[float, ...]
    seconds: float  # training time spent by this call
    reused: int  # adapters loaded from the cache
    plan: ReferencePlan | None = None  # how they trained (None: built by hand, e.g. a test)
    per_seconds: tuple[float, ...] = ()  # each reference's training time (0: loaded)
    per_reused: tuple[bool, ...] = ()  # each reference: loaded from the cache

    @property
    def count(self) -> int:
        return len(self.states)

    def first(self, count: int) -> ReferenceSet:
        """The first ``count`` references: a valid set of their own (keep masks are nested
        across even counts), with their own training time and reuse."""
        if count == self.count:
            return self
        if count % 2 or not 0 < count <= self.count:
            raise ValueError(f"first({count}): need an even count in 2..{self.count}")
        return dataclasses.replace(
            self, keep=self.keep[:count], states=self.states[:count], sha256=self.sha256[:count],
            utility=self.utility[:count], seconds=float(sum(self.per_seconds[:count])),
            reused=sum(self.per_reused[:count]),
            plan=self.plan.with_count(count) if self.plan is not None else None,
            per_seconds=self.per_seconds[:count], per_reused=self.per_reused[:count],
        )

    @property
    def keep_sha256(self) -> str:
        return hashlib.sha256(np.packbits(self.keep, axis=-1).tobytes()).hexdigest()

    def keep_for(self, record_ids: Sequence[str]) -> np.ndarray:
        """(count, N) keep mask of any records: False (OUT) for records outside the population.

        >>> ref = ReferenceSet(("a", "b"), np.array([[True, False], [False, True]]), ({}, {}),
        ...                    ("", ""), "", "", "accuracy", (0.0, 0.0), 0.0, 0)
        >>> ref.keep_for(["b", "zz", "a"]).astype(int).tolist()
        [[0, 0, 1], [1, 0, 0]]
        """
        index = {rid: i for i, rid in enumerate(self.population_ids)}
        out = np.zeros((self.count, len(record_ids)), dtype=bool)
        for col, rid in enumerate(record_ids):
            j = index.get(rid)
            if j is not None:
                out[:, col] = self.keep[:, j]
        return out


def balanced_keep(count: int, n: int, *, seed: int) -> np.ndarray:
    """(count, n) keep masks in complementary pairs: row 2p is a random half (⌊n/2⌋ records,
    drawn from (seed, p) alone), row 2p+1 its complement. Every column is IN for exactly
    half of any even prefix of the rows.

    >>> keep = balanced_keep(4, 7, seed=1)
    >>> keep.sum(axis=0).tolist(), keep[:2].sum(axis=0).tolist()
    ([2, 2, 2, 2, 2, 2, 2], [1, 1, 1, 1, 1, 1, 1])
    >>> bool((balanced_keep(2, 7, seed=1) == keep[:2]).all())
    True
    """
    if count % 2 or count < 0:
        raise ConfigError(f"attacks.references.count: must be even and >= 0; got {count}")
    rows: list[np.ndarray] = []
    for pair in range(count // 2):
        rng = np.random.default_rng([seed, pair])
        half = np.zeros(n, dtype=bool)
        half[rng.permutation(n)[: n // 2]] = True
        rows += [half, ~half]
    return np.stack(rows) if rows else np.zeros((0, n), dtype=bool)


def _sha(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@contextmanager
def preserved_adapter(model: nn.Module) -> Iterator[None]:
    """Restore ``model``'s adapter state on exit (reference training reuses the model)."""
    saved = adapter_state(model)
    try:
        yield
    finally:
        set_adapter_state(model, saved)


def _load_cached(folder: Path, key: str) -> tuple[AdapterState, str, float] | None:
    meta_path, weights = folder / "meta.json", folder / "adapter.safetensors"
    if not (meta_path.is_file() and weights.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if meta.get("key") != key or meta.get("file_sha256") != sha256_file(weights):
        return None
    state = load_adapter(weights)
    return state, str(meta["sha256"]), float(meta["utility"])


def _store_keep(stored: Path, ids: tuple[str, ...], keep: np.ndarray) -> None:
    """Write the keep masks next to the population's ids unless a larger nested set is
    stored already."""
    rows = ["".join("1" if k else "0" for k in row) for row in keep]
    try:
        kept = json.loads(stored.read_text(encoding="utf-8"))["keep"] if stored.is_file() else []
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError):
        kept = []
    if len(kept) < len(rows) or kept[: len(rows)] != rows:  # nested: keep the largest set
        write_json_atomic(stored, {"population_ids": list(ids), "keep": rows})


@dataclass
class _Population:
    """The population, encoded once on first use (frozen-prefix features too)."""

    records: Sequence[Record]
    encode: Callable[[list[Record]], EncodedSet]
    _encoded: EncodedSet | None = None
    _position: dict[str, int] = dataclasses.field(default_factory=dict)

    def subset(self, recs: Sequence[Record]) -> EncodedSet:
        if self._encoded is None:
            self._encoded = self.encode(list(self.records))
            self._position = {r.id: i for i, r in enumerate(self.records)}
        return self._encoded.subset([self._position[r.id] for r in recs])


def _train_one(plan: ReferencePlan, bundle: ModelBundle, population: _Population,
               keep_row: np.ndarray, j: int, *, initial_state: AdapterState,
               engine: str) -> tuple[AdapterState, str, float, int]:
    """Train reference ``j`` on the IN records of ``keep_row``: (state, sha256, utility on
    at most 32 OUT records, IN records)."""
    inside = [r for r, k in zip(population.records, keep_row, strict=True) if k]
    outside = [r for r, k in zip(population.records, keep_row, strict=True) if not k]
    clients = {c: population.subset(recs) for c, recs in plan.clients_of(inside, j).items()
               if recs}
    try:
        result = train_federation(
            plan.recipe, bundle, clients, population.subset(outside[:_UTILITY_RECORDS]),
            initial_state=initial_state, seed=reference_seed(plan.recipe.seed, j),
            engine=engine,
        )
    except ConfigError as exc:
        where = (f"attacks.references: reference {j} trains on half the population "
                 f"({len(inside)} records over {len(clients)} clients, the smallest "
                 f"{min(len(c) for c in clients.values())})")
        raise type(exc)(f"{where}: {exc}", [f"{where}: {p}" for p in exc.problems]) from None
    value = result.rounds[-1].utility if result.rounds else float("nan")
    return result.final_state, result.final_sha256, value, len(inside)


def train_references(
    plan: ReferencePlan,
    bundle: ModelBundle,
    population: Sequence[Record],
    encode: Callable[[list[Record]], EncodedSet],
    *,
    initial_state: AdapterState,
    engine: str,
    cache_root: Path,
    reporter: Reporter,
) -> ReferenceSet:
    """Train (or load) ``plan.count`` references on halves of ``population``;
    ``bundle.model``'s adapter state is unchanged on return."""
    recipe = plan.recipe_sha256(
        base_sha256=bundle.base_sha256, adapter_config_sha256=bundle.adapter_config_sha256,
        initial_sha256=state_sha256(initial_state), engine=engine,
    )
    data_sha = records_sha256(population)
    keep = balanced_keep(plan.count, len(population), seed=plan.recipe.seed)
    folder = cache_root / f"{recipe[:16]}-{data_sha[:16]}"
    ids = tuple(r.id for r in population)
    _store_keep(folder / "keep.json", ids, keep)
    pop = _Population(population, encode)
    metric = "accuracy" if plan.recipe.task == "classification" else "perplexity"
    states: list[AdapterState] = []
    shas: list[str] = []
    utility: list[float] = []
    per_seconds: list[float] = []  # 0.0: loaded from the cache
    per_reused: list[bool] = []
    with reporter.stage("references", plan.count) as progress, preserved_adapter(bundle.model):
        for j in range(plan.count):
            key = _sha({"recipe": recipe, "data": data_sha, "j": j,
                        "keep": hashlib.sha256(np.packbits(keep[j]).tobytes()).hexdigest()})
            here = folder / f"ref-{j:03d}"
            cached = _load_cached(here, key)
            if cached is not None:
                state, sha, value = cached
                per_seconds.append(0.0)
                per_reused.append(True)
                progress.advance(f"reference {j}: reused ({metric} {value:.3f})")
            else:
                started = time.perf_counter()
                state, sha, value, n_in = _train_one(plan, bundle, pop, keep[j], j,
                                                     initial_state=initial_state, engine=engine)
                save_adapter(state, here / "adapter.safetensors")
                per_seconds.append(time.perf_counter() - started)
                per_reused.append(False)
                write_json_atomic(here / "meta.json", {
                    "key": key, "sha256": sha, "utility": value, "seconds": per_seconds[-1],
                    "file_sha256": sha256_file(here / "adapter.safetensors"),
                    "seed": reference_seed(plan.recipe.seed, j), "in_records": n_in,
                })
                progress.advance(f"reference {j}: {per_seconds[-1]:.1f} s, {metric} {value:.3f}")
            states.append(state)
            shas.append(sha)
            utility.append(value)
    return ReferenceSet(
        population_ids=ids, keep=keep, states=tuple(states), sha256=tuple(shas),
        recipe_sha256=recipe, data_sha256=data_sha, utility_metric=metric,
        utility=tuple(utility), seconds=float(sum(per_seconds)), reused=sum(per_reused),
        plan=plan, per_seconds=tuple(per_seconds), per_reused=tuple(per_reused),
    )


def population_points(attacks: AttacksConfig, data: PreparedData) -> list[Record]:
    """RMIA's population points z: held-out test records, non-members of every model
    (the first ``attacks.population``; 0 = all)."""
    return list(data.test[: attacks.population or None])


def reference_population(attacks: AttacksConfig, data: PreparedData) -> list[Record]:
    """The records the references train on halves of (``attacks.references.population``).

    ``training``: every training record, the non-members and the population points z — all
    held-out records, so that each reference trains on about as many records as the target
    did (a smaller model would fit its data less and misplace LiRA's IN/OUT Gaussians); z IN
    for half of the references is what RMIA's online Pr(z) expects. ``audit``: the audit
    members and non-members only."""
    if attacks.references.population == "audit":
        pool = [*data.members, *data.nonmembers]
    else:
        pool = [*data.training, *data.nonmembers, *population_points(attacks, data)]
    seen: set[str] = set()
    out = []
    for r in pool:
        if r.id not in seen:
            seen.add(r.id)
            out.append(r)
    return out
