"""Write the report's files into the run directory: report.json first, then its renderings."""

from __future__ import annotations

from collections.abc import Sequence

from privaudit.audit.rundir import RunDir, write_text_atomic
from privaudit.reports.html import render_html
from privaudit.reports.schema import Report


def write_report(report: Report, run: RunDir, *, formats: Sequence[str] = ("html",)) -> None:
    write_text_atomic(run.report_json, report.to_json())
    if "html" in formats:
        write_text_atomic(run.path("report.html"), render_html(report))
