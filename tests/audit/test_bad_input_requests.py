"""Bad erasure requests never crash `privaudit erase`, and never touch the run: exit 2 naming
the request's field and the offending ids, the run directory byte-for-byte unchanged.

One tiny run is trained once for the module. Hypothesis writes REQUEST.yaml files of every
shape — wrong kinds and types, unknown keys, ids that are audit non-members, held-out, from
another kind, missing, or path traversals — and runs the real CLI on that run.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.audit.bad_input_helpers import (
    TREES,
    assert_contract,
    run_main,
    snapshot_unchanged,
    yaml_bytes,
)
from tests.conftest import TINY


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("erase-bad-input")
    cfg = root / "config.yaml"
    cfg.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    run = root / "run"
    outcome = run_main("run", cfg, "--out", run)
    assert outcome.code == 0, outcome.text[-3000:]
    yield run


def _ids(run: Path, role: str) -> list[str]:
    ids: list[str] = json.loads((run / "data" / f"{role}.json").read_text())["ids"]
    return ids


def _subject(record_id: str) -> str:
    return record_id.rsplit("-", 1)[0]  # the synthetic corpus names records s00012-r0


JUNK = ["../../x", "a/b", "..", ".", "", " ", "nope", "client-9", "s99999", "\u00e9",
        "x" * 300]
REQUEST_IDS = st.sampled_from(["req-1", "r.2_x", "../../escape", "a/b", "..", ".hidden", "",
                               "x" * 70, "-lead", "ok\nno"]) | st.text(max_size=8) | TREES


@st.composite
def request_files(draw: st.DrawFn, run: Path) -> Any:
    """Requests that are all invalid on the tiny run (a valid one would serve an erasure)."""
    held = _ids(run, "audit-nonmembers") + _ids(run, "test")
    trained = _ids(run, "client-0")
    pools = {
        "record": held + JUNK,
        "subject": sorted({_subject(i) for i in held}) + trained[:5] + JUNK,
        "client": sorted({_subject(i) for i in trained[:5]}) + JUNK,
    }
    items = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["record", "subject", "client", "Record", "all"]) | TREES)
        pool = pools.get(kind, JUNK) if isinstance(kind, str) else JUNK
        req: dict[str, Any] = {"id": draw(REQUEST_IDS), "kind": kind,
                               "ids": draw(st.lists(st.sampled_from(pool), min_size=1,
                                                    max_size=4) | TREES)}
        if draw(st.booleans()):
            req[draw(st.sampled_from(["received_at", "reason", "id"]))] = draw(TREES)
        items.append(req)
    shape = draw(st.sampled_from(["one", "list", "wrapped", "tree", "empty"]))
    if shape == "empty":
        return draw(st.sampled_from([None, [], {"requests": []}, {"requests": None}]))
    if shape == "one":
        return items[0]
    if shape == "list":
        return items
    if shape == "wrapped":
        return {"requests": items}
    return draw(TREES)


def _erase(run: Path, blob: bytes) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        request = Path(tmp) / "request.yaml"
        request.write_bytes(blob)
        return run_main("erase", run, "--request", request, "--methods", "gradient_ascent")


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_an_invalid_request_exits_2_naming_it_and_leaves_the_run_untouched(
    finished_run: Path, data: st.DataObject
) -> None:
    blob = yaml_bytes(data.draw(request_files(finished_run)))
    with snapshot_unchanged(finished_run):
        outcome = _erase(finished_run, blob)
    assert_contract(outcome, allowed=(2,))
    assert "request" in outcome.err


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=120))
def test_random_bytes_as_a_request_file(finished_run: Path, blob: bytes) -> None:
    with snapshot_unchanged(finished_run):
        outcome = _erase(finished_run, blob)
    assert_contract(outcome, allowed=(2,))


@pytest.mark.parametrize(
    ("request_doc", "says"),
    [
        ({"id": "../../escape", "kind": "record", "ids": ["x"]}, "request.yaml[0].id"),
        ({"id": "a/b", "kind": "record", "ids": ["x"]}, "String should match pattern"),
        ({"id": "r1", "kind": "everything", "ids": ["x"]}, "request.yaml[0].kind"),
        ({"id": "r1", "kind": "record", "ids": []}, "at least one non-empty id"),
        ({"id": "r1", "kind": "record", "ids": ["a", "a"]}, "ids must be distinct"),
        ({"id": "r1", "kind": "record", "ids": "s00001-r0"}, "request.yaml[0].ids"),
        ({"id": "r1", "kind": "client", "ids": ["client-9"]}, "no such client(s) ['client-9']"),
        ({"id": "r1", "kind": "record", "ids": ["nope"]}, "record ids not in the training data"),
        ({"requests": []}, "names no request"),
    ],
)
def test_hostile_requests_exit_2_naming_the_field(finished_run: Path, request_doc: Any,
                                                  says: str) -> None:
    with snapshot_unchanged(finished_run):
        outcome = _erase(finished_run, yaml_bytes(request_doc))
    assert_contract(outcome, allowed=(2,))
    assert says in outcome.err, outcome.err


def test_a_nonmember_is_refused_then_a_valid_request_is_served_once(finished_run: Path) -> None:
    nonmember = _ids(finished_run, "audit-nonmembers")[0]
    with snapshot_unchanged(finished_run):
        outcome = _erase(finished_run, yaml_bytes(
            {"id": "r-ok", "kind": "record", "ids": [nonmember]}))
    assert outcome.code == 2 and "audit non-members" in outcome.err
    record = _ids(finished_run, "client-0")[0]
    served = _erase(finished_run, yaml_bytes({"id": "r-ok", "kind": "record", "ids": [record]}))
    assert_contract(served, allowed=(0,))
    assert (finished_run / "models" / "gradient_ascent" / "r-ok").is_dir()
    assert run_main("verify", finished_run).code == 0  # the run is whole after the erasure
    with snapshot_unchanged(finished_run):
        again = _erase(finished_run, yaml_bytes({"id": "r-ok", "kind": "record",
                                                 "ids": [record]}))
    assert again.code == 2 and "already served" in again.err


@pytest.mark.parametrize(
    ("damage", "code", "says"),
    [
        (lambda run: (run / "config.yaml").write_text("a: [unclosed\n"), 2, "not valid YAML"),
        (lambda run: (run / "config.yaml").write_bytes(b"\xff\xfe"), 2, "not UTF-8"),
        (lambda run: (run / "report.json").write_text('{"x":'), 2, "not valid JSON"),
        (lambda run: (run / "report.json").unlink(), 2, "is not a finished run"),
        (lambda run: next((run / "models" / "global").glob("round-002/adapter.safetensors"))
         .unlink(), 1, "adapter.safetensors: missing"),
    ],
)
def test_erase_on_a_damaged_run_names_the_damage(finished_run: Path, tmp_path: Path,
                                                 damage: Any, code: int, says: str) -> None:
    """A run directory is input too: a broken one is refused (2) or fails verification (1)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run)
    record = _ids(run, "client-0")[1]
    outcome = _erase(run, yaml_bytes({"id": "r-dmg", "kind": "record", "ids": [record]}))
    assert_contract(outcome, allowed=(code,))
    assert says in outcome.err, outcome.err


@pytest.mark.parametrize("blob", [b"", b"\n", b"# only a comment\n", b"null\n"])
def test_an_empty_request_file_says_it_is_empty(finished_run: Path, blob: bytes) -> None:
    """It said `[0].: Input should be … instance of ErasureRequest`."""
    with snapshot_unchanged(finished_run):
        outcome = _erase(finished_run, blob)
    assert_contract(outcome, allowed=(2,))
    assert "--request: request.yaml is empty" in outcome.err, outcome.err
    assert "[0]" not in outcome.err


def test_an_empty_request_list_says_the_file_names_no_request(finished_run: Path) -> None:
    for doc in ([], {"requests": None}):
        outcome = _erase(finished_run, yaml_bytes(doc))
        assert_contract(outcome, allowed=(2,))
        assert "--request: request.yaml names no request" in outcome.err, outcome.err


def test_an_unknown_erase_method_names_the_methods_option(finished_run: Path,
                                                          tmp_path: Path) -> None:
    """`erase --methods foo` blamed `unlearning.methods`, a config field the user never set."""
    record = _ids(finished_run, "client-0")[2]
    request = tmp_path / "request.yaml"
    request.write_bytes(yaml_bytes({"id": "r-foo", "kind": "record", "ids": [record]}))
    with snapshot_unchanged(finished_run):
        outcome = run_main("erase", finished_run, "--request", request, "--methods", "foo")
    assert_contract(outcome, allowed=(2,))
    assert "--methods: must be among" in outcome.err and "(got 'foo')" in outcome.err
    assert "unlearning.methods" not in outcome.err
