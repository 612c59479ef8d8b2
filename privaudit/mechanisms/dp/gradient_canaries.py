"""White-box gradient canaries for auditing record-level DP-SGD in one run.

Following Steinke, Nasr, Jagielski (NeurIPS 2023, their white-box "Dirac canaries"): canary
i is a fixed trainable coordinate (a Dirac direction u_i) of one client. Each canary is
included with probability ½ (the inclusion sealed by sha256 before training,
:class:`~privaudit.mechanisms.data.audit_canaries.SealedInclusion`); an included canary is a
record whose clipped gradient is exactly C·u_i, Poisson-sampled at the client's rate q like
every real record, and added to DP-SGD's summed clipped gradients before the noise: it goes
through the real optimizer, noise, denominator and secure aggregation, and costs no forward
pass (one random draw per included canary and step). The accountant is not told about the
canaries: the client's guarantee covers every record Poisson-sampled at q, canaries included.

The score of canary i is the component along u_i of the noisy gradient sums its client's
DP-SGD released, added over every step of every round (:class:`CanaryObserver`): white-box,
the view Steinke et al. audit with, and exactly the quantity the accountant's subsampled
Gaussian analysis covers. It is read before the optimizer, so it does not depend on it:
AdamW's per-coordinate normalisation would make the model change itself a weak score. It is
what the canary's own client saw (the client holds it; secure aggregation hides its update
from the server only).
Coordinates are drawn without repetition, so m canaries need m trainable coordinates; they
are chosen over all trainable tensors in proportion to their size. Dirac coordinates rather
than seeded random directions: on the same experiment random unit vectors, which overlap by
≈ 1/√D, gave lower bounds on every seed and missed noise scaled to 0.25, and need m × D floats
(``benchmarks/bench_canary_directions.py``; figures in the README).

>>> import torch
>>> like = {"a": torch.zeros(4, 5), "b": torch.zeros(10)}
>>> plan = plan_gradient_canaries(6, like=like, clients=["c1", "c2"], seed=0, norm=1.0)
>>> len(set(zip(plan.params, plan.indices.tolist()))) == 6
True
>>> sum(int(v.numel()) for p in plan.placement.values() for v in p.values()) == (
...     plan.sealed.n_included)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from privaudit.core.errors import ConfigError
from privaudit.mechanisms.data.audit_canaries import SealedInclusion, draw_inclusion
from privaudit.mechanisms.data.records import Record

__all__ = [
    "CanaryObserver",
    "GradientCanaryPlan",
    "gradient_canary_scores",
    "plan_gradient_canaries",
    "room_problem",
]

KIND = "gradient"

#: client id → trainable tensor name → flat indices of that client's INCLUDED canaries
Placement = dict[str, dict[str, torch.Tensor]]


@dataclass
class GradientCanaryPlan:
    """The canaries' coordinates and clients, and their sealed inclusion."""

    kind: str
    ids: list[str]
    params: list[str]
    indices: np.ndarray
    clients: list[str]
    norm: float
    sealed: SealedInclusion
    placement: Placement = field(repr=False)
    #: client id → tensor name → flat indices of ALL its canaries, and their canary numbers
    observed: Placement = field(repr=False, default_factory=dict)
    positions: dict[str, dict[str, np.ndarray]] = field(repr=False, default_factory=dict)
    #: no records: gradient canaries ride in the optimizer, not in the data
    canaries: list[Record] = field(default_factory=list)

    def with_clients(self, clients: dict[str, list[Record]]) -> dict[str, list[Record]]:
        """The clients' data unchanged: gradient canaries are not records."""
        return clients

    @property
    def memory_bytes(self) -> int:
        """What the canaries cost in memory: one int64 index per included canary (plus the
        plan's m coordinates)."""
        placed = sum(int(v.numel()) for p in self.placement.values() for v in p.values())
        return 8 * placed + self.indices.nbytes


def plan_gradient_canaries(m: int, *, like: Mapping[str, torch.Tensor], clients: Sequence[str],
                           seed: int, norm: float) -> GradientCanaryPlan:
    """m canaries on m distinct trainable coordinates of ``like`` (the adapter state), each on
    a client drawn at random, included with probability ½; a function of ``seed`` only."""
    names = sorted(like)
    sizes = np.array([like[n].numel() for n in names], dtype=np.int64)
    total = int(sizes.sum())
    if (problem := room_problem(m, total)) is not None:
        raise ConfigError(problem)
    rng = np.random.default_rng([seed, 0x6772_6164])  # "grad"
    flat = np.sort(rng.choice(total, size=m, replace=False))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    which = np.searchsorted(starts, flat, side="right") - 1
    params = [names[w] for w in which]
    indices = flat - starts[which]
    owner = [clients[int(i)] for i in rng.integers(len(clients), size=m)]
    bits = draw_inclusion(m, seed=seed)
    placement: Placement = {}
    observed: Placement = {}
    positions: dict[str, dict[str, np.ndarray]] = {}
    groups: dict[tuple[str, str], list[int]] = {}
    for i in range(m):
        groups.setdefault((owner[i], params[i]), []).append(i)
    for (c, n), members in sorted(groups.items()):
        at = np.array(members)
        observed.setdefault(c, {})[n] = torch.as_tensor(indices[at], dtype=torch.long)
        positions.setdefault(c, {})[n] = at
        inc = at[bits[at]]
        if inc.size:
            placement.setdefault(c, {})[n] = torch.as_tensor(indices[inc], dtype=torch.long)
    return GradientCanaryPlan(
        kind=KIND, ids=[f"dp-grad-canary-{i:05d}" for i in range(m)], params=params,
        indices=indices, clients=owner, norm=float(norm),
        sealed=SealedInclusion.seal(bits, seed=seed), placement=placement,
        observed=observed, positions=positions,
    )


def room_problem(m: int, trainable: int) -> str | None:
    """Why m gradient canaries do not fit a model with ``trainable`` coordinates, or None."""
    if m <= trainable:
        return None
    return (f"attacks.dp_audit.canaries: {m} gradient canaries need {m} distinct trainable "
            f"coordinates; the model has {trainable} (use fewer canaries or kind: mislabeled)")


class CanaryObserver:
    """What the clients' DP-SGD hands the audit: per round, each canary's noisy gradient sum
    (its clients report after their local training; a dropped client reports nothing)."""

    def __init__(self, plan: GradientCanaryPlan) -> None:
        self.plan = plan
        self.rounds: dict[int, np.ndarray] = {}

    def inject(self, client: str) -> dict[str, torch.Tensor] | None:
        return self.plan.placement.get(client)

    def observe(self, client: str) -> dict[str, torch.Tensor] | None:
        return self.plan.observed.get(client)

    def record(self, round_index: int, client: str, sums: Mapping[str, torch.Tensor]) -> None:
        row = self.rounds.setdefault(round_index, np.zeros(len(self.plan.ids)))
        for name, at in self.plan.positions.get(client, {}).items():
            if name in sums:
                row[at] += sums[name].cpu().numpy()

    def pop_round(self, round_index: int) -> np.ndarray:
        return self.rounds.pop(round_index, np.zeros(len(self.plan.ids)))


def gradient_canary_scores(rounds: Iterable[Sequence[float]], m: int) -> np.ndarray:
    """Each canary's score: its noisy gradient sums added over ``rounds`` (one row of m per
    round). Higher = more likely IN (an included canary adds C at each step it is sampled)."""
    scores = np.zeros(m, dtype=np.float64)
    for row in rounds:
        scores += np.asarray(row, dtype=np.float64)
    return scores
