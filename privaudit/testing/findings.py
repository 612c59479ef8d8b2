"""How a conformance check reports: every failed property of one member, then one error.

A check collects its findings before it reports (STYLE 7) and raises a single
:class:`AssertionError` naming the member and each property it failed, so that a plugin author
sees everything to fix at once. Plain ``raise``, never ``assert``: the kit must also fail under
``python -O`` and outside pytest.

>>> f = Findings("attack 'demo'")
>>> f.check(1 + 1 == 2, "arithmetic holds")
True
>>> f.check(False, "scores are finite", "2 NaN")
False
>>> with f.step("scoring runs"):
...     raise ValueError("boom")
>>> f.done()
Traceback (most recent call last):
...
AssertionError: attack 'demo' fails 2 contract properties:
  - scores are finite: 2 NaN
  - scoring runs: raised ValueError: boom
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Findings"]


class Findings:
    """The failed properties of ``member`` (a phrase naming it, e.g. ``"attack 'lira'"``)."""

    def __init__(self, member: str) -> None:
        self.member = member
        self.failed: list[str] = []
        self._cause: BaseException | None = None

    def check(self, ok: bool, claim: str, detail: str = "") -> bool:
        """Record ``claim`` as failed unless ``ok``; ``detail`` says what was found instead."""
        if not ok:
            self.failed.append(f"{claim}: {detail}" if detail else claim)
        return ok

    @contextmanager
    def step(self, claim: str) -> Iterator[None]:
        """Run the block; an exception in it fails ``claim`` (the block stops there)."""
        try:
            yield
        except Exception as exc:  # a plugin may raise anything: report it as a finding
            self._cause = self._cause or exc
            self.check(False, claim, f"raised {type(exc).__name__}: {exc}")

    def done(self) -> None:
        """Raise one AssertionError listing every failed property (none: return)."""
        if not self.failed:
            return
        n = len(self.failed)
        lines = "\n".join(f"  - {f}" for f in self.failed)
        noun = "property" if n == 1 else "properties"
        raise AssertionError(f"{self.member} fails {n} contract {noun}:\n{lines}") from self._cause
