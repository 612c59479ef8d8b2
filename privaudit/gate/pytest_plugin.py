"""pytest plugin (entry point ``pytest11``): each gate rule × target becomes a test item.

    pytest --privaudit-report runs/pr/report.json --privaudit-policy privacy-gate.yaml \
           [--privaudit-baseline runs/main/report.json]

A failing error-severity rule fails its item; missing evidence fails it too (naming the
metric); a waived check is skipped with the waiver's reason (never hidden); a failing
warning-severity rule passes with a ``PrivacyGateWarning``. Without the options the plugin
does nothing (and imports nothing heavy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


class PrivacyGateWarning(UserWarning):
    """A warning-severity gate rule failed."""


class PrivacyGateFailure(Exception):
    """A gate rule failed (or its evidence is missing)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("privaudit", "privaudit privacy gate")
    group.addoption("--privaudit-report", metavar="REPORT", default=None,
                    help="report.json (or run directory) to gate")
    group.addoption("--privaudit-policy", metavar="POLICY", default=None,
                    help="privacy gate policy YAML")
    group.addoption("--privaudit-baseline", metavar="REPORT", default=None,
                    help="baseline report.json for max_increase rules")


class GateItem(pytest.Item):
    """One rule × target of the policy."""

    def __init__(self, *, check: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.add_marker(pytest.mark.privaudit_gate)

    def runtest(self) -> None:
        c = self.check
        if c.status == "waived":
            pytest.skip(f"WAIVED until {c.waiver.expires} by {c.waiver.owner}: "
                        f"{c.waiver.reason} ({c.message})")
        if c.status == "skipped":
            pytest.skip(c.message)
        if c.status in ("fail", "missing"):
            raise PrivacyGateFailure(f"{c.rule.metric}: {c.message}")
        if c.status == "warn":
            import warnings

            warnings.warn(f"{c.name} ({c.rule.metric}): {c.message}", PrivacyGateWarning,
                          stacklevel=1)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, PrivacyGateFailure):
            return f"privacy gate rule {self.check.name}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"privacy gate: {self.check.name}"


class GatePolicy(pytest.File):
    """The policy file as a collector of :class:`GateItem`."""

    def collect(self) -> list[GateItem]:
        from privaudit.core.errors import PrivauditError
        from privaudit.gate.evaluation import run_gate

        options = self.config.option
        report = Path(options.privaudit_report)
        if report.is_dir():
            report = report / "report.json"
        try:
            result = run_gate(report, self.path, baseline_path=options.privaudit_baseline)
        except PrivauditError as exc:  # a malformed policy or report: a usage error
            raise pytest.UsageError(f"privaudit gate: {exc}") from None
        return [GateItem.from_parent(self, name=c.name, check=c) for c in result.checks]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "privaudit_gate: a privacy gate rule from the "
                                       "privaudit pytest plugin")
    given = (config.getoption("privaudit_report"), config.getoption("privaudit_policy"))
    if any(given) and not all(given):
        raise pytest.UsageError("--privaudit-report and --privaudit-policy go together")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    policy = config.getoption("privaudit_policy")
    if not policy:
        return
    collector = GatePolicy.from_parent(session, path=Path(policy).resolve())
    items.extend(collector.collect())
