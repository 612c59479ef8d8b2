"""Self-contained HTML (Jinja2): styles inline, figures as data URIs, no external requests."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from privaudit.reports import plots
from privaudit.reports.schema import Report


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("privaudit.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"
    env.filters["num"] = lambda x, d=3: "n/a" if x is None else f"{x:.{d}f}"
    return env


def render_html(report: Report) -> str:
    figures = {
        "roc": plots.roc_figure(report.attacks),
        "utility": plots.utility_figure(report.utility.per_round, report.utility.metric),
    }
    template = _env().get_template("report.html.j2")
    return template.render(r=report, figures=figures)
