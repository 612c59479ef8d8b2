"""`privaudit keygen / verify / report` on a sealed run: tampering is caught and named (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reports.cli_helpers import CliResult, run_cli
from tests.reports.samples import write_sample_run

ADAPTER = "models/global/round-001/adapter.safetensors"


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str],
         monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    result = run_cli(capsys, monkeypatch, "keygen", "--out", tmp_path / "keys")
    assert result.code == 0, result.text
    assert "fingerprint: sha256:" in result.out
    folder = tmp_path / "keys"
    return folder / "privaudit-ed25519.pem", folder / "privaudit-ed25519.pub.pem"


@pytest.fixture
def run(tmp_path: Path, keys: tuple[Path, Path]) -> Path:
    return write_sample_run(tmp_path / "run", sign_key=keys[0])


def _verify(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, run: Path,
            public: Path) -> CliResult:
    return run_cli(capsys, monkeypatch, "verify", run, "--public-key", public)


def _flip(path: Path, offset: int = 40) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_untouched_signed_run_verifies_with_exit_0(
        run: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    result = _verify(capsys, monkeypatch, run, keys[1])
    assert result.code == 0, result.text
    assert "report hash matches" in result.out and "signature by sha256:" in result.out


def test_flipping_a_byte_of_report_json_fails_naming_report_json(
        run: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    text = (run / "report.json").read_text()
    (run / "report.json").write_text(text.replace('"value": 0.71', '"value": 0.91', 1))
    result = _verify(capsys, monkeypatch, run, keys[1])
    assert result.code == 1
    assert "FAILED report.json: changed" in result.err
    assert "report.json: report hash mismatch" in result.err


def test_flipping_a_byte_of_an_adapter_fails_naming_the_adapter(
        run: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _flip(run / ADAPTER)
    result = _verify(capsys, monkeypatch, run, keys[1])
    assert result.code == 1
    assert f"FAILED {ADAPTER}: changed" in result.err


def test_deleting_a_file_fails_naming_it_missing(
        run: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (run / "summary.md").unlink()
    result = _verify(capsys, monkeypatch, run, keys[1])
    assert result.code == 1 and "FAILED summary.md: missing" in result.err


def test_adding_a_file_fails_naming_it_added(
        run: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (run / "models" / "extra.bin").write_bytes(b"\0")
    result = _verify(capsys, monkeypatch, run, keys[1])
    assert result.code == 1 and "FAILED models/extra.bin: added" in result.err


def test_swapping_the_public_key_fails_with_wrong_key(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli(capsys, monkeypatch, "keygen", "--out", tmp_path / "other").code == 0
    result = _verify(capsys, monkeypatch, run, tmp_path / "other" / "privaudit-ed25519.pub.pem")
    assert result.code == 1 and "FAILED manifest.sig: wrong public key" in result.err


def test_rewriting_the_manifest_to_hide_a_change_breaks_the_signature(
        run: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from privaudit.core.provenance import write_manifest

    _flip(run / ADAPTER)
    write_manifest(run)
    result = _verify(capsys, monkeypatch, run, keys[1])
    assert result.code == 1 and "manifest.json changed after signing" in result.err


def test_keygen_never_overwrites_a_key(keys: tuple[Path, Path],
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(capsys, monkeypatch, "keygen", "--out", keys[0].parent)
    assert result.code == 2 and "refusing to overwrite" in result.err


def test_rerendering_a_signed_run_in_place_needs_the_key(
        run: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    refused = run_cli(capsys, monkeypatch, "report", run, "--format", "html")
    assert refused.code == 2 and "--sign KEY" in refused.err
    resigned = run_cli(capsys, monkeypatch, "report", run, "--format", "html,md",
                       "--sign", keys[0])
    assert resigned.code == 0, resigned.text
    assert _verify(capsys, monkeypatch, run, keys[1]).code == 0


def test_rendering_elsewhere_leaves_the_signed_run_untouched(
        run: Path, keys: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(capsys, monkeypatch, "report", run, "--format", "md",
                     "--out", tmp_path / "copy")
    assert result.code == 0, result.text
    assert "Signed: Ed25519 key `sha256:" in (tmp_path / "copy" / "summary.md").read_text()
    assert _verify(capsys, monkeypatch, run, keys[1]).code == 0


def test_an_unknown_format_is_a_usage_error(run: Path, keys: tuple[Path, Path],
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(capsys, monkeypatch, "report", run, "--format", "docx",
                     "--sign", keys[0])
    assert result.code == 2 and "docx" in result.err


def test_verify_without_a_key_warns_that_the_signer_is_unchecked(
        run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(capsys, monkeypatch, "verify", run)
    assert result.code == 0 and "pass a public key" in result.err
    assert json.loads((run / "manifest.sig").read_text())["algorithm"] == "Ed25519"
