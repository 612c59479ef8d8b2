"""Where the CLI is told to write: checked before any work, written without a traceback.

An output path the user names (``run --out``, ``keygen --out``, ``gate --junit-xml``,
``--sarif``, ``gate --init --policy``) that cannot be written is a usage error (exit 2) naming
the option and the reason, found before the command does anything:
``--out: cannot create it: '/dev/null' is not a directory (got '/dev/null/run')``. Each function
returns the problems it found (empty when the path is fine); :func:`write_output` raises.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from privaudit.core.errors import ConfigError


def _ancestor_problem(path: Path, option: str, verb: str) -> str | None:
    """Why the missing parts of ``path`` cannot be created (None when they can)."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{option}: cannot {verb} it: '{ancestor}' is not a directory (got '{path}')"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{option}: cannot {verb} it: '{ancestor}' is not writable (got '{path}')"
    return None


def output_dir_problems(path: Path, option: str) -> list[str]:
    """``path`` is, or can be made, a writable directory."""
    if path.exists():
        if not path.is_dir():
            return [f"{option}: exists and is not a directory (allowed: a directory, or a "
                    f"path where one can be created; got '{path}')"]
        if not os.access(path, os.W_OK | os.X_OK):
            return [f"{option}: not writable (got '{path}')"]
        return []
    problem = _ancestor_problem(path, option, "create")
    return [problem] if problem else []


def output_file_problems(path: Path, option: str, *, overwrite: bool = True,
                         parents: bool = True) -> list[str]:
    """``path`` can be written as a file (created, or replaced when ``overwrite``; its
    missing directories created when ``parents``, else they must exist)."""
    if path.is_dir():
        return [f"{option}: is a directory (allowed: a file path, e.g. inside that "
                f"directory; got '{path}')"]
    if path.exists():
        if not overwrite:
            return [f"{option}: already exists; refusing to overwrite it (got '{path}')"]
        if not os.access(path, os.W_OK):
            return [f"{option}: not writable (got '{path}')"]
        return []
    if not parents and not path.parent.is_dir():
        return [f"{option}: cannot write it: the directory '{path.parent}' does not exist; "
                f"create it first (got '{path}')"]
    problem = _ancestor_problem(path, option, "write")
    return [problem] if problem else []


def check_outputs(problems: Iterable[str]) -> None:
    """Raise one ConfigError (exit 2) listing every problem, if any."""
    found = list(problems)
    if found:
        raise ConfigError(found[0] if len(found) == 1
                          else f"{len(found)} problem(s) with the output paths", found)


def write_output(path: Path, text: str, option: str, *, overwrite: bool = True,
                 parents: bool = True) -> None:
    """Write ``text`` to ``path`` after the checks of :func:`output_file_problems`; an OS
    refusal is a ConfigError naming ``option`` too (a race after the checks, a full disk)."""
    check_outputs(output_file_problems(path, option, overwrite=overwrite, parents=parents))
    try:
        if parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{option}: cannot write it ({exc.strerror or exc}; got '{path}')"
                          ) from None
