"""Data roles that represent the corpus (#26): a prolific subject does not fill a held-out
role, audit members follow the non-members' label mix, and what skew remains is warned of
with numbers — on a corpus with one dominant author and a skewed topic."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from privaudit.audit.config import DataConfig
from privaudit.mechanisms.data import prepare_data
from privaudit.mechanisms.data.balance import label_shares, take_subjects
from privaudit.mechanisms.data.records import Record

TOPICS = ["art", "food", "law", "sport"]


def _skewed_corpus(path: Path) -> Path:
    """One author with 90 records all on "law", 200 others with 2 records each across the
    four topics."""
    rows = [{"id": f"big-{i}", "subject_id": "prolific", "text": f"a saying on law number {i}",
             "label": "law"} for i in range(90)]
    rows += [{"id": f"s{s}-{j}", "subject_id": f"s{s:03d}",
              "text": f"quote {s} {j} about {TOPICS[(s + j) % 4]}",
              "label": TOPICS[(s + j) % 4]} for s in range(200) for j in range(2)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _prepare(path: Path, seed: int):  # type: ignore[no-untyped-def]
    cfg = DataConfig.model_validate({
        "source": "file", "path": str(path), "test_records": 60, "public_records": 0,
        "audit": {"members": 60, "nonmembers": 60}})
    return prepare_data(cfg, task="classification", k=2, seed=seed)


def test_a_prolific_subject_never_fills_a_held_out_role_and_stays_in_training(
        tmp_path: Path) -> None:
    path = _skewed_corpus(tmp_path / "quotes.jsonl")
    for seed in range(6):  # wherever the shuffle puts the prolific author
        data = _prepare(path, seed)
        for role in (data.test, data.nonmembers):
            top = Counter(r.subject_id for r in role).most_common(1)[0][1]
            assert top <= 0.2 * len(role), (seed, top)
        assert sum(r.subject_id == "prolific" for r in data.training) == 90


def test_audit_members_follow_the_non_members_label_mix(tmp_path: Path) -> None:
    path = _skewed_corpus(tmp_path / "quotes.jsonl")
    for seed in range(4):
        data = _prepare(path, seed)
        mine, theirs = label_shares(data.members), label_shares(data.nonmembers)
        # training holds 90 extra "law" records: drawn at random, members would be ~30% law
        assert max(abs(mine[k] - theirs.get(k, 0.0)) for k in mine) <= 1 / 60 + 1e-9, seed
        assert not any("audit members" in w for w in data.warnings)


def test_a_subject_cut_to_fit_a_role_is_counted_and_warned_of() -> None:
    groups = [[Record(id=f"{s}-{i}", subject_id=s, text="t") for i in range(3)]
              for s in ("a", "b", "c", "d")]
    taken = take_subjects(groups, 10)  # 3 + 3 + 3 + 1 of the last subject's 3
    assert len(taken.records) == 10 and len(taken.cut) == 2
    assert {r.subject_id for r in taken.cut} == {"a"}


def test_role_warnings_name_a_dominant_subject_and_a_label_gap_with_numbers() -> None:
    from privaudit.mechanisms.data.balance import role_warnings

    big = [Record(id=f"b{i}", subject_id="author-x", text="t", label="law") for i in range(8)]
    rest = [Record(id=f"r{i}", subject_id=f"s{i}", text="t", label="art") for i in range(12)]
    members = [Record(id=f"m{i}", subject_id=f"m{i}", text="t", label="law" if i < 8 else "art")
               for i in range(20)]
    notes = role_warnings({"test": big + rest}, members=members, nonmembers=rest,
                          cut={"test": big[:2]})
    assert "one data subject (author-x) holds 40% of the test role (8 of 20 records)" in notes[0]
    assert "label 'law' is 40% of the audit members but 0% of the non-members" in notes[1]
    assert "2 record(s) of data subject author-x are in no role" in notes[2]
