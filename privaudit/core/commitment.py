"""The report's commitment to the run's seed, and its opening.

The seed decides the data split, the LoRA initialisation and the DP noise. The report never
carries it: ``run.seed_commitment`` is a salted hash. The run directory keeps what opens it —
the seed in ``config.yaml`` (a run must be reproducible) and the salt in
``data/seed-opening.json`` — so an auditor handed the run directory can check that the
published report was made with that seed (``privaudit verify`` does), while a reader of the
report alone learns nothing about it. The salt is drawn once per run and kept, so a
resumed run or a report re-rendered by ``privaudit erase`` states the same commitment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

from privaudit.core.errors import ConfigError, DataError
from privaudit.core.rundir import RunDir, write_json_atomic
from privaudit.core.safe_yaml import load_yaml_file

SEED_OPENING = ("data", "seed-opening.json")
_SEED_DOMAIN = b"privaudit/seed-commitment/v1\x00"
_MIN_SALT_BYTES = 16


def seed_commitment(seed: int, salt: bytes) -> str:
    """A hiding commitment to a seed: hex sha256 of
    ``b"privaudit/seed-commitment/v1\\0" + len(salt) as 4 bytes big-endian + salt + str(seed)``.

    Seeds come from a small space, so the salt is what hides them: it must be random, at
    least 16 bytes, and kept as secret as the seed until both are revealed to an auditor,
    who checks them with :func:`verify_seed_commitment`.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer; got {type(seed).__name__}")
    if not isinstance(salt, bytes) or len(salt) < _MIN_SALT_BYTES:
        raise ConfigError(f"salt must be at least {_MIN_SALT_BYTES} random bytes; got "
                          f"{len(salt) if isinstance(salt, bytes) else type(salt).__name__}")
    preimage = _SEED_DOMAIN + len(salt).to_bytes(4, "big") + salt + str(seed).encode("ascii")
    return hashlib.sha256(preimage).hexdigest()


def verify_seed_commitment(commitment: str, seed: int, salt: bytes) -> bool:
    """True when ``(seed, salt)`` opens ``commitment``."""
    return hmac.compare_digest(seed_commitment(seed, salt), commitment)


def run_seed_commitment(run: RunDir, seed: int, *, seed_file: str = "config.yaml") -> str:
    """The run's commitment to ``seed``: under the salt kept in ``data/seed-opening.json``,
    drawn (16 random bytes) and written there on the run's first report. ``seed_file``: the
    run's YAML file whose ``seed`` opens it (``audit-model.yaml`` for an external model)."""
    path = run.path(*SEED_OPENING)
    if path.is_file():
        return seed_commitment(seed, _read_salt(path))
    salt = os.urandom(_MIN_SALT_BYTES)
    write_json_atomic(path, {"salt": salt.hex(), "opens": "run.seed_commitment of report.json "
                             f"with the seed of {seed_file}", "seed_file": seed_file})
    return seed_commitment(seed, salt)


def opening_problem(root: Path, commitment: str) -> str | None:
    """Why the run directory ``root`` does not open ``commitment`` (None when it does, or when
    it holds no opening: a run made before openings were kept)."""
    path = root.joinpath(*SEED_OPENING)
    if not path.is_file():
        return None
    try:
        salt = _read_salt(path)
        name = _seed_file(path)
        config = load_yaml_file(root / name, what=name)
        seed = config.get("seed") if isinstance(config, dict) else None
        if isinstance(seed, bool) or not isinstance(seed, int):
            return f"{name} has no integer seed (got {seed!r})"
        if verify_seed_commitment(commitment, seed, salt):
            return None
    except (ConfigError, DataError, OSError) as exc:
        return f"not checkable: {exc}"
    return (f"the seed of {name} and the salt of data/seed-opening.json do not open the "
            "report's run.seed_commitment: the report was not made with this config's seed")


def _seed_file(path: Path) -> str:
    """The run file holding the seed (``config.yaml`` unless the opening names another)."""
    name = json.loads(path.read_text(encoding="utf-8")).get("seed_file", "config.yaml")
    if name not in ("config.yaml", "audit-model.yaml"):
        raise DataError(f"{path}: seed_file must be config.yaml or audit-model.yaml "
                        f"(got {name!r})")
    return str(name)


def _read_salt(path: Path) -> bytes:
    try:
        salt = bytes.fromhex(json.loads(path.read_text(encoding="utf-8"))["salt"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path.name}: not a seed opening ({exc})") from exc
    if len(salt) < _MIN_SALT_BYTES:
        raise DataError(f"{path.name}: salt shorter than {_MIN_SALT_BYTES} bytes")
    return salt
