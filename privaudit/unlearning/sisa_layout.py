"""SISA's layout: which records are in which slice of which shard, fixed at training time."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from privaudit.unlearning.base import UnlearningContext, derive_seed


@dataclass(frozen=True)
class SisaLayout:
    """``slices[k][r]``: the record ids of slice r of shard k (fixed at training time)."""

    slices: tuple[tuple[tuple[str, ...], ...], ...]

    @property
    def shards(self) -> int:
        return len(self.slices)

    def first_slices(self, ids: frozenset[str]) -> dict[int, int]:
        """Shard → the first slice holding any of ``ids`` (shards holding none are absent)."""
        out: dict[int, int] = {}
        for k, shard in enumerate(self.slices):
            for r, part in enumerate(shard):
                if ids.intersection(part):
                    out[k] = r
                    break
        return out

    def shard_ids(self, k: int, upto: int, excluded: frozenset[str]) -> list[str]:
        """The records shard k trains on at slice ``upto`` (slices 0..upto), minus excluded."""
        return [i for part in self.slices[k][: upto + 1] for i in part if i not in excluded]

    def to_json(self) -> dict[str, Any]:
        return {"slices": [[list(p) for p in shard] for shard in self.slices]}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SisaLayout:
        return cls(slices=tuple(tuple(tuple(p) for p in shard) for shard in obj["slices"]))


def build_layout(ctx: UnlearningContext) -> SisaLayout:
    """Shards and slices of the training records, from the config and the run's seed."""
    conf, together = ctx.ucfg.sisa, ctx.partition.keep_subjects_together
    subject = {r.id: r.subject_id for r in ctx.data.training}

    def units(ids: Sequence[str]) -> list[list[str]]:
        if not together:
            return [[i] for i in ids]
        groups: dict[str, list[str]] = {}
        for i in ids:
            groups.setdefault(subject.get(i, i), []).append(i)  # a canary is its own unit
        return list(groups.values())

    if conf.shard_by == "clients":
        shard_units = [units(d.record_ids) for d in ctx.clients.values()]
    else:
        pool = units([i for d in ctx.clients.values() for i in d.record_ids])
        random.Random(derive_seed(ctx.recipe.seed, "sisa-layout")).shuffle(pool)
        shard_units = [pool[k :: conf.shards] for k in range(conf.shards)]
    slices = []
    for shard in shard_units:
        bounds = np.array_split(np.arange(len(shard)), conf.slices)
        slices.append(tuple(tuple(i for u in b.tolist() for i in shard[u]) for b in bounds))
    return SisaLayout(slices=tuple(slices))
