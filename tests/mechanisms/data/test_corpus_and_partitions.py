from __future__ import annotations

from collections import defaultdict

import pytest

from privaudit.audit.config import AuditConfig, DataConfig
from privaudit.core.errors import ConfigError
from privaudit.mechanisms.data import (
    PreparedData,
    generate_corpus,
    partition_records,
    prepare_data,
)
from privaudit.mechanisms.data.records import Record


def _prepare(seed: int = 0, **data: object) -> PreparedData:
    cfg = DataConfig.model_validate(
        {"synthetic": {"subjects": 120}, "test_records": 40, **data}
        | {"audit": {"members": 50, "nonmembers": 50}}
    )
    return prepare_data(cfg, task="classification", k=4, seed=seed)


def test_same_seed_gives_identical_corpus_on_two_generations() -> None:
    a = generate_corpus(subjects=30, min_records=2, max_records=4, seed=11)
    b = generate_corpus(subjects=30, min_records=2, max_records=4, seed=11)
    assert [(r.id, r.text, r.label) for r in a] == [(r.id, r.text, r.label) for r in b]
    c = generate_corpus(subjects=30, min_records=2, max_records=4, seed=12)
    assert [r.text for r in a] != [r.text for r in c]


def test_records_carry_personal_details_and_a_label() -> None:
    records = generate_corpus(subjects=5, min_records=2, max_records=2, seed=0)
    assert len(records) == 10
    for r in records:
        assert r.label in {"billing", "technical", "account", "medical"}
        assert any(ch.isdigit() for ch in r.text)  # phone, account or patient number, amount
    by_subject: dict[str, set[str]] = defaultdict(set)
    for r in records:
        by_subject[r.subject_id].add(r.id)
    assert all(len(ids) == 2 for ids in by_subject.values())


def test_same_seed_gives_identical_partitions_and_audit_split() -> None:
    a, b = _prepare(seed=5), _prepare(seed=5)
    assert {c: [r.id for r in rs] for c, rs in a.clients.items()} == {
        c: [r.id for r in rs] for c, rs in b.clients.items()
    }
    assert [r.id for r in a.members] == [r.id for r in b.members]
    assert [r.id for r in a.nonmembers] == [r.id for r in b.nonmembers]


@pytest.mark.parametrize("scheme", ["iid", "dirichlet"])
def test_audit_nonmembers_never_reach_any_client(scheme: str) -> None:
    data = _prepare(partition={"scheme": scheme})
    training_ids = {r.id for r in data.training}
    training_subjects = {r.subject_id for r in data.training}
    assert len(data.nonmembers) == 50
    for r in data.nonmembers:
        assert r.id not in training_ids
        assert r.subject_id not in training_subjects  # whole subjects are held out
    for r in data.test:
        assert r.subject_id not in training_subjects
    assert all(r.id in training_ids for r in data.members)


@pytest.mark.parametrize("scheme", ["iid", "dirichlet"])
def test_all_records_of_a_subject_stay_on_one_client(scheme: str) -> None:
    data = _prepare(partition={"scheme": scheme, "alpha": 0.3})
    owner: dict[str, set[str]] = defaultdict(set)
    for client, records in data.clients.items():
        assert records, f"{client} got no records"
        for r in records:
            owner[r.subject_id].add(client)
    assert all(len(clients) == 1 for clients in owner.values())


def test_dirichlet_with_small_alpha_skews_labels_across_clients() -> None:
    data = _prepare(partition={"scheme": "dirichlet", "alpha": 0.05})
    shares = []
    for records in data.clients.values():
        counts = defaultdict(int)
        for r in records:
            counts[r.label] += 1
        shares.append(max(counts.values()) / len(records))
    iid = _prepare(partition={"scheme": "iid"})
    iid_shares = []
    for records in iid.clients.values():
        counts = defaultdict(int)
        for r in records:
            counts[r.label] += 1
        iid_shares.append(max(counts.values()) / len(records))
    assert sum(shares) / len(shares) > sum(iid_shares) / len(iid_shares)


def test_by_field_partition_maps_each_value_to_one_client() -> None:
    records = [
        Record(id=f"r{i}", subject_id=f"s{i}", text="x", label="a", fields={"site": f"h{i % 3}"})
        for i in range(12)
    ]
    clients = partition_records(records, k=3, scheme="by_field", seed=0, field_name="site")
    for recs in clients.values():
        assert len({r.fields["site"] for r in recs}) == 1
    with pytest.raises(ConfigError, match=r"federation\.clients is 4"):
        partition_records(records, k=4, scheme="by_field", seed=0, field_name="site")


def test_excluded_subject_leaves_only_its_own_client() -> None:
    full = _prepare()
    victim = full.members[0]
    reduced = _prepare(exclude_subjects=[victim.subject_id])
    for client, records in full.clients.items():
        kept = [r.id for r in records if r.subject_id != victim.subject_id]
        assert [r.id for r in reduced.clients[client]] == kept
    assert all(r.subject_id != victim.subject_id for r in reduced.training)
    assert all(r.subject_id != victim.subject_id for r in reduced.members)
    assert {r.subject_id for r in reduced.excluded} == {victim.subject_id}


def test_excluding_an_unknown_record_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"data.exclude_records.*nope"):
        _prepare(exclude_records=["nope"])


def test_default_config_prepares_disjoint_roles() -> None:
    cfg = AuditConfig()
    data = prepare_data(cfg.data, task="classification", k=cfg.federation.clients, seed=0)
    roles = [data.training, data.test, data.nonmembers, data.public]
    ids = [r.id for role in roles for r in role]
    assert len(ids) == len(set(ids))


def test_corpus_dates_come_from_a_fixed_window_so_the_corpus_never_changes_with_today() -> None:
    import re

    texts = [r.text for r in _prepare().training]
    dates = [d for t in texts for d in re.findall(r"\b(\d{4})-\d{2}-\d{2}\b", t)]
    assert dates, "the templates put dates in the messages"
    assert {int(y) for y in dates} <= {2023, 2024}
