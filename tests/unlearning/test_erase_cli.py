"""``privaudit erase RUN --request REQUEST.yaml`` (and ``--request-stream``) on a finished run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from privaudit.audit.cli import main
from privaudit.core.errors import EXIT_USAGE
from privaudit.core.rundir import RunDir
from privaudit.reports.schema import Report
from privaudit.unlearning.ledger import erased_so_far, read_ledger
from tests.unlearning.conftest import ErasedRun


@pytest.fixture
def run_copy(erased_run: ErasedRun, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(erased_run.run_dir, target)
    return target


def _request(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "request.yaml"
    path.write_text(text)
    return path


def test_erase_adds_models_results_and_rewrites_the_report(
    erased_run: ErasedRun, run_copy: Path, tmp_path: Path
) -> None:
    gone = set(erased_so_far(read_ledger(RunDir(run_copy))))
    subject = next(r.subject_id for r in erased_run.data.clients["client-1"]
                   if r.id not in gone)
    request = _request(tmp_path, f"id: late-1\nkind: subject\nids: [{subject}]\n"
                                 "received_at: 2025-03-01T10:00:00Z\n")
    before = Report.from_file(run_copy / "report.json")
    code = main(["erase", str(run_copy), "--request", str(request),
                 "--methods", "gradient_ascent,finetune_retain"])
    assert code == 0
    after = Report.from_file(run_copy / "report.json")
    new = after.unlearning[len(before.unlearning):]
    assert [r.model_dump() for r in after.unlearning[: len(before.unlearning)]] == [
        r.model_dump() for r in before.unlearning]
    assert [(r.request_id, r.method) for r in new] == [
        ("late-1", "oracle"), ("late-1", "gradient_ascent"), ("late-1", "finetune_retain")]
    assert new[0].received_at is not None and new[0].received_at.startswith("2025-03-01")
    for r in new:
        assert (run_copy / r.model_path).is_file()
    # the chained method started from its own model for the previous request
    previous = next(r for r in before.unlearning
                    if r.request_id == "rec" and r.method == "gradient_ascent")
    assert new[1].model_sha256_before == previous.model_sha256_after
    ledger = read_ledger(RunDir(run_copy))
    assert [r["id"] for r in ledger["requests"]] == ["cli", "subj", "rec", "late-1"]
    lineage = json.loads((run_copy / "unlearning/late-1/lineage.json").read_text())
    assert all(e["erased_records_trained_on"] == 0 for e in lineage["produced_after_request"])
    manifest = (run_copy / "manifest.json").read_text()
    assert "models/gradient_ascent/late-1/adapter.safetensors" in manifest
    assert after.run.seconds["erase"] > before.run.seconds["erase"]
    # every model the request produced is attacked too, next to the models before it
    attacked = {a.model for a in after.attacks}
    assert {"oracle/late-1", "gradient_ascent/late-1", "finetune_retain/late-1"} <= attacked
    assert {a.model for a in before.attacks} <= attacked
    assert after.run.seconds["attack"] > before.run.seconds["attack"]


def test_resume_after_erase_keeps_the_served_request(
    erased_run: ErasedRun, run_copy: Path, tmp_path: Path
) -> None:
    gone = set(erased_so_far(read_ledger(RunDir(run_copy))))
    record = next(r.id for r in erased_run.data.clients["client-0"] if r.id not in gone)
    request = _request(tmp_path, f"id: late-2\nkind: record\nids: [{record}]\n")
    assert main(["erase", str(run_copy), "--request", str(request),
                 "--methods", "gradient_ascent"]) == 0
    config = tmp_path / "config.yaml"
    shutil.copy(run_copy / "config.yaml", config)
    assert main(["run", str(config), "--out", str(run_copy), "--resume"]) == 0
    after = Report.from_file(run_copy / "report.json")
    assert ("late-2", "gradient_ascent") in {(r.request_id, r.method) for r in after.unlearning}
    assert [r["id"] for r in read_ledger(RunDir(run_copy))["requests"]][-1] == "late-2"


def test_erase_refuses_audit_nonmembers_naming_them(
    erased_run: ErasedRun, run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outsider = erased_run.data.nonmembers[0].id
    request = _request(tmp_path, f"id: bad\nkind: record\nids: [{outsider}, nope-7]\n")
    report = (run_copy / "report.json").read_bytes()
    assert main(["erase", str(run_copy), "--request", str(request)]) == EXIT_USAGE
    err = " ".join(capsys.readouterr().err.split())
    assert "audit non-members" in err and outsider in err and "nope-7" in err
    assert (run_copy / "report.json").read_bytes() == report
    assert not (run_copy / "models/oracle/bad").exists()


def test_erase_refuses_records_already_erased(
    erased_run: ErasedRun, run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = erased_run.requests["rec"][0]
    request = _request(tmp_path, f"id: again\nkind: record\nids: [{record}]\n")
    assert main(["erase", str(run_copy), "--request", str(request)]) == EXIT_USAGE
    assert "already erased by request(s) ['rec']" in " ".join(capsys.readouterr().err.split())


def test_erase_refuses_sisa_on_a_run_without_sisa_shards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a run trained without SISA (editing the ledger of a SISA run no longer works: erase
    # refuses a run that does not match its seal before it reads the ledger)
    from privaudit.audit.config import config_from_dict
    from privaudit.audit.pipeline import run_audit
    from privaudit.core.progress import PlainReporter
    from tests.conftest import TINY

    plain = run_audit(config_from_dict(TINY), tmp_path / "plain",
                      reporter=PlainReporter(quiet=True)).run_dir
    request = _request(tmp_path, "id: s\nkind: client\nids: [client-1]\n")
    assert main(["erase", str(plain), "--request", str(request), "--methods", "sisa"]) == 2
    assert "SISA mode" in " ".join(capsys.readouterr().err.split())


def test_erase_refuses_a_directory_that_is_not_a_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = _request(tmp_path, "id: s\nkind: client\nids: [client-1]\n")
    assert main(["erase", str(tmp_path / "nothing"), "--request", str(request)]) == EXIT_USAGE
    assert "not a finished run" in " ".join(capsys.readouterr().err.split())


def _stream(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_request_stream_is_served_in_order_each_on_the_model_before(
    erased_run: ErasedRun, run_copy: Path, tmp_path: Path
) -> None:
    gone = set(erased_so_far(read_ledger(RunDir(run_copy))))
    free = [r.id for r in erased_run.data.clients["client-0"] if r.id not in gone][:2]
    stream = _stream(tmp_path, [json.dumps({"id": f"s-{i}", "kind": "record", "ids": [rid]})
                                for i, rid in enumerate(free)])
    before = Report.from_file(run_copy / "report.json")
    assert main(["erase", str(run_copy), "--request-stream", str(stream),
                 "--methods", "gradient_ascent"]) == 0
    after = Report.from_file(run_copy / "report.json")
    new = [r for r in after.unlearning[len(before.unlearning):] if r.method == "gradient_ascent"]
    assert [r.request_id for r in new] == ["s-0", "s-1"]
    served = len(read_ledger(RunDir(run_copy))["requests"]) - 2  # the run's own, served first
    points = [r.sequence for r in new]
    assert all(p is not None for p in points)
    assert [p.position for p in points if p] == [served + 1, served + 2]
    # each request starts from the model the one before produced
    assert new[1].model_sha256_before == new[0].model_sha256_after
    seconds = [p.cumulative_seconds for p in points if p]
    assert seconds == sorted(seconds) and seconds[1] >= sum(r.seconds for r in new) - 1e-9
    # the records every earlier request erased, attacked under each new model and its oracle
    erased_before = [len(gone) + i for i in range(2)]
    assert [p.earlier_records for p in points if p] == erased_before
    assert all(p.earlier_auc is not None and p.earlier_auc_oracle is not None
               and p.worst_request is not None for p in points if p)


def test_a_malformed_stream_line_is_named_and_nothing_is_served(
    run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = _stream(tmp_path, ['{"id": "a", "kind": "record", "ids": ["x"]}',
                                '{"id": "b", "kind": "planet", "ids": ["y"]}'])
    report = (run_copy / "report.json").read_bytes()
    assert main(["erase", str(run_copy), "--request-stream", str(stream)]) == EXIT_USAGE
    err = " ".join(capsys.readouterr().err.split())
    assert "requests.jsonl:2: kind" in err and "planet" in err, err
    assert (run_copy / "report.json").read_bytes() == report


def test_erase_needs_exactly_one_of_request_and_request_stream(
    run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = _request(tmp_path, "id: x\nkind: record\nids: [r]\n")
    stream = _stream(tmp_path, ['{"id": "y", "kind": "record", "ids": ["r"]}'])
    for args in ([], ["--request", str(request), "--request-stream", str(stream)]):
        assert main(["erase", str(run_copy), *args]) == EXIT_USAGE
        err = " ".join(capsys.readouterr().err.split())
        assert "exactly one of --request" in err and "--request-stream" in err, err
