"""Secret canaries written into training records (Carlini, Liu, Erlingsson, Kos, Song, "The
Secret Sharer", USENIX Security 2019), for measuring a causal LM's exposure.

A canary is a sentence with a random secret, e.g. ``my account pin is 2 8 1 9 4 7`` (digits
spaced, so every candidate secret tokenizes into the same number of tokens). Canary i is
written at the start of ``insertions[i % len(insertions)]`` distinct training records (at the
start, so truncation to ``model.max_length`` never cuts it); no record carries two canaries,
and held-out records never carry one. Everything is a function of the run's seed, so an oracle
or a resumed run prepares the same canaries in the same records.

>>> from privaudit.mechanisms.data.config import CanaryConfig
>>> cfg = CanaryConfig(count=2, insertions=[1, 3], digits=4)
>>> records = [Record(id=f"r{i}", subject_id="s", text=f"text {i}") for i in range(6)]
>>> new, canaries = insert_canaries(records, cfg, seed=0)
>>> [c.insertions for c in canaries], sum(r.text.startswith("my account pin") for r in new)
([1, 3], 4)
>>> canaries[0].text == canary_text(cfg.template, canaries[0].secret)
True
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace

from privaudit.core.errors import ConfigError
from privaudit.mechanisms.data.config import CanaryConfig
from privaudit.mechanisms.data.records import Record

__all__ = [
    "Canary",
    "canary_text",
    "candidate_texts",
    "insert_canaries",
    "make_canaries",
    "random_secret",
    "secret_space_size",
]


@dataclass(frozen=True)
class Canary:
    """One secret canary: ``text`` is what was written into the ``carriers`` (record ids)."""

    id: str
    secret: str
    text: str
    insertions: int
    carriers: tuple[str, ...] = ()

    @property
    def secret_sha256(self) -> str:
        """What the run directory stores instead of the secret."""
        return hashlib.sha256(self.secret.encode("utf-8")).hexdigest()


def canary_text(template: str, secret: str) -> str:
    """The canary sentence, ending with a full stop (as it appears in training records)."""
    return template.format(secret=secret) + "."


def random_secret(rng: random.Random, digits: int) -> str:
    """``digits`` uniform random digits, space-separated."""
    return " ".join(rng.choice("0123456789") for _ in range(digits))


def secret_space_size(cfg: CanaryConfig) -> int:
    """|R|: how many secrets the format allows."""
    return int(10**cfg.digits)


def _rng(seed: int, what: str) -> random.Random:
    return random.Random(f"privaudit-canaries:{what}:{seed}")


def make_canaries(cfg: CanaryConfig, *, seed: int) -> list[Canary]:
    """``cfg.count`` canaries with distinct secrets (no carriers yet)."""
    if cfg.count > secret_space_size(cfg) // 2:
        raise ConfigError(
            f"attacks.canaries.count: at most half of the 10^{cfg.digits} secrets; "
            f"got {cfg.count}"
        )
    rng = _rng(seed, "secrets")
    secrets: list[str] = []
    while len(secrets) < cfg.count:
        s = random_secret(rng, cfg.digits)
        if s not in secrets:
            secrets.append(s)
    return [
        Canary(
            id=f"canary-{i:03d}",
            secret=s,
            text=canary_text(cfg.template, s),
            insertions=cfg.insertions[i % len(cfg.insertions)],
        )
        for i, s in enumerate(secrets)
    ]


def insert_canaries(
    records: list[Record], cfg: CanaryConfig, *, seed: int
) -> tuple[list[Record], list[Canary]]:
    """``records`` with the canaries written into randomly chosen ones, and the canaries
    (with their carriers). Records keep their ids, subjects and order."""
    canaries = make_canaries(cfg, seed=seed)
    needed = sum(c.insertions for c in canaries)
    if needed > len(records):
        raise ConfigError(
            f"attacks.canaries: {cfg.count} canaries with insertions {cfg.insertions} need "
            f"{needed} training records; the training data has {len(records)}"
        )
    chosen = _rng(seed, "carriers").sample(range(len(records)), needed)
    out = list(records)
    placed: list[Canary] = []
    start = 0
    for canary in canaries:
        positions = sorted(chosen[start : start + canary.insertions])
        start += canary.insertions
        for p in positions:
            out[p] = replace(records[p], text=f"{canary.text} {records[p].text}")
        placed.append(replace(canary, carriers=tuple(records[p].id for p in positions)))
    return out, placed


def candidate_texts(
    cfg: CanaryConfig, canaries: list[Canary], *, seed: int
) -> list[str]:
    """``cfg.candidates`` canary sentences with distinct random secrets other than the
    inserted ones: the sample that each canary's rank in R is estimated from."""
    taken = {c.secret for c in canaries}
    room = secret_space_size(cfg) - len(taken)
    n = min(cfg.candidates, room)
    rng = _rng(seed, "candidates")
    chosen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        s = random_secret(rng, cfg.digits)
        if s in taken or s in chosen:
            continue
        chosen.add(s)
        out.append(canary_text(cfg.template, s))
    return out
