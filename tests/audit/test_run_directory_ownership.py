"""The run directory is owned, locked and never mixed (issue #17, part 3): one writer at a
time, only a new/empty directory or a run of the same config with --resume, no re-sealing of an
altered run, Ctrl-C says what was kept, and summary.md never passes HTML through."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.core.progress import PlainReporter
from privaudit.core.provenance import sign_manifest, write_manifest
from privaudit.core.runlock import LOCK_NAME
from privaudit.mechanisms.federated import engine
from privaudit.reports.markdown import render_summary
from privaudit.reports.verdict import finalize_report
from tests.conftest import TINY, merge
from tests.reports.cli_helpers import run_cli
from tests.reports.samples import sample_report, write_sample_run

ADAPTER = "models/global/round-001/adapter.safetensors"
HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, f"{os.getpid()}\\n".encode(), 0)
print("held", flush=True)
time.sleep(120)
"""


def _config(tmp_path: Path, raw: dict[str, Any], name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _lock_is_free(root: Path) -> bool:
    fd = os.open(root / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run (TINY), never modified: tests work on copies."""
    out = tmp_path_factory.mktemp("owned") / "run"
    run_audit(config_from_dict(TINY), out, reporter=PlainReporter(quiet=True))
    return out


@pytest.fixture
def run_copy(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str],
         monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    assert run_cli(capsys, monkeypatch, "keygen", "--out", tmp_path / "keys").code == 0
    return (tmp_path / "keys" / "privaudit-ed25519.pem",
            tmp_path / "keys" / "privaudit-ed25519.pub.pem")


# ---------------------------------------------------------------- one writer at a time


def test_a_second_writer_on_the_same_run_directory_exits_2_naming_the_holders_pid(
        tmp_path: Path, tiny_config_dict: dict[str, Any], keys: tuple[Path, Path],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out / LOCK_NAME)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = run_cli(capsys, monkeypatch, "run", _config(tmp_path, tiny_config_dict),
                         "--out", out)
        assert result.code == 2, result.text
        assert f"--out: {out} is in use by another privaudit process (pid {holder.pid}" \
            in result.err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
        # the commands that rewrite a finished run are refused the same way
        sample = write_sample_run(tmp_path / "sample", sign_key=keys[0])
        shutil.copy(out / LOCK_NAME, sample / LOCK_NAME)  # not a lock: only flock counts
        assert run_cli(capsys, monkeypatch, "report", sample, "--sign", keys[0]).code == 0
    finally:
        holder.kill()
        holder.wait()
    assert _lock_is_free(out)  # released by the holder's exit, however it exits


def test_report_and_erase_refuse_a_run_another_process_is_writing(
        tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from privaudit.core.runlock import run_dir_lock

    sample = write_sample_run(tmp_path / "sample", sign_key=keys[0])
    before = _files(sample)
    with run_dir_lock(sample, option="--out"):
        report = run_cli(capsys, monkeypatch, "report", sample, "--sign", keys[0])
        erase = run_cli(capsys, monkeypatch, "erase", sample, "--request", tmp_path / "r.yaml")
    for result in (report, erase):
        assert result.code == 2, result.text
        assert f"RUN: {sample} is in use by another privaudit process (pid {os.getpid()}" \
            in result.err
    assert {k: v for k, v in _files(sample).items() if k != LOCK_NAME} == {
        k: v for k, v in before.items() if k != LOCK_NAME}


def test_the_lock_file_is_never_sealed_and_is_released_when_the_run_ends(
        finished: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = json.loads((finished / "manifest.json").read_text())
    assert (finished / LOCK_NAME).is_file()
    assert LOCK_NAME not in {f["path"] for f in manifest["files"]}
    report = json.loads((finished / "report.json").read_text())
    assert LOCK_NAME not in {a["path"] for a in report["artifacts"]}
    assert _lock_is_free(finished) and (finished / LOCK_NAME).read_text() == ""
    assert run_cli(capsys, monkeypatch, "verify", finished).code == 0


# ---------------------------------------------------------------- which directory a run takes


def test_resume_with_another_config_reuses_the_stages_whose_own_inputs_are_unchanged(
        run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A config changed only in its attack settings keeps the training; one changed in the
    federation retrains, naming the section that changed (#26)."""
    trained = json.loads((run_copy / "stages" / "train.json").read_text())
    attacks_only = _config(tmp_path, merge(TINY, {"attacks": {"bootstrap": 60}}))
    result = run_cli(capsys, monkeypatch, "run", attacks_only, "--out", run_copy, "--resume")
    assert result.code in (0, 1), result.text
    assert "this config differs from the run's in 1 key(s) (attacks.bootstrap: 50 -> 60)" \
        in result.text
    assert "[train] resumed" in result.text and "[train] recomputed" not in result.text
    assert json.loads((run_copy / "stages" / "train.json").read_text()) == trained
    more_rounds = _config(tmp_path, merge(TINY, {"attacks": {"bootstrap": 60},
                                                 "federation": {"rounds": 3}}), "more.yaml")
    result = run_cli(capsys, monkeypatch, "run", more_rounds, "--out", run_copy, "--resume")
    assert result.code in (0, 1), result.text
    assert "[train] recomputed: the config changed in federation" in result.text
    assert (run_copy / "models" / "global" / "round-003").is_dir()
    assert run_cli(capsys, monkeypatch, "verify", run_copy).code == 0


def test_a_new_run_into_an_old_run_directory_exits_2_and_keeps_it_intact(
        run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    stale = run_copy / "signals" / "stale.npz"  # a cache the new run did not write
    stale.write_bytes(b"old")
    before = _files(run_copy)
    same = _config(tmp_path, TINY)
    result = run_cli(capsys, monkeypatch, "run", same, "--out", run_copy)
    assert result.code == 2, result.text
    assert "already holds a run of this config; pass --resume to continue it" in result.err
    other = _config(tmp_path, merge(TINY, {"seed": 9}), "other.yaml")
    result = run_cli(capsys, monkeypatch, "run", other, "--out", run_copy)
    assert result.code == 2 and "holds a run of another config" in result.err
    assert "seed: 3 -> 9" in result.err
    assert _files(run_copy) == before


def test_a_fresh_run_seals_only_files_it_wrote(finished: Path) -> None:
    manifest = json.loads((finished / "manifest.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    assert listed == {p.relative_to(finished).as_posix() for p in finished.rglob("*")
                      if p.is_file() and p.name not in (LOCK_NAME, "manifest.json")}
    assert not [p for p in listed if p.startswith("signals/") and "stale" in p]


def test_a_non_empty_directory_that_is_not_a_run_is_never_adopted(
        tmp_path: Path, tiny_config_dict: dict[str, Any], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "people.jsonl").write_text('{"id": "p1", "text": "Jane Roe, 1 Elm St"}\n')
    config = _config(tmp_path, tiny_config_dict)
    for extra in ([], ["--resume"]):
        result = run_cli(capsys, monkeypatch, "run", config, "--out", data, *extra)
        assert result.code == 2, result.text
        assert f"--out: {data} is not empty and is not a privaudit run directory (it holds " \
            "people.jsonl)" in result.err
        assert "give a new or empty --out" in result.err
    assert sorted(p.name for p in data.iterdir()) == ["people.jsonl"]  # no lock file left


def test_an_out_holding_the_users_own_config_yaml_is_refused_and_the_file_kept(
        tmp_path: Path, tiny_config_dict: dict[str, Any], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    text = "# my audit, with my comments\n" + yaml.safe_dump(tiny_config_dict)
    (mine / "config.yaml").write_text(text)
    for extra in ([], ["--resume"]):
        result = run_cli(capsys, monkeypatch, "run", mine / "config.yaml", "--out", mine,
                         *extra)
        assert result.code == 2, result.text
        assert "is not a privaudit run directory (it holds config.yaml)" in result.err
    assert (mine / "config.yaml").read_text() == text
    assert sorted(p.name for p in mine.iterdir()) == ["config.yaml"]


def test_an_empty_directory_is_accepted_and_resume_of_the_same_config_continues(
        run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(capsys, monkeypatch, "run", _config(tmp_path, TINY), "--out", run_copy,
                     "--resume")
    assert result.code == 0, result.text
    assert "[train] resumed: checkpoints and manifest unchanged" in result.text
    assert run_cli(capsys, monkeypatch, "verify", run_copy).code == 0


# ---------------------------------------------------------------- no re-sealing of an altered run


def _flip(path: Path, offset: int = 40) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_report_sign_refuses_to_reseal_a_run_whose_model_was_altered_exit_1_naming_it(
        tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = write_sample_run(tmp_path / "run", sign_key=keys[0])
    _flip(run / ADAPTER)
    result = run_cli(capsys, monkeypatch, "report", run, "--sign", keys[0])
    assert result.code == 1, result.text
    assert f"report: {run} does not match its seal, so it is not re-sealed: {ADAPTER}: " \
        "changed" in result.err
    verify = run_cli(capsys, monkeypatch, "verify", run, "--public-key", keys[1])
    assert verify.code == 1 and f"FAILED {ADAPTER}: changed" in verify.err


def test_rerendering_an_intact_run_still_redraws_a_deleted_rendering(
        tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = write_sample_run(tmp_path / "run", sign_key=keys[0])
    (run / "summary.md").unlink()  # regenerated from the verified report.json
    result = run_cli(capsys, monkeypatch, "report", run, "--format", "html,md", "--sign", keys[0])
    assert result.code == 0, result.text
    assert run_cli(capsys, monkeypatch, "verify", run, "--public-key", keys[1]).code == 0


def test_erase_refuses_a_run_whose_model_was_altered_exit_1_naming_it(
        run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _flip(run_copy / ADAPTER)
    request = tmp_path / "request.yaml"
    request.write_text("id: late\nkind: record\nids: [r000-0]\n")
    result = run_cli(capsys, monkeypatch, "erase", run_copy, "--request", request)
    assert result.code == 1, result.text
    assert f"erase: {run_copy} does not match its seal" in result.err
    assert f"{ADAPTER}: changed" in result.err
    assert not (run_copy / "unlearning").exists()


def test_verify_checks_files_against_the_reports_own_artifacts(
        tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = write_sample_run(tmp_path / "run", sign_key=keys[0])
    _flip(run / ADAPTER)
    write_manifest(run)  # re-sealed and re-signed around the swapped model
    sign_manifest(run, keys[0])
    result = run_cli(capsys, monkeypatch, "verify", run, "--public-key", keys[1])
    assert result.code == 1, result.text
    assert f"FAILED {ADAPTER}: differs from the report: sha256 is" in result.err
    assert "report.json artifacts[] says" in result.err


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_exits_130_saying_what_was_kept_and_that_resume_continues(
        tmp_path: Path, tiny_config_dict: dict[str, Any], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine.evaluate_utility
    calls = {"n": 0}

    def ctrl_c_in_round_2(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(engine, "evaluate_utility", ctrl_c_in_round_2)
    out = tmp_path / "out"
    result = run_cli(capsys, monkeypatch, "run", _config(tmp_path, tiny_config_dict),
                     "--out", out)
    assert result.code == 130, result.text
    [line] = [x for x in result.err.splitlines() if x.startswith("interrupted")]
    assert line == (f"interrupted: {out} keeps training up to round 1; run the same command "
                    "with --resume to continue")
    assert "Traceback" not in result.err
    assert _lock_is_free(out)  # released on the way out


# ---------------------------------------------------------------- summary.md


def test_summary_md_escapes_html_in_the_config_name_and_report_title() -> None:
    report = finalize_report(sample_report())
    doc = report.model_dump(mode="json")
    doc["title"] = "<script>alert(1)</script> audit"
    doc["run"]["name"] = "x`<img src=x onerror=alert(2)>`*"
    md = render_summary(doc)
    assert "<script>" not in md and "<img" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt; audit" in md.splitlines()[0]
    assert "Run x\\`&lt;img src=x onerror=alert(2)&gt;\\`\\*" in md
