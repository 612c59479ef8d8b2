"""Tamper evidence: canonical hashing, manifest, Ed25519 signature, verification findings."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from privaudit.core import provenance as pv
from privaudit.core.environment import git_state
from privaudit.core.errors import ConfigError
from privaudit.core.rundir import sha256_file

REPORT = {
    "schema_version": "1.0.0",
    "report_id": "r-1",
    "created_at": "2025-01-01T00:00:00Z",
    "privacy": {"dp": {"enabled": True, "epsilon": 7.93, "delta": 1e-5}},
    "attacks": [{"attack": "lira", "auc": 0.5123, "name": "é ü"}],
}
ADAPTER = "models/global/round-001/adapter.safetensors"


def _flip_byte(path: Path, offset: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return pv.generate_keypair(tmp_path / "keys")


@pytest.fixture
def run(tmp_path: Path, keys: tuple[Path, Path]) -> Path:
    run_dir = tmp_path / "run"
    (run_dir / "models/global/round-001").mkdir(parents=True)
    (run_dir / "data").mkdir()
    (run_dir / "config.yaml").write_text("seed_commitment: abc\n")
    (run_dir / ADAPTER).write_bytes(os.urandom(4096))
    (run_dir / "data/partitions.json").write_text('{"client-0": "sha"}')
    (run_dir / "report.json").write_text(json.dumps(REPORT, indent=2))
    pv.write_manifest(run_dir)
    pv.sign_manifest(run_dir, keys[0])
    return run_dir


def _kinds(result: pv.VerificationResult) -> set[tuple[str, str]]:
    return {(f.path, f.kind) for f in result.findings}


# ---------------------------------------------------------------- canonical hashing


def test_canonical_hash_ignores_whitespace_and_key_order() -> None:
    reordered = json.loads(json.dumps(dict(reversed(list(REPORT.items()))), indent=4))
    assert pv.canonical_sha256(reordered) == pv.canonical_sha256(REPORT)
    assert pv.canonical_json({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'.encode()


def test_canonical_hash_changes_when_any_value_changes() -> None:
    changed = json.loads(json.dumps(REPORT))
    changed["attacks"][0]["auc"] = 0.5124
    assert pv.canonical_sha256(changed) != pv.canonical_sha256(REPORT)


def test_report_hash_ignores_the_embedded_report_sha256_field() -> None:
    with_hash = {**REPORT, "report_sha256": pv.report_content_hash(REPORT)}
    assert pv.report_content_hash(with_hash) == pv.report_content_hash(REPORT)


def test_canonical_json_refuses_nan_instead_of_writing_invalid_json() -> None:
    with pytest.raises(ConfigError, match="canonical JSON"):
        pv.canonical_json({"auc": float("nan")})


# ---------------------------------------------------------------- seed commitment and environment


def test_seed_commitment_hides_the_seed_and_opens_only_with_seed_and_salt() -> None:
    salt = b"s" * 16
    commitment = pv.seed_commitment(1234, salt)
    assert "1234" not in commitment and len(commitment) == 64
    assert pv.verify_seed_commitment(commitment, 1234, salt)
    assert not pv.verify_seed_commitment(commitment, 1235, salt)
    assert pv.seed_commitment(1234, b"t" * 16) != commitment


def test_seed_commitment_refuses_a_salt_too_short_to_hide_a_small_seed() -> None:
    with pytest.raises(ConfigError, match="salt"):
        pv.seed_commitment(7, b"short")


def test_environment_names_versions_and_code_but_not_the_host() -> None:
    env = pv.capture_environment()
    assert {"package_versions", "python", "platform", "git_commit", "git_dirty"} <= env.keys()
    assert env["package_versions"]["cryptography"]
    assert env["git_commit"] is None or len(env["git_commit"]) == 40
    hostname = socket.gethostname()
    if len(hostname) >= 4:
        assert hostname not in json.dumps(env)


def test_git_state_is_none_outside_a_checkout(tmp_path: Path) -> None:
    assert git_state(tmp_path) == (None, None)


# ---------------------------------------------------------------- manifest and keys


def test_manifest_lists_every_file_sorted_with_size_and_hash(run: Path) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    paths = [f["path"] for f in manifest["files"]]
    assert paths == sorted(paths) == ["config.yaml", "data/partitions.json", ADAPTER,
                                      "report.json"]
    adapter = next(f for f in manifest["files"] if f["path"] == ADAPTER)
    assert adapter["bytes"] == 4096 and adapter["sha256"] == sha256_file(run / ADAPTER)
    assert manifest["report_sha256"] == pv.report_content_hash(REPORT)


def test_excluded_cache_is_neither_hashed_nor_reported_as_added(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    (run_dir / "signals").mkdir(parents=True)
    (run_dir / "report.json").write_text("{}")
    (run_dir / "signals/a.npz").write_bytes(b"1")
    pv.write_manifest(run_dir, exclude=["signals"])
    (run_dir / "signals/a.npz").write_bytes(b"2")
    (run_dir / "signals/b.npz").write_bytes(b"3")
    assert pv.verify_run(run_dir).ok


def test_a_failed_manifest_write_keeps_the_previous_manifest(
        run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = (run / "manifest.json").read_bytes()

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)  # the atomic writer (core.rundir) renames
    with pytest.raises(OSError):
        pv.write_manifest(run)
    assert (run / "manifest.json").read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_a_symlink_in_the_run_is_refused(run: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("x")
    (run / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ConfigError, match="link"):
        pv.write_manifest(run)


def test_private_key_is_owner_only_and_never_overwritten(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert private.stat().st_mode & 0o777 == 0o600
    before = private.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        pv.generate_keypair(private.parent)
    assert private.read_bytes() == before and public.exists()


def test_passphrase_protected_key_signs_only_with_its_passphrase(run: Path,
                                                                  tmp_path: Path) -> None:
    private, public = pv.generate_keypair(tmp_path / "locked", passphrase=b"pw")
    with pytest.raises(ConfigError, match="private key"):
        pv.sign_manifest(run, private)
    pv.sign_manifest(run, private, passphrase=b"pw")
    assert pv.verify_run(run, public).ok


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_signature_verifies_with_openssl_as_documented(run: Path, keys: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    envelope = json.loads((run / "manifest.sig").read_text())
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(envelope["signature"]))
    done = subprocess.run(["openssl", "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey",
                           str(keys[1]), "-in", str(run / "manifest.json"), "-sigfile",
                           str(tmp_path / "sig.bin")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- verification


def test_untouched_signed_run_verifies(run: Path, keys: tuple[Path, Path]) -> None:
    result = pv.verify_run(run, keys[1])
    assert result.ok and result.findings == [] and result.warnings == []
    assert result.files_checked == 4
    assert result.signer_fingerprint == pv.public_key_fingerprint(pv.load_public_key(keys[1]))


def test_flipping_one_byte_of_report_json_fails_naming_report_json(
        run: Path, keys: tuple[Path, Path]) -> None:
    text = (run / "report.json").read_text().replace("7.93", "7.94")
    (run / "report.json").write_text(text)
    result = pv.verify_run(run, keys[1])
    assert not result.ok
    assert _kinds(result) == {("report.json", "changed"), ("report.json", "report_hash")}


def test_flipping_one_byte_of_an_adapter_fails_naming_the_adapter(
        run: Path, keys: tuple[Path, Path]) -> None:
    _flip_byte(run / ADAPTER)
    result = pv.verify_run(run, keys[1])
    assert _kinds(result) == {(ADAPTER, "changed")}
    assert ADAPTER in str(result.findings[0])


def test_deleting_a_file_fails_naming_it_missing(run: Path, keys: tuple[Path, Path]) -> None:
    (run / "data/partitions.json").unlink()
    assert _kinds(pv.verify_run(run, keys[1])) == {("data/partitions.json", "missing")}


def test_adding_a_file_fails_naming_it_added(run: Path, keys: tuple[Path, Path]) -> None:
    (run / "models/extra.safetensors").write_bytes(b"x")
    assert _kinds(pv.verify_run(run, keys[1])) == {("models/extra.safetensors", "added")}


def test_swapping_the_public_key_fails_with_wrong_key(run: Path, tmp_path: Path) -> None:
    _, other_public = pv.generate_keypair(tmp_path / "other")
    assert _kinds(pv.verify_run(run, other_public)) == {("manifest.sig", "wrong_key")}


def test_rewriting_the_manifest_to_hide_tampering_breaks_the_signature(
        run: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    _flip_byte(run / ADAPTER)
    pv.write_manifest(run)  # the tamperer recomputes every hash
    assert _kinds(pv.verify_run(run, keys[1])) == {("manifest.json", "signature_invalid")}
    forger_private, _ = pv.generate_keypair(tmp_path / "forger")
    pv.sign_manifest(run, forger_private)  # ... and re-signs with a key of their own
    assert _kinds(pv.verify_run(run, keys[1])) == {("manifest.sig", "wrong_key")}


def test_an_altered_signature_is_invalid(run: Path, keys: tuple[Path, Path]) -> None:
    envelope = json.loads((run / "manifest.sig").read_text())
    signature = bytearray(base64.b64decode(envelope["signature"]))
    signature[0] ^= 0x01
    envelope["signature"] = base64.b64encode(bytes(signature)).decode()
    (run / "manifest.sig").write_text(json.dumps(envelope))
    assert _kinds(pv.verify_run(run, keys[1])) == {("manifest.sig", "signature_invalid")}


def test_every_problem_is_reported_not_just_the_first(run: Path,
                                                      keys: tuple[Path, Path]) -> None:
    _flip_byte(run / ADAPTER)
    (run / "config.yaml").unlink()
    (run / "notes.txt").write_text("added")
    assert _kinds(pv.verify_run(run, keys[1])) == {
        (ADAPTER, "changed"), ("config.yaml", "missing"), ("notes.txt", "added")}


def test_a_public_key_with_an_unsigned_run_reports_the_signature_missing(
        run: Path, keys: tuple[Path, Path]) -> None:
    (run / "manifest.sig").unlink()
    assert _kinds(pv.verify_run(run, keys[1])) == {("manifest.sig", "signature_missing")}


def test_verifying_without_a_key_passes_but_warns_that_the_signer_is_unchecked(
        run: Path) -> None:
    result = pv.verify_run(run)
    assert result.ok and "pass a public key" in result.warnings[0]
    (run / "manifest.sig").unlink()
    result = pv.verify_run(run)
    assert result.ok and "not signed" in result.warnings[0]


def test_reformatting_report_json_changes_its_bytes_but_not_its_content_hash(
        run: Path, keys: tuple[Path, Path]) -> None:
    (run / "report.json").write_text(json.dumps(REPORT, separators=(",", ":")))
    assert _kinds(pv.verify_run(run, keys[1])) == {("report.json", "changed")}


def test_a_run_without_a_manifest_fails_naming_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("{}")
    assert _kinds(pv.verify_run(tmp_path)) == {("manifest.json", "missing")}


def test_a_report_that_states_a_wrong_hash_of_itself_fails(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({**REPORT, "report_sha256": "0" * 64}))
    pv.write_manifest(tmp_path)
    result = pv.verify_run(tmp_path)
    assert _kinds(result) == {("report.json", "report_hash")}
    assert "the report states" in result.findings[0].problem
