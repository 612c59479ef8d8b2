"""Secret canaries: written into exactly the configured number of training records, never
into held-out records or audited members, the same for the same seed."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from privaudit.audit.config import CanaryConfig, config_from_dict
from privaudit.core.errors import ConfigError
from privaudit.mechanisms.data import prepare_data
from privaudit.mechanisms.data.canaries import candidate_texts, insert_canaries, make_canaries
from privaudit.mechanisms.data.records import Record
from tests.conftest import TINY, merge

LM: dict[str, Any] = merge(TINY, {
    "data": {"public_records": 20},
    "model": {"task": "causal-lm"},
    "attacks": {"canaries": {"count": 6, "insertions": [1, 3, 5]}},
})


def _prepared(seed: int = 3, **canaries: Any):  # type: ignore[no-untyped-def]
    cfg = config_from_dict(merge(LM, {"seed": seed, "attacks": {"canaries": canaries}}))
    data = prepare_data(cfg.data, task="causal-lm", k=cfg.federation.clients, seed=seed,
                        canaries=cfg.attacks.canaries)
    return cfg, data


def test_each_canary_is_written_into_exactly_its_insertion_count_of_training_records() -> None:
    _, data = _prepared()
    assert [c.insertions for c in data.canaries] == [1, 3, 5, 1, 3, 5]
    for canary in data.canaries:
        carriers = [r for r in data.training if canary.text in r.text]
        assert len(carriers) == canary.insertions
        assert sorted(r.id for r in carriers) == sorted(canary.carriers)
        assert all(r.text.startswith(canary.text) for r in carriers)  # survives truncation
    per_record = Counter(rid for c in data.canaries for rid in c.carriers)
    assert max(per_record.values()) == 1


def test_held_out_records_and_audited_members_never_carry_a_canary() -> None:
    _, data = _prepared()
    texts = [c.text for c in data.canaries]
    for role in (data.test, data.public, data.nonmembers, data.members):
        assert not any(t in r.text for t in texts for r in role)


def test_the_same_seed_gives_the_same_canaries_and_another_seed_others() -> None:
    _, a = _prepared(seed=3)
    _, b = _prepared(seed=3)
    _, c = _prepared(seed=4)
    assert a.canaries == b.canaries
    assert {x.secret for x in a.canaries}.isdisjoint({x.secret for x in c.canaries})


def test_without_canaries_the_data_is_unchanged() -> None:
    cfg = config_from_dict(merge(LM, {"attacks": {"canaries": {"count": 0}}}))
    plain = prepare_data(cfg.data, task="causal-lm", k=2, seed=3)
    off = prepare_data(cfg.data, task="causal-lm", k=2, seed=3, canaries=cfg.attacks.canaries)
    assert plain.training == off.training and plain.members == off.members
    assert off.canaries == []


def test_more_insertions_than_training_records_is_a_config_error() -> None:
    records = [Record(id=f"r{i}", subject_id=f"s{i}", text="x") for i in range(5)]
    with pytest.raises(ConfigError, match="need 6 training records"):
        insert_canaries(records, CanaryConfig(count=2, insertions=[3]), seed=0)


def test_secrets_are_spaced_digits_and_candidates_exclude_them() -> None:
    cfg = CanaryConfig(count=4, digits=3, candidates=900)
    canaries = make_canaries(cfg, seed=1)
    for c in canaries:
        assert len(c.secret.split()) == 3 and c.secret.replace(" ", "").isdigit()
    cands = candidate_texts(cfg, canaries, seed=1)
    assert len(cands) == len(set(cands)) == 900
    assert not {c.text for c in canaries} & set(cands)
    assert len(candidate_texts(CanaryConfig(count=4, digits=3, candidates=5000), canaries,
                               seed=1)) == 1000 - 4  # the whole space but the canaries


def test_canaries_on_a_classifier_and_a_template_without_a_secret_are_refused() -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(merge(TINY, {"attacks": {"canaries": {"count": 2}}}))
    assert any(p.startswith("attacks.canaries.count: secret canaries")
               for p in err.value.problems)
    with pytest.raises(ConfigError) as err:
        config_from_dict(merge(LM, {"attacks": {"canaries": {"template": "pin {pin}"}}}))
    assert err.value.problems[0].startswith("attacks.canaries: template must contain '{secret}'")
