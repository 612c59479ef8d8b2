"""From a corpus to the run's data roles: clients, test, public, and the audit split.

Held-out roles (test, audit non-members, public) are made of whole data subjects that never
reach a client, so a non-member's personal details are not in training through another of
their records; no subject may fill more than a fifth of one while smaller ones are left. Audit
members are sampled from the training records before any exclusion, each label in the
non-members' proportion (:mod:`~privaudit.mechanisms.data.balance`), so the split stays the
same when ``exclude_subjects`` / ``exclude_records`` build an oracle; a member that is
excluded leaves the member set. What skew remains is in ``PreparedData.warnings``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from privaudit.core.errors import ConfigError, DataError
from privaudit.mechanisms.data.balance import role_warnings, sample_members, take_subjects
from privaudit.mechanisms.data.canaries import Canary, insert_canaries
from privaudit.mechanisms.data.config import CanaryConfig, DataConfig
from privaudit.mechanisms.data.corpus import LABELS, generate_corpus
from privaudit.mechanisms.data.partition import partition_records
from privaudit.mechanisms.data.records import Record, load_records, records_sha256


@dataclass(frozen=True)
class RoleSummary:
    role: str
    n_records: int
    n_subjects: int
    sha256: str
    source: str
    preparation: str

    @classmethod
    def of(cls, role: str, records: Sequence[Record], *, source: str,
           preparation: str) -> RoleSummary:
        """The summary of ``records`` in ``role``: counts and the records' sha256."""
        return cls(role=role, n_records=len(records),
                   n_subjects=len({r.subject_id for r in records}),
                   sha256=records_sha256(records), source=source, preparation=preparation)


@dataclass
class PreparedData:
    labels: list[str] | None
    clients: dict[str, list[Record]]
    test: list[Record]
    public: list[Record]
    members: list[Record]
    nonmembers: list[Record]
    excluded: list[Record] = field(default_factory=list)
    canaries: list[Canary] = field(default_factory=list)  # secrets written into training
    #: skews the roles keep, with numbers (:func:`~privaudit.mechanisms.data.balance.
    #: role_warnings`)
    warnings: list[str] = field(default_factory=list)

    @property
    def training(self) -> list[Record]:
        return [r for recs in self.clients.values() for r in recs]

    def max_records_per_subject(self) -> int:
        counts: dict[str, int] = defaultdict(int)
        for r in self.training:
            counts[r.subject_id] += 1
        return max(counts.values(), default=0)

    def summaries(self, source: str) -> list[RoleSummary]:
        roles: list[tuple[str, list[Record], str]] = [
            (name, recs, "local training data of one client")
            for name, recs in self.clients.items()
        ]
        roles += [
            ("test", self.test, "held-out subjects; utility after each round"),
            ("public", self.public, "held-out subjects; pretraining of a built base model"),
            ("audit-members", self.members, "sampled from training records"),
            ("audit-nonmembers", self.nonmembers, "held-out subjects, never trained on"),
            ("excluded", self.excluded, "left out of training by data.exclude_*"),
        ]
        return [
            RoleSummary.of(name, recs, source=source, preparation=prep)
            for name, recs, prep in roles
            if recs or name in ("test", "audit-members", "audit-nonmembers")
        ]


def load_corpus(cfg: DataConfig, *, task: str, seed: int) -> tuple[list[Record], list[str] | None]:
    if cfg.source == "synthetic":
        syn = cfg.synthetic
        records = generate_corpus(
            subjects=syn.subjects,
            min_records=syn.min_records,
            max_records=syn.max_records,
            seed=seed,
            locale=syn.locale,
            label_noise=syn.label_noise,
        )
        return records, list(LABELS) if task == "classification" else None
    if cfg.path is None:  # guarded by the config validator; kept for type narrowing
        raise ConfigError("data.path: required when data.source is 'file'")
    records = load_records(cfg.path, need_label=task == "classification",
                           columns=cfg.columns)
    labels = sorted({r.label for r in records if r.label}) if task == "classification" else None
    if labels is not None and len(labels) < 2:
        raise DataError(f"{cfg.path}: classification needs at least 2 labels (got {labels})")
    return records, labels


def _check_exclusions(cfg: DataConfig, private: Sequence[Record]) -> None:
    """``data.exclude_records`` / ``exclude_subjects`` must name training records and leave
    some to train on; ConfigError naming the field otherwise."""
    private_ids = {r.id for r in private}
    private_subjects = {r.subject_id for r in private}
    drop_ids, drop_subjects = set(cfg.exclude_records), set(cfg.exclude_subjects)
    if private and all(r.id in drop_ids or r.subject_id in drop_subjects for r in private):
        field = "data.exclude_subjects" if drop_subjects & private_subjects else \
            "data.exclude_records"
        raise ConfigError(
            f"{field}: excludes every training record ({len(private)} records of "
            f"{len(private_subjects)} subjects), so nothing would be left to train on "
            f"(got {len(drop_subjects)} subject(s), {len(drop_ids)} record id(s))"
        )
    unknown = [i for i in cfg.exclude_records if i not in private_ids]
    unknown_subjects = [s for s in cfg.exclude_subjects if s not in private_subjects]
    problems = []
    if unknown:
        problems.append(f"data.exclude_records: ids not in the training data (got {unknown[:10]})")
    if unknown_subjects:
        problems.append(
            "data.exclude_subjects: subjects not in the training data "
            f"(got {unknown_subjects[:10]})"
        )
    if problems:
        raise ConfigError(problems[0], problems)


def prepare_data(
    cfg: DataConfig, *, task: str, k: int, seed: int, canaries: CanaryConfig | None = None
) -> PreparedData:
    records, labels = load_corpus(cfg, task=task, seed=seed)
    groups_by_subject: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups_by_subject[r.subject_id].append(r)
    groups = [groups_by_subject[s] for s in sorted(groups_by_subject)]
    random.Random(seed).shuffle(groups)

    taken = {role: take_subjects(groups, n) for role, n in (
        ("test", cfg.test_records), ("audit-nonmembers", cfg.audit.nonmembers),
        ("public", cfg.public_records))}
    test, nonmembers, public = (taken[r].records for r in ("test", "audit-nonmembers",
                                                            "public"))
    private = [r for g in groups for r in g]
    inserted: list[Canary] = []
    if canaries is not None and canaries.count:
        private, inserted = insert_canaries(private, canaries, seed=seed)
    held = {"data.test_records": (test, cfg.test_records)}
    held["data.audit.nonmembers"] = (nonmembers, cfg.audit.nonmembers)
    held["data.public_records"] = (public, cfg.public_records)
    for name, (got, wanted) in held.items():
        if len(got) < wanted:
            raise ConfigError(f"{name}: the data has too few subjects left for {wanted} records")
    # a canary's random digits would make its carrier an outlier among members
    carriers = {rid for c in inserted for rid in c.carriers}
    eligible = [r for r in private if r.id not in carriers] if carriers else private
    if len(eligible) < cfg.audit.members:
        raise ConfigError(
            f"data.audit.members: must be at most the {len(eligible)} training records "
            f"{'without a canary ' if carriers else ''}(got {cfg.audit.members})"
        )
    members = sample_members(eligible, cfg.audit.members, like=nonmembers, seed=seed + 1)

    _check_exclusions(cfg, private)
    drop_ids, drop_subjects = set(cfg.exclude_records), set(cfg.exclude_subjects)

    def dropped(r: Record) -> bool:
        return r.id in drop_ids or r.subject_id in drop_subjects

    # Partition before exclusion, so that leaving records out (an oracle, an erasure)
    # removes them from their own client and moves nobody else.
    partitioned = partition_records(
        private,
        k=k,
        scheme=cfg.partition.scheme,
        seed=seed,
        alpha=cfg.partition.alpha,
        field_name=cfg.partition.field,
        keep_subjects_together=cfg.partition.keep_subjects_together,
    )
    clients = {c: [r for r in recs if not dropped(r)] for c, recs in partitioned.items()}
    empty = [c for c, recs in clients.items() if not recs]
    if empty:
        raise ConfigError(f"data.exclude_subjects: leaves client(s) {empty} with no records")
    excluded = [r for r in private if dropped(r)]
    kept = [r for r in members if not dropped(r)]
    return PreparedData(
        labels=labels,
        clients=clients,
        test=test,
        public=public,
        members=kept,
        nonmembers=nonmembers,
        excluded=excluded,
        canaries=inserted,
        warnings=role_warnings({"test": test, "audit-nonmembers": nonmembers, "public": public},
                               members=kept, nonmembers=nonmembers,
                               cut={r: t.cut for r, t in taken.items()}),
    )


def all_ids(records: Sequence[Record]) -> list[str]:
    return [r.id for r in records]
