"""What a run's provenance records of the machine and the code: package versions, Python,
the platform (never the host name) and, when privaudit runs from its own git checkout, the
commit and whether tracked files were modified."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["TRACKED_PACKAGES", "capture_environment", "git_state"]

#: Distributions whose versions go into the provenance section (those installed).
TRACKED_PACKAGES: tuple[str, ...] = (
    "privaudit", "torch", "transformers", "peft", "opacus", "tenseal", "numpy",
    "scikit-learn", "scipy", "pydantic", "cryptography", "flwr",
)


def capture_environment() -> dict[str, Any]:
    """Versions and code identity for the provenance section; never fails, never names the host.

    Keys: ``package_versions`` (installed ones of :data:`TRACKED_PACKAGES`), ``python``,
    ``python_implementation``, ``platform`` (OS, kernel, architecture, libc — no hostname),
    ``git_commit`` and ``git_dirty`` (tracked files modified; untracked files ignored) when
    privaudit runs from its own git checkout, else ``None``.
    """
    versions: dict[str, str] = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    commit, dirty = git_state(Path(__file__).resolve().parents[2])
    return {
        "package_versions": versions,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "git_commit": commit,
        "git_dirty": dirty,
    }


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), *args],
            capture_output=True, text=True, timeout=10, check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout at ``root``; (None, None) if ``root`` is not one."""
    toplevel = _git(root, "rev-parse", "--show-toplevel")
    if toplevel is None or Path(toplevel).resolve() != root:
        return None, None  # not a checkout, or privaudit installed inside another repo
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None or commit is None else bool(status))
