"""Data roles that represent the corpus: audit members drawn like the non-members by label, no
held-out role filled by one data subject, and warnings (with numbers) where the data leaves a
skew.

A membership attack compares members with non-members; if the two differ in topic (label) or
are dominated by one data subject, the AUC measures that difference as much as memorisation.
Held-out roles are whole data subjects (a non-member's details must not reach training
through another of their records), so:

- :func:`take_subjects` fills a held-out role with whole subjects, skipping any subject that
  alone would hold more than ``MAX_SUBJECT_SHARE`` of the role while smaller ones are left
  (that subject stays in training); the records of a subject cut to fit the role's size are
  counted, never dropped silently;
- :func:`sample_members` draws the audit members from the training records with each label
  in the non-members' proportion, as far as the training records allow;
- :func:`role_warnings` names what is still skewed: one subject holding more than
  ``MAX_SUBJECT_SHARE`` of a role, a label whose share among members and non-members differs
  by more than ``MAX_LABEL_GAP``, records left out of every role.

>>> from privaudit.mechanisms.data.records import Record
>>> pool = [Record(id=f"r{i}", subject_id=f"s{i % 4}", text="t", label="ab"[i % 2])
...         for i in range(40)]
>>> like = [Record(id=f"n{i}", subject_id="x", text="t", label="a") for i in range(9)]
>>> like.append(Record(id="n9", subject_id="x", text="t", label="b"))
>>> sorted(r.label for r in sample_members(pool, 10, like=like, seed=0))
['a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'b']
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from privaudit.mechanisms.data.records import Record

__all__ = ["MAX_LABEL_GAP", "MAX_SUBJECT_SHARE", "Taken", "label_shares", "role_warnings",
           "sample_members", "take_subjects"]

#: a held-out role may hold at most this share of one subject while smaller subjects are left
MAX_SUBJECT_SHARE = 0.2
#: members and non-members whose share of one label differs by more than this are warned of
MAX_LABEL_GAP = 0.1


@dataclass
class Taken:
    """What :func:`take_subjects` took for one role, and the records it had to leave out."""

    records: list[Record] = field(default_factory=list)
    cut: list[Record] = field(default_factory=list)  # of the last subject, beyond the size
    skipped: list[str] = field(default_factory=list)  # subjects too large, left to training


def take_subjects(groups: list[list[Record]], n: int) -> Taken:
    """Pop whole subjects off the end of ``groups`` until ``n`` records are taken; a subject
    larger than ``MAX_SUBJECT_SHARE`` · n is put back (for training) while a smaller one is
    left; the last subject is cut to fit, its remainder counted in ``cut``."""
    out = Taken()
    cap = max(1, int(MAX_SUBJECT_SHARE * n))
    kept: list[list[Record]] = []
    while len(out.records) < n and groups:
        group = groups.pop()
        if len(group) > cap and any(len(g) <= cap for g in groups):
            kept.append(group)
            out.skipped.append(group[0].subject_id)
            continue
        out.records.extend(group)
    groups.extend(reversed(kept))  # back where they were, for the next role or training
    if len(out.records) > n:
        out.records, out.cut = out.records[:n], out.records[n:]
    return out


def label_shares(records: Sequence[Record]) -> dict[str, float]:
    """Each label's share of ``records`` (labelled records only; {} when none is)."""
    counts = Counter(r.label for r in records if r.label)
    total = sum(counts.values())
    return {k: v / total for k, v in sorted(counts.items())} if total else {}


def sample_members(eligible: Sequence[Record], n: int, *, like: Sequence[Record],
                   seed: int) -> list[Record]:
    """``n`` records of ``eligible`` with each label in its share of ``like`` (largest
    remainders; a label short of records is topped up at random from the rest); at random
    when the records carry no labels."""
    rng = random.Random(seed)
    target = label_shares(like)
    if not target or not label_shares(eligible):
        return rng.sample(list(eligible), n)
    by_label: dict[str, list[Record]] = {}
    for r in eligible:
        by_label.setdefault(r.label or "", []).append(r)
    quota = {k: int(share * n) for k, share in target.items()}
    order = sorted(target, key=lambda k: (-(target[k] * n - quota[k]), k))
    for k in order[: n - sum(quota.values())]:
        quota[k] += 1
    chosen: list[Record] = []
    for k in sorted(quota):
        pool = by_label.get(k, [])
        chosen += rng.sample(pool, min(quota[k], len(pool)))
    picked = {r.id for r in chosen}
    rest = [r for r in eligible if r.id not in picked]
    chosen += rng.sample(rest, n - len(chosen))
    return chosen


def _top_subject(records: Sequence[Record]) -> tuple[str, int] | None:
    counts = Counter(r.subject_id for r in records)
    return counts.most_common(1)[0] if counts else None


def role_warnings(roles: Mapping[str, Sequence[Record]], *, members: Sequence[Record],
                  nonmembers: Sequence[Record], cut: Mapping[str, Sequence[Record]]
                  ) -> list[str]:
    """The skews left in the roles, each with its numbers (module docstring)."""
    out = []
    for role, records in roles.items():
        top = _top_subject(records)
        if top and len(records) >= 10 and top[1] / len(records) > MAX_SUBJECT_SHARE:
            out.append(f"data: one data subject ({top[0]}) holds {top[1] / len(records):.0%} of "
                       f"the {role} role ({top[1]} of {len(records)} records)")
    mine, theirs = label_shares(members), label_shares(nonmembers)
    gaps = sorted(((abs(mine.get(k, 0.0) - theirs.get(k, 0.0)), k) for k in set(mine) |
                   set(theirs)), reverse=True)
    if gaps and gaps[0][0] > MAX_LABEL_GAP:
        k = gaps[0][1]
        out.append(f"data: label {k!r} is {mine.get(k, 0.0):.0%} of the audit members but "
                   f"{theirs.get(k, 0.0):.0%} of the non-members: attack AUCs then measure "
                   "the labels as well as memorisation (see the within-label AUCs)")
    for role, records in cut.items():
        if records:
            subject = records[0].subject_id
            out.append(f"data: {len(records)} record(s) of data subject {subject} are in no "
                       f"role: the {role} role took part of that subject to reach its size, "
                       "and held-out subjects never reach training")
    return out
