"""Tamper evidence for a run: the manifest, its Ed25519 signature, and their verification.

The environment it records is :mod:`privaudit.core.environment`'s; keys are
:mod:`privaudit.core.signing`'s. What is hashed and signed, precisely (so a regulator can
re-check it with other tools):

* **Canonical JSON** (:func:`canonical_json`): ``json.dumps`` with sorted keys, separators
  ``(",", ":")``, ``ensure_ascii=False``, UTF-8, NaN/Infinity refused; floats as Python's
  shortest round-trip ``repr`` (``0.1`` → ``0.1``, ``1.0`` → ``1.0``). Re-serializing a parsed
  report with any whitespace or key order gives the same bytes. (This is not RFC 8785: a
  float that is a whole number keeps its ``.0``.)
* **The report's own hash** (:func:`report_content_hash`): sha256 of the canonical JSON of
  report.json with the top-level field ``report_sha256`` removed if present, so a report may
  carry its own hash.
* **manifest.json** (:func:`write_manifest`)::

      {"schema": 1, "created_at": "...Z", "exclude": [...],
       "files": [{"path": "models/global/round-001/adapter.safetensors",
                  "sha256": "<hex>", "bytes": 123}, ...],          # sorted by path
       "report_sha256": "<hex of report_content_hash(report.json)>" | null}

  It lists every regular file under the run directory except ``manifest.json``,
  ``manifest.sig``, the writers' lock file ``.lock`` (:mod:`privaudit.core.runlock`) and the
  paths named in ``exclude`` (recorded, so verification skips the same paths).
* **manifest.sig** (:func:`sign_manifest`): a JSON envelope::

      {"schema": 1, "algorithm": "Ed25519", "signed_file": "manifest.json",
       "signed_sha256": "<hex of the manifest bytes>",
       "public_key": "<base64 raw 32-byte key>",
       "public_key_fingerprint": "sha256:<hex of the raw 32-byte key>",
       "signed_at": "...Z", "signature": "<base64 64-byte Ed25519 signature>"}

  The signature is over the exact bytes of manifest.json, so it can be checked without
  privaudit: ``base64 -d`` the signature into sig.bin, then
  ``openssl pkeyutl -verify -rawin -pubin -inkey key.pub.pem -in manifest.json
  -sigfile sig.bin``. ``signed_at`` and the rest of the envelope are informative; the
  manifest's own ``created_at`` is what the signature covers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PublicKey,
)

from privaudit.core.commitment import SEED_OPENING, opening_problem
from privaudit.core.commitment import seed_commitment as seed_commitment
from privaudit.core.commitment import verify_seed_commitment as verify_seed_commitment
from privaudit.core.environment import TRACKED_PACKAGES as TRACKED_PACKAGES
from privaudit.core.environment import capture_environment as capture_environment
from privaudit.core.errors import ConfigError, DataError
from privaudit.core.hashing import canonical_json as canonical_json
from privaudit.core.hashing import canonical_sha256 as canonical_sha256
from privaudit.core.hashing import load_report_file as _load_report
from privaudit.core.hashing import report_content_hash as report_content_hash
from privaudit.core.hashing import report_digest as report_digest
from privaudit.core.hashing import report_file_digest as report_file_digest
from privaudit.core.rundir import sha256_file, write_bytes_atomic
from privaudit.core.runlock import LOCK_NAME
from privaudit.core.signing import PRIVATE_KEY_NAME as PRIVATE_KEY_NAME
from privaudit.core.signing import PUBLIC_KEY_NAME as PUBLIC_KEY_NAME
from privaudit.core.signing import generate_keypair as generate_keypair
from privaudit.core.signing import load_private_key, public_key_fingerprint
from privaudit.core.signing import load_public_key as load_public_key

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
REPORT_NAME = "report.json"
MANIFEST_SCHEMA = 1
_RESERVED = frozenset({MANIFEST_NAME, SIGNATURE_NAME, LOCK_NAME})
_CHUNK = 1 << 20

# ---------------------------------------------------------------- manifest


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_excluded(rel: str, exclude: Iterable[str]) -> bool:
    return any(rel == ex or rel.startswith(ex + "/") for ex in exclude)


def _walk(run_dir: Path, exclude: tuple[str, ...]) -> Iterator[tuple[str, Path]]:
    """(posix relative path, path) of every file under ``run_dir`` that the manifest covers."""
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if rel in _RESERVED or _is_excluded(rel, exclude):
            continue
        if path.is_symlink() or (not path.is_file() and not path.is_dir()):
            yield rel, path  # the caller reports it; never hash what a link points to
        elif path.is_file():
            yield rel, path


def _normalise_exclude(exclude: Iterable[str]) -> tuple[str, ...]:
    out = []
    for ex in exclude:
        pure = PurePosixPath(ex)
        if pure.is_absolute() or ".." in pure.parts or str(pure) in ("", "."):
            raise ConfigError(f"exclude entry must be a path inside the run directory; got {ex!r}")
        out.append(str(pure))
    return tuple(sorted(set(out)))


def write_manifest(run_dir: Path | str, *, exclude: Iterable[str] = ()) -> Path:
    """Hash every file of ``run_dir`` into ``manifest.json`` (atomically) and return its path.

    ``exclude`` names run-relative files or folders to leave out (e.g. a cache such as
    ``"signals"``); the list is stored in the manifest. A symlink in the run is refused.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"run directory {root} does not exist")
    excluded = _normalise_exclude(exclude)
    files = []
    for rel, path in _walk(root, excluded):
        if path.is_symlink() or not path.is_file():
            raise ConfigError(f"{root / rel}: not a regular file (symlinks and special "
                              "files cannot be part of a signed run)")
        files.append({"path": rel, "sha256": sha256_file(path), "bytes": path.stat().st_size})
    report_path = root / REPORT_NAME
    report_sha = report_content_hash(_load_report(report_path)) if report_path.is_file() else None
    manifest = {"schema": MANIFEST_SCHEMA, "created_at": _utc_now(), "exclude": list(excluded),
                "files": files, "report_sha256": report_sha}
    out = root / MANIFEST_NAME
    write_bytes_atomic(out, (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False)
                        + "\n").encode("utf-8"))
    return out


# ---------------------------------------------------------------- keys and signatures


def sign_manifest(run_dir: Path | str, private_key_path: Path | str, *,
                  passphrase: bytes | None = None) -> Path:
    """Sign the exact bytes of ``manifest.json``; write the envelope to ``manifest.sig``."""
    root = Path(run_dir)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ConfigError(f"{manifest_path} does not exist; write the manifest before signing")
    key = load_private_key(private_key_path, passphrase=passphrase)
    data = manifest_path.read_bytes()
    public = key.public_key()
    envelope = {
        "schema": MANIFEST_SCHEMA,
        "algorithm": "Ed25519",
        "signed_file": MANIFEST_NAME,
        "signed_sha256": hashlib.sha256(data).hexdigest(),
        "public_key": base64.b64encode(public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode("ascii"),
        "public_key_fingerprint": public_key_fingerprint(public),
        "signed_at": _utc_now(),
        "signature": base64.b64encode(key.sign(data)).decode("ascii"),
    }
    out = root / SIGNATURE_NAME
    write_bytes_atomic(out, (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return out


# ---------------------------------------------------------------- verification

SEED_OPENING_PATH = "/".join(SEED_OPENING)
FindingKind = Literal["changed", "missing", "added", "report_hash", "artifact", "unreadable",
                      "signature_missing", "signature_invalid", "wrong_key", "seed_commitment"]


@dataclass(frozen=True)
class Finding:
    """One problem found by :func:`verify_run`; ``path`` is relative to the run directory."""

    path: str
    kind: FindingKind
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass(frozen=True)
class VerificationResult:
    """Every finding of one verification; ``ok`` only when there is none.

    ``signer_fingerprint``/``signed_at`` come from a signature that verified. ``warnings``
    name weakened guarantees (an unsigned run, a signature checked without a trusted key).
    """

    findings: list[Finding]
    files_checked: int
    signer_fingerprint: str | None = None
    signed_at: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _check_files(root: Path, manifest: dict[str, Any], findings: list[Finding]) -> int:
    entries = manifest.get("files")
    exclude = manifest.get("exclude", [])
    if not isinstance(entries, list) or not isinstance(exclude, list):
        findings.append(Finding(MANIFEST_NAME, "unreadable", "malformed: 'files' and "
                                "'exclude' must be lists"))
        return 0
    listed: set[str] = set()
    for entry in entries:
        rel = entry.get("path") if isinstance(entry, dict) else None
        expected = entry.get("sha256") if isinstance(entry, dict) else None
        pure = PurePosixPath(rel) if isinstance(rel, str) else None
        if (pure is None or pure.is_absolute() or ".." in pure.parts
                or not isinstance(expected, str)):
            findings.append(Finding(MANIFEST_NAME, "unreadable", f"malformed entry {entry!r}"))
            continue
        listed.add(str(pure))
        path = root / pure
        if path.is_symlink() or not path.is_file():
            findings.append(Finding(str(pure), "missing", "missing: listed in the manifest "
                                    "but not a regular file in the run"))
            continue
        actual = sha256_file(path)
        if not hmac.compare_digest(actual, expected):
            findings.append(Finding(str(pure), "changed", f"changed: sha256 is {actual}, "
                                    f"the manifest says {expected}"))
    for rel, _ in _walk(root, tuple(str(e) for e in exclude)):
        if rel not in listed:
            findings.append(Finding(rel, "added", "added: present in the run but not in "
                                    "the manifest"))
    return len(listed)


def _check_artifacts(root: Path, report: dict[str, Any], findings: list[Finding]) -> None:
    """Every file of the report's own ``artifacts[]`` is in the run with that sha256: a file
    swapped and the run re-sealed around it still differs from what the report describes."""
    artifacts = report.get("artifacts")
    for entry in artifacts if isinstance(artifacts, list) else []:
        rel = entry.get("path") if isinstance(entry, dict) else None
        expected = entry.get("sha256") if isinstance(entry, dict) else None
        pure = PurePosixPath(rel) if isinstance(rel, str) else None
        if (pure is None or pure.is_absolute() or ".." in pure.parts
                or not isinstance(expected, str)):
            findings.append(Finding(REPORT_NAME, "artifact", f"malformed artifacts[] entry "
                                    f"{entry!r}"))
            continue
        path = root / pure
        if path.is_symlink() or not path.is_file():
            findings.append(Finding(str(pure), "artifact", "missing: report.json artifacts[] "
                                    "lists it but it is not a regular file in the run"))
        elif not hmac.compare_digest(actual := sha256_file(path), expected):
            findings.append(Finding(str(pure), "artifact", f"differs from the report: sha256 "
                                    f"is {actual}, report.json artifacts[] says {expected}"))


def _check_report(root: Path, manifest: dict[str, Any] | None,
                  findings: list[Finding]) -> None:
    expected = manifest.get("report_sha256") if manifest is not None else None
    report_path = root / REPORT_NAME
    if not report_path.is_file() or (manifest is not None and expected is None):
        return  # a missing report.json is already a "missing" finding
    try:
        report = _load_report(report_path)
    except DataError as exc:
        findings.append(Finding(REPORT_NAME, "report_hash", f"report hash not checkable: {exc}"))
        return
    _check_artifacts(root, report, findings)
    actual = report_content_hash(report)
    if expected is not None and actual != expected:
        findings.append(Finding(REPORT_NAME, "report_hash", f"report hash mismatch: canonical "
                                f"sha256 is {actual}, the manifest says {expected}"))
    embedded = report.get("report_sha256")
    if embedded is not None and embedded != actual:
        findings.append(Finding(REPORT_NAME, "report_hash", f"report hash mismatch: the report "
                                f"states {embedded}, its content hashes to {actual}"))
    run = report.get("run")
    commitment = run.get("seed_commitment") if isinstance(run, dict) else None
    problem = opening_problem(root, commitment) if isinstance(commitment, str) else None
    if problem is not None:
        findings.append(Finding(SEED_OPENING_PATH, "seed_commitment", problem))


def _read_envelope(sig_path: Path) -> tuple[dict[str, Any], Ed25519PublicKey, bytes]:
    envelope = json.loads(sig_path.read_text(encoding="utf-8"))
    if not isinstance(envelope, dict) or envelope.get("algorithm") != "Ed25519":
        raise ValueError("not an Ed25519 signature envelope")
    embedded = Ed25519PublicKey.from_public_bytes(
        base64.b64decode(envelope["public_key"], validate=True))
    return envelope, embedded, base64.b64decode(envelope["signature"], validate=True)


def verify_run(run_dir: Path | str,
               public_key_path: Path | str | None = None) -> VerificationResult:
    """Recompute every hash of the manifest, the report's own hash, the sha256 of each file in
    the report's ``artifacts[]`` and the signature.

    Collects every problem as a :class:`Finding` and never raises for a mismatch; it raises
    :class:`ConfigError` only for bad input (no such run directory, unreadable key file).
    Without ``public_key_path`` the signature is checked against the key it carries, which
    proves integrity but not who signed — the result then carries a warning.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"run directory {root} does not exist")
    trusted = load_public_key(public_key_path) if public_key_path is not None else None
    findings: list[Finding] = []
    warnings: list[str] = []
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        findings.append(Finding(MANIFEST_NAME, "missing", "missing: the run has no manifest"))
        _check_report(root, None, findings)  # the report's own hash and artifacts[]
        return VerificationResult(findings, 0)
    manifest_bytes = manifest_path.read_bytes()
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        manifest = None
        findings.append(Finding(MANIFEST_NAME, "unreadable", f"unreadable: {exc}"))
    checked = 0
    if manifest is not None:
        checked = _check_files(root, manifest, findings)
        _check_report(root, manifest, findings)

    signer = signed_at = None
    sig_path = root / SIGNATURE_NAME
    if not sig_path.is_file():
        if trusted is not None:
            findings.append(Finding(SIGNATURE_NAME, "signature_missing", "missing: a public "
                                    "key was given but the run is not signed"))
        else:
            warnings.append("the run is not signed: its hashes prove integrity only against "
                            "accidents, not against someone who rewrites the manifest")
        return VerificationResult(findings, checked, warnings=warnings)
    try:
        envelope, embedded, signature = _read_envelope(sig_path)
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        findings.append(Finding(SIGNATURE_NAME, "unreadable", f"unreadable signature: {exc}"))
        return VerificationResult(findings, checked, warnings=warnings)
    key = trusted if trusted is not None else embedded
    if trusted is not None and public_key_fingerprint(trusted) != public_key_fingerprint(embedded):
        findings.append(Finding(SIGNATURE_NAME, "wrong_key", "wrong public key: signed by "
                                f"{public_key_fingerprint(embedded)}, the given key is "
                                f"{public_key_fingerprint(trusted)}"))
        return VerificationResult(findings, checked, warnings=warnings)
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        changed = envelope.get("signed_sha256") != hashlib.sha256(manifest_bytes).hexdigest()
        findings.append(Finding(MANIFEST_NAME if changed else SIGNATURE_NAME,
                                "signature_invalid",
                                "signature invalid: manifest.json changed after signing"
                                if changed else "signature invalid: the signature was altered"))
        return VerificationResult(findings, checked, warnings=warnings)
    signer, signed_at = public_key_fingerprint(key), envelope.get("signed_at")
    if trusted is None:
        warnings.append(f"signature checked against the key inside {SIGNATURE_NAME} "
                        f"({signer}); pass a public key to check who signed")
    return VerificationResult(findings, checked, signer, signed_at, warnings)
