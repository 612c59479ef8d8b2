"""The run directory (DESIGN.md contract): paths, atomic writes and stage manifests.

Every file is written atomically (temp file ``.<name>.tmp-<pid>`` + rename), so a process
killed at any point leaves either the old file or the new one, never half of one; the
temporaries a killed process left behind are removed when the run directory is opened again
(:meth:`RunDir.create`). A stage manifest (``stages/<stage>.json``) records the stage's input
hash and the sha256 of each output, so a resumed run skips a stage whose inputs are unchanged
and whose outputs are intact. Before a resumed run uses a file, its sha256 is checked against
the manifest that lists it (:func:`verify_outputs`): a file that is there but differs raises
:class:`VerificationError` naming it, a missing one makes the stage run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privaudit.core.errors import ConfigError, VerificationError

_TMP = re.compile(r"^\..+\.tmp-(\d+)$")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks: the one file hash of privaudit."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def path_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory's files: the canonical JSON of every file's path
    (relative, sorted) with its sha256 — a data set kept as a directory (``save_to_disk``)."""
    if path.is_file():
        return sha256_file(path)
    from privaudit.core.hashing import canonical_sha256

    files = sorted(p for p in path.rglob("*") if p.is_file())
    return canonical_sha256([[p.relative_to(path).as_posix(), sha256_file(p)] for p in files])


def verify_outputs(root: Path, outputs: dict[str, str], *, manifest: str) -> bool:
    """True when every file in ``outputs`` (relative path → sha256) is there with that
    sha256; False when one is missing. Raises :class:`VerificationError` naming the first
    file that is there but differs: the run directory was altered after ``manifest`` was
    written, and a resumed run must neither use that file nor silently replace it."""
    root = root.resolve()
    for rel, digest in outputs.items():
        p = (root / rel).resolve()
        if root not in p.parents:
            raise VerificationError(f"{manifest}: lists {rel!r}, outside the run directory")
        if not p.is_file():
            return False
        actual = sha256_file(p)
        if actual != digest:
            raise VerificationError(
                f"{rel}: sha256 {actual[:16]}… differs from {digest[:16]}… recorded in "
                f"{manifest}: the file changed after that stage wrote it (edited, or rewritten "
                f"by a later command such as privaudit erase). Restore it, delete it to "
                f"recompute it, or run without --resume"
            )
    return True


def _remove_stale_temporaries(root: Path) -> None:
    """Delete ``.<name>.tmp-<pid>`` files of processes that are gone (killed mid-write)."""
    for path in root.rglob(".*.tmp-*"):
        match = _TMP.match(path.name)
        if match is None or not path.is_file() or int(match.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:
            continue  # a live process of another user


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """The one atomic writer: ``data`` to ``.<name>.tmp-<pid>`` beside ``path``, fsync, rename.

    A reader sees the old file or the new one, never half of one; the temporary of a process
    killed mid-write is swept when the run directory is opened again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


class RunDir:
    """Paths inside one run directory; every path resolves inside ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def create(self) -> RunDir:
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"--out: exists and is not a directory ({self.root})")
        self.root.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(self.root)
        return self

    def path(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts).resolve()
        if self.root not in p.parents and p != self.root:
            raise ConfigError(f"output path escapes the run directory: {'/'.join(parts)}")
        return p

    @property
    def config(self) -> Path:
        return self.path("config.yaml")

    @property
    def report_json(self) -> Path:
        return self.path("report.json")

    def global_adapter(self, round_index: int) -> Path:
        return self.path("models", "global", f"round-{round_index:03d}", "adapter.safetensors")

    def client_update(self, round_index: int, client_id: str) -> Path:
        return self.path(
            "models", "global", f"round-{round_index:03d}", "updates", f"{client_id}.safetensors"
        )

    def train_losses(self, round_index: int) -> Path:
        """Each client's mean training loss in the round: a statistic of its private records
        that no DP accountant covers, so it is never published in report.json. Like the
        client updates beside it, it stays in the run directory (sealed: manifest.json and
        the report's ``artifacts[]`` list it by path and sha256 only)."""
        return self.path("models", "global", f"round-{round_index:03d}", "train_loss.json")

    def signals(self, name: str) -> Path:
        return self.path("signals", name)

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    # --- stage manifests -----------------------------------------------------------------

    def stage_manifest(self, stage: str) -> Path:
        return self.path("stages", f"{stage}.json")

    def complete_stage(self, stage: str, *, inputs_sha256: str, outputs: list[Path],
                       sections: dict[str, str] | None = None) -> None:
        """Write the stage's manifest; ``sections``: a hash per config section it depends on,
        so that a later ``--resume`` can name what changed (:meth:`stage_sections`)."""
        write_json_atomic(
            self.stage_manifest(stage),
            {
                "stage": stage,
                "inputs_sha256": inputs_sha256,
                "sections": dict(sections or {}),
                "completed_at": datetime.now(UTC).isoformat(),
                "outputs": {self.relative(p): sha256_file(p) for p in sorted(outputs)},
            },
        )

    def stage_sections(self, stage: str) -> dict[str, str] | None:
        """The section hashes the stage last completed with (None: not completed, or a
        manifest written before they were kept)."""
        path = self.stage_manifest(stage)
        try:
            kept = json.loads(path.read_text(encoding="utf-8")).get("sections")
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return {str(k): str(v) for k, v in kept.items()} if isinstance(kept, dict) else None

    def stage_is_current(self, stage: str, inputs_sha256: str) -> bool:
        """True when the stage ran with these inputs and all its outputs are intact; False
        when it did not, its inputs changed or an output is missing. An output that is there
        but differs from the manifest raises :class:`VerificationError` naming it."""
        path = self.stage_manifest(stage)
        if not path.is_file():
            return False
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False
        if manifest.get("inputs_sha256") != inputs_sha256:
            return False
        return verify_outputs(
            self.root, manifest.get("outputs", {}), manifest=self.relative(path)
        )
