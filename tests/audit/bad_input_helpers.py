"""Shared by the test_bad_input_* files: run the real CLI in-process and judge the outcome.

The contract (DESIGN.md, issue 12): bad input ends with exit 2 and a message naming the
problem, or succeeds — never a traceback, never an internal error (exit 3), never exit 0 with
something half-written.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from privaudit.audit.cli import main
from tests.reports.cli_helpers import CliResult as Outcome

# ``path.to.field: reason`` or ``file:line: reason`` — a message that names where the problem is
NAMED = re.compile(r"[\w\-\[\]./\\]+(:\d+)?: \S")

# YAML-able values of every shape, including the hostile ones
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from([0, 1, 2, -1, 10**30, 2**64, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", " ", "ünï", "../../etc/passwd", "a\x00b", "\ud800", "1e999", "~"]),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def run_main(*args: str | Path) -> Outcome:
    """``privaudit ARGS`` in-process, stdout and stderr captured (wide, no wrapping)."""
    out, err = io.StringIO(), io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "500"
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return Outcome(code, out.getvalue(), err.getvalue())


def assert_contract(outcome: Outcome, *, allowed: tuple[int, ...] = (0, 2)) -> None:
    """Exit 0 or the contract's code, no traceback; an error names what is wrong."""
    assert outcome.code in allowed, (outcome.code, outcome.text[-3000:])
    assert "Traceback" not in outcome.text, outcome.text[-3000:]
    assert "internal error" not in outcome.text, outcome.text[-3000:]
    if outcome.code == 2:
        assert "error:" in outcome.err, outcome.text[-3000:]
        assert NAMED.search(outcome.err), outcome.err[-3000:]


def yaml_bytes(value: Any) -> bytes:
    """``value`` as YAML bytes; strings PyYAML cannot emit (lone surrogates) as escapes."""
    import yaml

    try:
        return yaml.safe_dump(value, allow_unicode=True).encode("utf-8")
    except (UnicodeEncodeError, yaml.YAMLError):
        return yaml.safe_dump(value, allow_unicode=False).encode("ascii", "backslashreplace")


@contextlib.contextmanager
def snapshot_unchanged(root: Path) -> Iterator[None]:
    """Assert every file under ``root`` is byte-for-byte the same afterwards (none added)."""
    before = _snapshot(root)
    yield
    after = _snapshot(root)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))[:5]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    # .lock is the writers' lock (holds the pid while held), no part of the run's evidence
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and p.name != ".lock"}
