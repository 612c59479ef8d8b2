"""Erasure requests: what resolves, and every invalid request failing as a config error that
names the offending ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from privaudit.audit.config import config_from_dict
from privaudit.core.errors import EXIT_USAGE, ConfigError
from privaudit.mechanisms.data import PreparedData
from privaudit.unlearning.requests import ErasureRequest, load_requests, resolve_requests
from tests.conftest import TINY
from tests.unlearning.conftest import data_of


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return data_of(config_from_dict(TINY))


def req(kind: str, ids: list[str], rid: str = "r1") -> ErasureRequest:
    return ErasureRequest(id=rid, kind=kind, ids=ids)  # type: ignore[arg-type]


def test_subject_request_resolves_to_every_training_record_of_the_subject(
    data: PreparedData,
) -> None:
    subject = data.clients["client-1"][0].subject_id
    (resolved,) = resolve_requests([req("subject", [subject])], data)
    expected = sorted(r.id for r in data.training if r.subject_id == subject)
    assert list(resolved.record_ids) == expected and len(expected) >= 2
    assert resolved.clients == ("client-1",) and resolved.whole_clients == ()


def test_client_request_erases_the_whole_client(data: PreparedData) -> None:
    (resolved,) = resolve_requests([req("client", ["client-0"])], data)
    assert set(resolved.record_ids) == {r.id for r in data.clients["client-0"]}
    assert resolved.whole_clients == ("client-0",)


def test_ids_not_in_training_data_are_named(data: PreparedData) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_requests([req("record", ["nope-1", data.training[0].id])], data)
    assert err.value.exit_code == EXIT_USAGE
    assert "not in the training data" in str(err.value) and "nope-1" in str(err.value)


def test_audit_nonmembers_are_named(data: PreparedData) -> None:
    record = data.nonmembers[0]
    with pytest.raises(ConfigError) as err:
        resolve_requests([req("record", [record.id]), req("subject", [record.subject_id], "r2")],
                         data)
    text = " ".join(err.value.problems)
    assert text.count("audit non-members") == 2
    assert record.id in text and record.subject_id in text


def test_unknown_client_is_named(data: PreparedData) -> None:
    with pytest.raises(ConfigError, match=r"no such client.*client-9"):
        resolve_requests([req("client", ["client-9"])], data)


def test_empty_request_is_a_config_error_naming_the_request() -> None:
    raw = dict(TINY, unlearning={"requests": [{"id": "r1", "kind": "record", "ids": []}]})
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert err.value.exit_code == EXIT_USAGE
    assert any("unlearning.requests.0.ids" in p and "at least one" in p
               for p in err.value.problems)


def test_records_erased_earlier_cannot_be_named_again(data: PreparedData) -> None:
    rid = data.training[0].id
    with pytest.raises(ConfigError, match=r"already erased by request\(s\) \['old'\]"):
        resolve_requests([req("record", [rid])], data, erased={rid: "old"})
    with pytest.raises(ConfigError, match="already erased"):
        resolve_requests([req("record", [rid]), req("record", [rid], "r2")], data)


def test_subject_request_erases_what_an_earlier_record_request_left(
    data: PreparedData,
) -> None:
    subject = data.clients["client-0"][0].subject_id
    records = sorted(r.id for r in data.training if r.subject_id == subject)
    (resolved,) = resolve_requests([req("subject", [subject])], data,
                                   erased={records[0]: "old"})
    assert list(resolved.record_ids) == records[1:]
    with pytest.raises(ConfigError, match="already erased"):
        resolve_requests([req("subject", [subject])], data,
                         erased=dict.fromkeys(records, "old"))


def test_every_problem_is_collected_before_raising(data: PreparedData) -> None:
    bad = [req("record", ["nope"]), req("client", ["client-7"], "r2")]
    with pytest.raises(ConfigError) as err:
        resolve_requests(bad, data)
    assert len(err.value.problems) == 2


def test_unknown_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(dict(TINY, unlearning={"methods": ["forgetful"]}))
    (problem,) = err.value.problems
    assert problem.startswith("unlearning.methods: must be among") and "'forgetful'" in problem


def test_request_file_holds_one_request_or_a_list(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("id: r1\nkind: record\nids: [s00001-r0]\n")
    many = tmp_path / "many.yaml"
    many.write_text("requests:\n  - {id: a, kind: client, ids: [client-0]}\n"
                    "  - {id: b, kind: subject, ids: [s00001], received_at: 2025-01-02}\n")
    assert [r.id for r in load_requests(one)] == ["r1"]
    assert [r.kind for r in load_requests(many)] == ["client", "subject"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: ../escape\nkind: record\nids: [x]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml\[0\].id"):
        load_requests(bad)


def test_invalid_request_in_the_config_fails_before_any_training(tmp_path: Path) -> None:
    from privaudit.audit.pipeline import run_audit
    from privaudit.core.progress import PlainReporter

    cfg = config_from_dict(dict(TINY, unlearning={"requests": [
        {"id": "r1", "kind": "client", "ids": ["client-5"]}]}))
    with pytest.raises(ConfigError, match="client-5"):
        run_audit(cfg, tmp_path / "run", reporter=PlainReporter(quiet=True))
    assert not (tmp_path / "run" / "models").exists()


def test_client_request_below_the_secure_aggregation_minimum_is_refused() -> None:
    from privaudit.audit.stages.erase import check_requests

    raw = dict(TINY, federation=dict(TINY["federation"], clients=3),
               secure_aggregation={"enabled": True, "min_clients": 3},
               unlearning={"requests": [{"id": "r1", "kind": "client", "ids": ["client-0"]}]})
    cfg = config_from_dict(raw)
    with pytest.raises(ConfigError, match=r"leave 2 client.*min_clients is 3"):
        check_requests(cfg.secure_aggregation, data_of(cfg), cfg.unlearning.requests)
