"""Which directory a run may write into, and what an interrupted one kept.

A run writes only into a directory it owns, so that everything the manifest and the report's
``artifacts`` list was written by this run (:func:`claim_run_dir`):

* a missing or empty directory: a new run;
* a run directory, with ``--resume``: its finished stages whose own inputs are unchanged are
  reused (:mod:`privaudit.audit.stage_inputs`), the others recomputed, each saying why — so a
  config changed only in its attack settings keeps the training and the erasures.

Anything else is refused with :class:`RunDirectoryError` (exit 2) saying why and what to do:
a non-empty directory that is not a run (a data folder, the user's own ``config.yaml``) is
never adopted, a run is never started over on top of its old files (a stale cache would be
sealed into the new manifest), and a run of another config is not written over without
``--resume`` — the message names the config keys that differ.

A run directory is one holding privaudit's ``config.yaml`` and its lock file ``.lock`` (or,
for runs written before the lock existed, a ``stages/`` folder).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.core.errors import ConfigError, RunDirectoryError
from privaudit.core.rundir import RunDir
from privaudit.core.runlock import LOCK_NAME, run_dir_lock
from privaudit.core.safe_yaml import load_yaml_file

_SHOWN = 6  # entries / keys named in a refusal before "and N more"
_MISSING = object()


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out |= _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: node}


def _short(value: Any) -> str:
    text = "(absent)" if value is _MISSING else json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _some(names: list[str]) -> str:
    more = len(names) - _SHOWN
    return ", ".join(names[:_SHOWN]) + (f" and {more} more" if more > 0 else "")


def config_differences(path: Path, cfg: AuditConfig) -> list[str]:
    """``key: old -> new`` for every resolved config key in which ``path`` (a run's
    config.yaml) differs from ``cfg`` (``budget.*`` aside: it limits a run, never changes its
    result); empty when they are the same config."""
    try:
        old = config_from_dict(load_yaml_file(path, what=str(path)))
    except ConfigError as exc:
        return [f"(its config.yaml is not a valid config: {exc})"]
    if old.sha256() == cfg.sha256():
        return []
    before = _flatten(old.model_dump(mode="json", exclude={"budget"}))
    after = _flatten(cfg.model_dump(mode="json", exclude={"budget"}))
    return [f"{key}: {_short(before.get(key, _MISSING))} -> {_short(after.get(key, _MISSING))}"
            for key in sorted(before.keys() | after.keys())
            if before.get(key, _MISSING) != after.get(key, _MISSING)]


def _is_run(root: Path, *, had_lock: bool) -> bool:
    return (root / "config.yaml").is_file() and (had_lock or (root / "stages").is_dir())


def _check_claim(root: Path, cfg: AuditConfig, *, resume: bool, had_lock: bool) -> None:
    entries = sorted(p.name for p in root.iterdir() if p.name != LOCK_NAME)
    if not entries:
        return
    if not _is_run(root, had_lock=had_lock):
        raise RunDirectoryError(
            f"--out: {root} is not empty and is not a privaudit run directory (it holds "
            f"{_some(entries)}); a run seals every file of its directory into its manifest, "
            "so it writes only into a new or empty one: give a new or empty --out"
        )
    differences = config_differences(root / "config.yaml", cfg)
    if differences and not resume:
        raise RunDirectoryError(
            f"--out: {root} holds a run of another config; its config.yaml differs in "
            f"{len(differences)} key(s): {_some(differences)}. Give a new or empty --out "
            "for this config, or pass --resume to continue that run with this config (its "
            "stages whose own inputs are unchanged are reused, the others recomputed)")
    if differences:
        return
    if not resume:
        raise RunDirectoryError(
            f"--out: {root} already holds a run of this config; pass --resume to continue it "
            "(finished stages are reused), or give a new or empty --out to start over"
        )


@contextmanager
def claim_run_dir(out: Path, cfg: AuditConfig, *, resume: bool) -> Iterator[RunDir]:
    """Lock ``out`` for this process and check that this run may write into it (see the
    module docstring); yields the run directory, locked until the block ends."""
    root = Path(out).resolve()
    if root.exists() and not root.is_dir():
        raise RunDirectoryError(f"--out: exists and is not a directory ({root})")
    root.mkdir(parents=True, exist_ok=True)
    had_lock = (root / LOCK_NAME).is_file()
    with run_dir_lock(root, option="--out") as lock:
        try:
            _check_claim(root, cfg, resume=resume, had_lock=had_lock)
        except RunDirectoryError:
            if not had_lock:
                lock.unlink(missing_ok=True)  # leave a directory we refused as it was
            raise
        yield RunDir(root).create()


def describe_kept(root: Path) -> str:
    """One line on what an interrupted run left in ``root`` that ``--resume`` reuses."""
    kept = sorted(p.stem for p in (root / "stages").glob("*.json"))
    parts = [f"the finished stage(s) {', '.join(kept)}"] if kept else []
    if "train" not in kept:
        try:
            progress = json.loads((root / "models/global/progress.json").read_text("utf-8"))
            parts.append(f"training up to round {int(progress['round'])}")
        except (OSError, ValueError, KeyError, TypeError):
            pass
    refs = len(list(root.glob("models/references/*/ref-*/meta.json")))
    if refs:
        parts.append(f"{refs} reference model(s)")
    if not parts:
        return (f"{root} keeps no finished stage yet; run the same command with --resume to "
                "continue there")
    return f"{root} keeps {' and '.join(parts)}; run the same command with --resume to continue"
