"""Partition training records over K clients: ``iid``, ``dirichlet`` (over labels) or ``by_field``.

The unit that moves is a data subject (all their records together) unless
``keep_subjects_together`` is false, in which case it is a single record.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from privaudit.core.errors import ConfigError
from privaudit.mechanisms.data.records import Record


def even_split(total: int, k: int) -> list[int]:
    """``total`` items over ``k`` parts as evenly as possible (the first ``total % k`` get one
    more).

    >>> even_split(10, 4)
    [3, 3, 2, 2]
    """
    return [total // k + (1 if i < total % k else 0) for i in range(k)]


def client_ids(k: int) -> list[str]:
    return [f"client-{i}" for i in range(k)]


def _units(records: Sequence[Record], by_subject: bool) -> list[list[Record]]:
    if not by_subject:
        return [[r] for r in records]
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[r.subject_id].append(r)
    return list(groups.values())


def _unit_label(unit: Sequence[Record]) -> str:
    counts = Counter(r.label or "" for r in unit)
    return min(counts, key=lambda lab: (-counts[lab], lab))  # majority, ties by name


def _rebalance_empty(assignment: list[int], k: int) -> list[int]:
    """Give every client at least one unit by moving units off the largest clients."""
    counts = Counter(assignment)
    for client in range(k):
        if counts[client]:
            continue
        donor = max(range(k), key=lambda c: counts[c])
        index = max(i for i, c in enumerate(assignment) if c == donor)
        assignment[index] = client
        counts[donor] -= 1
        counts[client] += 1
    return assignment


def _assign_iid(units: list[list[Record]], k: int, rng: np.random.Generator) -> list[int]:
    order = rng.permutation(len(units))
    assignment = [0] * len(units)
    for position, index in enumerate(order):
        assignment[int(index)] = position % k
    return assignment


def _assign_dirichlet(
    units: list[list[Record]], k: int, alpha: float, rng: np.random.Generator
) -> list[int]:
    labels = sorted({_unit_label(u) for u in units})
    proportions = {lab: rng.dirichlet(np.full(k, alpha)) for lab in labels}
    assignment = [int(rng.choice(k, p=proportions[_unit_label(u)])) for u in units]
    return _rebalance_empty(assignment, k)


def _assign_by_field(units: list[list[Record]], k: int, field_name: str) -> list[int]:
    values: list[str] = []
    for unit in units:
        found = {r.fields.get(field_name) for r in unit}
        if None in found:
            bad = next(r.id for r in unit if field_name not in r.fields)
            raise ConfigError(
                f"data.partition.field: record '{bad}' has no field '{field_name}'",
            )
        if len(found) > 1:
            raise ConfigError(
                f"data.partition.field: subject '{unit[0].subject_id}' has records with "
                f"different '{field_name}' values {sorted(str(v) for v in found)}; set "
                "data.partition.keep_subjects_together: false to split subjects"
            )
        values.append(str(found.pop()))
    distinct = sorted(set(values))
    if len(distinct) != k:
        raise ConfigError(
            f"data.partition.field: '{field_name}' has {len(distinct)} distinct values "
            f"{distinct[:10]} but federation.clients is {k}"
        )
    index = {v: i for i, v in enumerate(distinct)}
    return [index[v] for v in values]


def partition_records(
    records: Sequence[Record],
    *,
    k: int,
    scheme: str,
    seed: int,
    alpha: float = 0.5,
    field_name: str | None = None,
    keep_subjects_together: bool = True,
) -> dict[str, list[Record]]:
    """Split ``records`` over ``k`` clients; every client gets at least one record."""
    units = _units(records, keep_subjects_together)
    if len(units) < k:
        raise ConfigError(
            f"federation.clients: {k} clients but only {len(units)} "
            f"{'subjects' if keep_subjects_together else 'records'} to train on"
        )
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        assignment = _assign_iid(units, k, rng)
    elif scheme == "dirichlet":
        assignment = _assign_dirichlet(units, k, alpha, rng)
    elif scheme == "by_field":
        assignment = _assign_by_field(units, k, field_name or "")
    else:
        raise ConfigError(
            f"data.partition.scheme: must be one of iid, dirichlet, by_field (got {scheme!r})"
        )
    names = client_ids(k)
    clients: dict[str, list[Record]] = {name: [] for name in names}
    for unit, client in zip(units, assignment, strict=True):
        clients[names[client]].extend(unit)
    return clients
