"""Run the privaudit CLI in-process and capture what it printed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from privaudit.audit.cli import main


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            *args: str) -> CliResult:
    monkeypatch.setenv("COLUMNS", "500")  # no wrapping of long paths in messages
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)
