"""Canaries for the one-run DP audit (Steinke, Nasr, Jagielski, NeurIPS 2023).

m canary records are generated — mislabeled records for classification (random words from the
training vocabulary with a random label), random secret strings for causal LMs — and each is
included in training independently with probability ½, on a client chosen at random. Which
were included is sealed: the run directory gets only a sha256 commitment, and
:meth:`SealedInclusion.reveal` opens it only once the audit hands over its scores. Canaries are
new records with their own subjects, so they are never audit members or non-members.

Everything is a function of the run's seed, so a resumed run plants the same canaries.

>>> plan = plan_audit_canaries(8, kind="secret", labels=None, vocabulary=[], clients=["a", "b"],
...                            seed=0)
>>> len(plan.canaries), plan.canaries[0].text.startswith("my audit code is")
(8, True)
>>> sum(len(v) for v in plan.placement.values()) == plan.sealed.n_included
True
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from privaudit.core.errors import ConfigError, InternalError
from privaudit.mechanisms.data.records import Record

__all__ = [
    "AuditCanaryPlan",
    "SealedInclusion",
    "draw_inclusion",
    "plan_audit_canaries",
    "resolve_kind",
]

SECRET_TEMPLATE = "my audit code is {secret}."
CANARY_CLIENT_PREFIX = "canary-client-"
_WORDS = 12
_DIGITS = 10


def resolve_kind(kind: str, task: str, dp_mode: str = "none") -> str:
    """``auto`` → gradient canaries under record-level DP (white-box, the strongest audit of
    DP-SGD), else mislabeled for classification, secret for a causal LM."""
    if kind == "auto":
        if dp_mode == "record":
            return "gradient"
        return "mislabeled" if task == "classification" else "secret"
    if kind == "gradient" and dp_mode != "record":
        raise ConfigError(
            f"attacks.dp_audit.kind: 'gradient' canaries live in DP-SGD's clipped gradients and "
            f"need privacy.dp.mode 'record'; got mode {dp_mode!r} (use 'auto')"
        )
    if kind == "mislabeled" and task != "classification":
        raise ConfigError(
            f"attacks.dp_audit.kind: 'mislabeled' needs model.task 'classification'; got "
            f"task {task!r} (use 'secret' or 'auto')"
        )
    return kind


def _rng(seed: int, what: str) -> random.Random:
    return random.Random(f"privaudit-dp-audit:{what}:{seed}")


def draw_inclusion(m: int, *, seed: int) -> np.ndarray:
    """m independent fair coins: canary i is included in training iff ``out[i]``."""
    rng = _rng(seed, "inclusion")
    return np.array([rng.random() < 0.5 for _ in range(m)], dtype=bool)


def _commitment(nonce: str, bits: np.ndarray) -> str:
    payload = nonce + ":" + "".join("1" if b else "0" for b in bits)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class SealedInclusion:
    """Which canaries were trained on, committed by hash and opened only after scoring."""

    commitment_sha256: str
    n_canaries: int
    n_included: int
    _bits: np.ndarray = field(repr=False)
    _nonce: str = field(repr=False)
    revealed_for: str | None = field(default=None, repr=False)

    @classmethod
    def seal(cls, bits: np.ndarray, *, seed: int) -> SealedInclusion:
        nonce = hashlib.sha256(f"privaudit-dp-audit:nonce:{seed}".encode()).hexdigest()
        return cls(_commitment(nonce, bits), len(bits), int(bits.sum()), bits.copy(), nonce)

    def reveal(self, *, scores: np.ndarray) -> np.ndarray:
        """The inclusion bits, given the canary scores they will judge (scored first)."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (self.n_canaries,):
            raise InternalError(f"reveal needs {self.n_canaries} canary scores; got "
                                f"shape {scores.shape}")
        if _commitment(self._nonce, self._bits) != self.commitment_sha256:
            raise InternalError("dp_audit: the inclusion does not match its commitment")
        self.revealed_for = hashlib.sha256(scores.tobytes()).hexdigest()
        return self._bits.copy()

    def opening(self) -> dict[str, object]:
        """What lets anyone check the commitment, written after the audit."""
        if self.revealed_for is None:
            raise InternalError("dp_audit: the inclusion is opened only after scoring")
        return {
            "commitment_sha256": self.commitment_sha256,
            "nonce": self._nonce,
            "included": "".join("1" if b else "0" for b in self._bits),
            "scores_sha256": self.revealed_for,
        }


@dataclass
class AuditCanaryPlan:
    kind: str
    canaries: list[Record]
    #: client id → the included canary records it trains on
    placement: dict[str, list[Record]]
    sealed: SealedInclusion

    def with_clients(self, clients: dict[str, list[Record]]) -> dict[str, list[Record]]:
        """Each client's records followed by its included canaries; canary clients (client
        level DP) join the federation after the data clients."""
        out = {c: [*recs, *self.placement.get(c, [])] for c, recs in clients.items()}
        out |= {c: list(recs) for c, recs in self.placement.items() if c not in clients}
        return out

    @property
    def canary_clients(self) -> list[str]:
        """The canary clients that joined the federation (client-level audits only)."""
        return [c for c in self.placement if c.startswith(CANARY_CLIENT_PREFIX)]


def _text(kind: str, rng: random.Random, vocabulary: Sequence[str]) -> str:
    if kind == "secret":
        secret = " ".join(rng.choice("0123456789") for _ in range(_DIGITS))
        return SECRET_TEMPLATE.format(secret=secret)
    if not vocabulary:  # random letter strings: out of distribution, so memorised alone
        return " ".join(
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 7)))
            for _ in range(_WORDS)
        )
    return " ".join(rng.choice(vocabulary) for _ in range(_WORDS))


def plan_audit_canaries(
    m: int,
    *,
    kind: str,
    labels: Sequence[str] | None,
    vocabulary: Sequence[str],
    clients: Sequence[str],
    seed: int,
    canary_clients: bool = False,
) -> AuditCanaryPlan:
    """``m`` canaries, their sealed fair-coin inclusion and the clients that hold them.

    ``canary_clients`` (client-level DP, where the protected unit is a client): each
    included canary is a whole client of its own, ``canary-client-NNNN``, holding that one
    record; excluded canaries' clients never join. Otherwise each included canary goes to a
    data client drawn at random.
    """
    if kind == "mislabeled" and (not labels or len(labels) < 2):
        raise ConfigError(f"attacks.dp_audit.kind: 'mislabeled' needs >= 2 labels; got {labels}")
    if not clients:
        raise ConfigError("attacks.dp_audit: no clients to hold the canaries")
    rng = _rng(seed, "records")
    canaries, texts = [], set()
    for i in range(m):
        text = _text(kind, rng, vocabulary)
        while text in texts:
            text = _text(kind, rng, vocabulary)
        texts.add(text)
        label = rng.choice(list(labels)) if kind == "mislabeled" and labels else None
        cid = f"dp-canary-{i:04d}"
        canaries.append(Record(id=cid, subject_id=cid, text=text, label=label))
    bits = draw_inclusion(m, seed=seed)
    where = _rng(seed, "clients")
    placement: dict[str, list[Record]] = {c: [] for c in clients}
    for i, (rec, inside) in enumerate(zip(canaries, bits, strict=True)):
        if inside and canary_clients:
            placement[f"{CANARY_CLIENT_PREFIX}{i:04d}"] = [rec]
        elif inside:
            placement[where.choice(list(clients))].append(rec)
    return AuditCanaryPlan(kind, canaries, placement, SealedInclusion.seal(bits, seed=seed))
