"""Before a command rewrites a finished run (``erase``, ``report`` in place): lock it, then
verify it.

Re-sealing or re-signing a run whose files no longer match its manifest (or the report's
``artifacts[]``) would launder the change: the new manifest would list the altered model and
``verify`` would say OK. So the existing seal is checked first, and any finding stops the
command with :class:`VerificationError` (exit 1) naming the file. A run killed before it was
sealed has no manifest; it is then checked against the report's own hash and artifacts.
``rewritten`` names files the command regenerates from the verified report.json (the
renderings of ``privaudit report``): a missing or changed one is no obstacle.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from privaudit.core.errors import VerificationError
from privaudit.core.provenance import MANIFEST_NAME, Finding, verify_run
from privaudit.core.runlock import run_dir_lock

_REGENERABLE = ("missing", "changed", "added")


def _blocks(finding: Finding, rewritten: Collection[str]) -> bool:
    if finding.path == MANIFEST_NAME and finding.kind == "missing":
        return False  # never sealed (killed while the report was written)
    return not (finding.path in rewritten and finding.kind in _REGENERABLE)


def require_intact(root: Path, *, command: str, rewritten: Collection[str] = ()) -> None:
    """Raise :class:`VerificationError` naming every file of ``root`` that differs from its
    manifest, signature or report; ``command`` says what was refused."""
    first: dict[str, Finding] = {}  # one problem per file: the manifest's, else the report's
    for finding in verify_run(root).findings:
        if _blocks(finding, rewritten):
            first.setdefault(finding.path, finding)
    if first:
        named = "; ".join(str(f) for f in first.values())
        raise VerificationError(
            f"{command}: {root} does not match its seal, so it is not re-sealed: {named}. "
            f"Restore the file(s) (`privaudit verify {root}` lists them), or start a new run"
        )


@contextmanager
def rewriting(root: Path, *, command: str, rewritten: Collection[str] = ()) -> Iterator[None]:
    """Hold ``root``'s writer lock and check it is intact before the block rewrites it."""
    with run_dir_lock(root, option="RUN"):
        require_intact(root, command=command, rewritten=rewritten)
        yield
