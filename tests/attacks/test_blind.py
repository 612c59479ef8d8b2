"""The blind baseline (``attacks/blind.py``) as a statistic: how often it says a split leaks
when the split is random, and when the members are longer by construction."""

from __future__ import annotations

import json
import random
from pathlib import Path

from privaudit.attacks.blind import LEAK_ALPHA, blind_baseline

TEXTS = [json.loads(line)["text"] for line in
         (Path(__file__).resolve().parents[1] / "data" / "memorise.jsonl").read_text()
         .splitlines() if line.strip()]


def test_a_random_split_of_one_pool_is_almost_never_said_to_leak() -> None:
    """20 random 40/40 splits of the same records: at α = 0.001 the expected number of false
    alarms is 0.02, so more than one would mean the test is miscalibrated."""
    flagged, aucs = 0, []
    for seed in range(20):
        texts = random.Random(seed).sample(TEXTS, 80)
        b = blind_baseline(texts[:40], texts[40:], seed=seed, n_bootstrap=10)
        flagged += b.leaks
        aucs.append(b.auc)
    assert flagged <= 1, f"{flagged} of 20 random splits flagged at α = {LEAK_ALPHA}"
    assert 0.4 < sum(aucs) / len(aucs) < 0.55  # out-of-fold AUCs centre on chance or below


def test_members_longer_than_nonmembers_are_always_said_to_leak() -> None:
    ordered = sorted(TEXTS, key=len)
    for seed in range(5):
        rng = random.Random(seed)
        b = blind_baseline(rng.sample(ordered[-80:], 40), rng.sample(ordered[:80], 40),
                           seed=seed, n_bootstrap=10)
        assert b.leaks and b.auc > 0.9, b


def test_members_on_another_topic_are_said_to_leak() -> None:
    """Not only length: a topic the non-members never mention separates the sets too."""
    records = [json.loads(line) for line in (Path(__file__).resolve().parents[1] / "data"
               / "memorise.jsonl").read_text().splitlines() if line.strip()]
    medical = [r["text"] for r in records if "appointment" in r["text"].lower()]
    other = [r["text"] for r in records if "appointment" not in r["text"].lower()]
    n = min(len(medical), 30)
    assert n >= 10, "the fixture corpus has too few appointment records for this test"
    b = blind_baseline(medical[:n], other[:n], seed=0, n_bootstrap=10)
    assert b.leaks


def test_folds_keep_a_subjects_records_together_so_names_do_not_fake_a_leak() -> None:
    """The demo's audit split: members and non-members are data subjects with several records,
    each naming its subject. Folds that split a subject let the classifier recognise the name
    (it did: AUC 0.76, p ~ 1e-19 on the demo preset); folds by subject do not."""
    from privaudit.mechanisms.data import prepare_data
    from privaudit.mechanisms.data.config import DataConfig

    data = prepare_data(DataConfig.model_validate(
        {"synthetic": {"subjects": 200, "min_records": 2, "max_records": 4},
         "test_records": 40, "audit": {"members": 120, "nonmembers": 120}}),
        task="classification", k=2, seed=7)
    members, nonmembers = data.members, data.nonmembers
    texts = ([r.text for r in members], [r.text for r in nonmembers])
    subjects = ([r.subject_id for r in members], [r.subject_id for r in nonmembers])
    grouped = blind_baseline(*texts, seed=7, n_bootstrap=10, subjects=subjects)
    assert grouped.grouped_by_subject and not grouped.leaks, grouped
    ungrouped = blind_baseline(*texts, seed=7, n_bootstrap=10)
    assert ungrouped.auc > grouped.auc + 0.1  # the names, not the split
