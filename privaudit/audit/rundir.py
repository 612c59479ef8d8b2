"""The run directory (DESIGN.md contract): paths, atomic writes and stage manifests.

Every file is written atomically (temp file + rename). A stage manifest
(``stages/<stage>.json``) records the stage's input hash and the sha256 of each output, so a
resumed run skips a stage whose inputs are unchanged and whose outputs are intact.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privaudit.audit.errors import ConfigError


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


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

    def signals(self, name: str) -> Path:
        return self.path("signals", name)

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    # --- stage manifests -----------------------------------------------------------------

    def stage_manifest(self, stage: str) -> Path:
        return self.path("stages", f"{stage}.json")

    def complete_stage(self, stage: str, *, inputs_sha256: str, outputs: list[Path]) -> None:
        write_json_atomic(
            self.stage_manifest(stage),
            {
                "stage": stage,
                "inputs_sha256": inputs_sha256,
                "completed_at": datetime.now(UTC).isoformat(),
                "outputs": {self.relative(p): sha256_file(p) for p in sorted(outputs)},
            },
        )

    def stage_is_current(self, stage: str, inputs_sha256: str) -> bool:
        """True when the stage ran with these inputs and all its outputs are intact."""
        path = self.stage_manifest(stage)
        if not path.is_file():
            return False
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False
        if manifest.get("inputs_sha256") != inputs_sha256:
            return False
        for rel, digest in manifest.get("outputs", {}).items():
            p = self.path(rel)
            if not p.is_file() or sha256_file(p) != digest:
                return False
        return True
