"""The two schemas tools outside privaudit read are byte-identical to their golden copies.

``tests/golden/*.json`` were written by ``privaudit config schema`` and ``privaudit report
--schema`` at 30bf543, before the #18 layout change, and updated deliberately since: #20 added
the gradient canary kind to the config and the f-DP bound, the Gaussian estimate and the
release fields to ``dp_audit`` (report schema 0.6.0). A change to either schema is a change of
contract: update the golden copy in the same commit, with the schema version bump it needs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(("args", "golden"), [
    (["config", "schema"], "config-schema.json"),
    (["report", "--schema"], "report-schema.json"),
], ids=["config-schema", "report-schema"])
def test_cli_schema_output_is_byte_identical_to_its_golden_copy(args: list[str],
                                                                golden: str) -> None:
    out = subprocess.run([sys.executable, "-m", "privaudit", *args], capture_output=True,
                         check=True, timeout=120).stdout
    expected = (GOLDEN / golden).read_bytes()
    assert out == expected, (
        f"`privaudit {' '.join(args)}` differs from tests/golden/{golden}: the schema changed "
        "(a contract change: update the golden copy deliberately, with the version bump)")
