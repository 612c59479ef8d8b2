"""Hashing with one meaning per name: canonical JSON, the report's digests, digests of ids.

* :func:`canonical_json` / :func:`canonical_sha256`: ``json.dumps`` with sorted keys,
  separators ``(",", ":")``, ``ensure_ascii=False``, UTF-8, NaN/Infinity refused.
* :func:`report_content_hash`: the report's own hash (``report_sha256``, the manifest's).
* :func:`report_digest`: what a run found, not when, where or how fast it ran.
* :func:`ordered_ids_sha256` (a sequence: order matters) and :func:`set_ids_sha256` (a set:
  the same ids in any order give the same digest). They are different functions because they
  mean different things: an ordered split versus the set of ids a model was trained on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from privaudit.core.errors import ConfigError, DataError


def ordered_ids_sha256(ids: Sequence[str]) -> str:
    """Hex sha256 of the ids joined by newlines, in the order given.

    >>> ordered_ids_sha256(["a", "b"]) != ordered_ids_sha256(["b", "a"])
    True
    """
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def set_ids_sha256(ids: Iterable[str]) -> str:
    """Hex sha256 of the ids sorted, then joined by newlines: the digest of a set of ids.

    >>> set_ids_sha256(["b", "a"]) == set_ids_sha256(["a", "b"]) == ordered_ids_sha256(["a", "b"])
    True
    """
    return ordered_ids_sha256(sorted(ids))


def canonical_json(obj: Any) -> bytes:
    """The canonical UTF-8 JSON bytes of ``obj`` (see the module docstring).

    >>> canonical_json({"b": [1, 2.5], "a": "é"}).decode()
    '{"a":"é","b":[1,2.5]}'
    """
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"value cannot be written as canonical JSON: {exc}") from exc
    return text.encode("utf-8")


def canonical_sha256(obj: Any) -> str:
    """Hex sha256 of :func:`canonical_json`.

    >>> canonical_sha256({"a": 1}) == canonical_sha256(json.loads('{ "a" : 1 }'))
    True
    """
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def report_content_hash(report: dict[str, Any]) -> str:
    """The report's own hash: canonical sha256 without the top-level ``report_sha256``."""
    return canonical_sha256({k: v for k, v in report.items() if k != "report_sha256"})


#: Top-level report fields left out of :func:`report_digest`.
DIGEST_EXCLUDED_TOP = ("report_id", "created_at", "report_sha256")
#: Keys left out of :func:`report_digest` wherever they occur in the report.
DIGEST_EXCLUDED_KEYS = ("seconds", "speedup_vs_oracle", "hostname", "host", "signature")
#: Key suffixes left out wherever they occur: durations and timestamps.
DIGEST_EXCLUDED_SUFFIXES = ("_seconds", "_at")
#: Paths (``/``-separated, ``*`` = every list item) left out of :func:`report_digest`.
DIGEST_EXCLUDED_PATHS = ("run/seed_commitment", "references/reused", "artifacts/*/sha256")


def _digest_view(value: Any, path: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            here = (*path, str(key))
            if (key in DIGEST_EXCLUDED_KEYS or str(key).endswith(DIGEST_EXCLUDED_SUFFIXES)
                    or "/".join(here) in DIGEST_EXCLUDED_PATHS):
                continue
            out[key] = _digest_view(item, here)
        return out
    if isinstance(value, list):
        return [_digest_view(item, (*path, "*")) for item in value]
    return value


def report_digest(report: dict[str, Any]) -> str:
    """The report's CONTENT digest: what a run found, not when, where or how fast it ran.

    Two runs of the same config and seed on the same machine (CPU), or a run killed and
    completed with ``--resume``, give the same digest. It is the hex sha256 of the canonical
    JSON (:func:`canonical_json`) of report.json without:

    * the top-level ``report_id``, ``created_at`` and ``report_sha256`` (a hash over both);
    * at any depth, every key named ``seconds``, ending in ``_seconds`` (durations:
      ``run.seconds``, ``utility.per_round[].seconds``, ``unlearning[].seconds``,
      ``oracle_seconds``, ...) or ending in ``_at`` (timestamps: ``received_at``,
      ``executed_at``, ...), ``speedup_vs_oracle`` (a ratio of two durations), and
      ``hostname``, ``host``, ``signature`` (never written today; left out should they be);
    * ``run.seed_commitment``: a hiding commitment, salted with fresh random bytes each run
      (the seed itself is covered by ``run.config_sha256``);
    * ``references.reused``: how many reference adapters came from the run directory's
      cache, which depends on whether the run was resumed, not on what it found;
    * ``artifacts[].sha256``: some artifacts record timings (``models/global/progress.json``,
      ``training.json``, the stage manifests' ``completed_at``) or archive timestamps
      (``.npz`` members); the artifact paths stay in, and the model hashes stay in through
      ``run.final_adapter_sha256``, ``utility.per_round[].global_sha256`` and
      ``unlearning[].model_sha256_*``.

    With secure aggregation on the digest differs between runs: CKKS encryption draws its
    noise from SEAL's own unseeded randomness, so the decrypted mean differs in its last
    bits (``secure_aggregation.max_abs_error``).

    >>> a = {"report_id": "1", "created_at": "t1", "run": {"seconds": {"train": 1.0}}, "x": 1}
    >>> b = {"report_id": "2", "created_at": "t2", "run": {"seconds": {"train": 9.0}}, "x": 1}
    >>> report_digest(a) == report_digest(b) != report_digest(b | {"x": 2})
    True
    """
    kept = {k: v for k, v in report.items() if k not in DIGEST_EXCLUDED_TOP}
    return canonical_sha256(_digest_view(kept, ()))


def report_file_digest(path: Path | str) -> str:
    """:func:`report_digest` of a report.json file (DataError if it is missing or not JSON)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such report file")
    return report_digest(load_report_file(path))


def load_report_file(path: Path) -> dict[str, Any]:
    """A report.json file as a dict (DataError when it is not JSON or not an object)."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(report, dict):
        raise DataError(f"{path}: the report must be a JSON object")
    return report
