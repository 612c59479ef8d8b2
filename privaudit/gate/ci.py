"""The gate's outputs for CI systems: JUnit XML, SARIF 2.1.0, a Markdown job summary and
GitHub workflow annotations. Waived checks appear in every output, marked as waived.

* JUnit: one ``<testcase>`` per rule × target (``classname`` = ``privaudit.gate.<rule>``);
  a failure is ``<failure>``, missing evidence ``<error>``, a waiver or a skipped baseline
  comparison ``<skipped>`` (its message starts with WAIVED / SKIPPED), a warning passes
  with the warning in ``<system-out>``.
* SARIF 2.1.0: one rule per policy rule, one result per check, located at the rule's line
  in the policy file, with ``partialFingerprints`` (rule, metric, target — stable across
  runs), ``baselineState`` when a baseline was given, and ``suppressions`` for waivers.
  A check that passed is ``kind: pass`` with ``level: none``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from privaudit.gate.evaluation import Check, GateResult
from privaudit.gate.policy import FINGERPRINT_KEY

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_ICON = {"pass": "✅", "fail": "❌", "warn": "⚠️", "waived": "🔕", "missing": "❓",
         "skipped": "⏭️"}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("privaudit")
    except Exception:  # not installed as a distribution
        return "0"


def _detail(c: Check) -> str:
    text = c.message
    if c.waiver is not None:
        text += (f" — WAIVED until {c.waiver.expires} by {c.waiver.owner}: "
                 f"{c.waiver.reason}")
    return text


def _relative_uri(path: Path | None) -> str:
    if path is None:
        return "privacy-gate.yaml"
    try:
        return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()
    except ValueError:  # another drive
        return path.resolve().as_uri()


# ---------------------------------------------------------------- JUnit XML


def junit_xml(result: GateResult) -> str:
    """JUnit XML: one testcase per rule × target."""
    counts = {"tests": len(result.checks), "failures": result.count("fail"),
              "errors": result.count("missing"),
              "skipped": result.count("waived") + result.count("skipped")}
    attrib = {k: str(v) for k, v in counts.items()}
    suites = ET.Element("testsuites", {"name": "privaudit gate", **attrib})
    suite = ET.SubElement(suites, "testsuite", {"name": "privaudit.gate", **attrib})
    props = ET.SubElement(suite, "properties")
    for name, value in (("report", result.report_path), ("policy", result.policy_path)):
        if value is not None:
            ET.SubElement(props, "property", name=name, value=str(value))
    for c in result.checks:
        case = ET.SubElement(suite, "testcase", classname=f"privaudit.gate.{c.rule.id}",
                             name=c.target or c.rule.metric, time="0")
        text = f"{c.rule.metric}: {_detail(c)}"
        if c.status == "fail":
            ET.SubElement(case, "failure", message=text, type=c.rule.severity).text = text
        elif c.status == "missing":
            ET.SubElement(case, "error", message=text, type="evidence-missing").text = text
        elif c.status == "waived":
            ET.SubElement(case, "skipped", message=f"WAIVED: {text}")
        elif c.status == "skipped":
            ET.SubElement(case, "skipped", message=f"SKIPPED: {text}")
        elif c.status == "warn":
            ET.SubElement(case, "system-out").text = f"WARNING: {text}"
    if result.notes:
        ET.SubElement(suite, "system-out").text = "\n".join(result.notes)
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


# ---------------------------------------------------------------- SARIF 2.1.0


def _level(c: Check) -> str:
    if c.status in ("pass", "skipped"):
        return "none"
    if c.status in ("fail", "missing"):
        return "error" if c.rule.severity == "error" else "warning"
    return "warning" if c.status == "warn" or c.rule.severity == "warning" else "error"


def _kind(c: Check) -> str:
    return {"pass": "pass", "skipped": "notApplicable"}.get(c.status, "fail")


def sarif(result: GateResult) -> dict[str, Any]:
    """A SARIF 2.1.0 log of the gate (validates against the OASIS schema)."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for c in result.checks:
        if c.rule.id in index:
            continue
        index[c.rule.id] = len(rules)
        r = c.rule
        limits = ", ".join(f"{k} {v}" for k, v in (("min", r.min), ("max", r.max),
                                                    ("max_increase", r.max_increase),
                                                    ("max_relative_increase",
                                                     r.max_relative_increase)) if v is not None)
        rules.append({
            "id": r.id,
            "shortDescription": {"text": f"{r.metric}: {limits}"},
            "fullDescription": {"text": r.description or f"privaudit gate rule {r.id}: "
                                f"{r.metric} must satisfy {limits}"},
            "defaultConfiguration": {"level": "error" if r.severity == "error" else "warning"},
            "properties": {"metric": r.metric, "statistic": r.statistic or "default",
                           "appliesTo": r.applies_to},
        })
    uri = _relative_uri(result.policy_path)
    results = []
    for c in result.checks:
        location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": uri}}}
        line = result.rule_lines.get(c.rule.id)
        if line:
            location["physicalLocation"]["region"] = {"startLine": line}
        location["logicalLocations"] = [{"name": c.target or "run",
                                         "fullyQualifiedName": c.pointer or c.rule.metric,
                                         "kind": "member"}]
        entry: dict[str, Any] = {
            "ruleId": c.rule.id,
            "ruleIndex": index[c.rule.id],
            "kind": _kind(c),
            "level": _level(c),
            "message": {"text": f"{c.name} ({c.rule.metric}): {c.status.upper()} — "
                                f"{_detail(c)}"},
            "locations": [location],
            "partialFingerprints": {FINGERPRINT_KEY: c.fingerprint},
            "properties": {"status": c.status, "target": c.target, "metric": c.rule.metric,
                           "statistic": c.statistic, "value": _finite(c.value),
                           "baselineValue": _finite(c.baseline)},
        }
        if c.baseline_state is not None:
            entry["baselineState"] = c.baseline_state
        if c.waiver is not None:
            entry["suppressions"] = [{
                "kind": "external", "status": "accepted",
                "justification": f"{c.waiver.reason} (owner {c.waiver.owner}, expires "
                                 f"{c.waiver.expires})"}]
        results.append(entry)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "privaudit", "version": _version(),
                            "informationUri": "https://pypi.org/project/privaudit/",
                            "rules": rules}},
        "automationDetails": {"id": "privaudit-gate/"},
        "results": results,
        "invocations": [{
            "executionSuccessful": True,
            "exitCode": result.exit_code,
            "toolExecutionNotifications": [{"level": "warning", "message": {"text": n}}
                                           for n in result.notes],
        }],
    }
    if result.report_path is not None:
        run["artifacts"] = [{"location": {"uri": _relative_uri(result.report_path)},
                             "roles": ["analysisTarget"]}]
    return {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _finite(x: float | None) -> float | str | None:
    if x is None or (x == x and abs(x) != float("inf")):
        return x
    return str(x)


# ---------------------------------------------------------------- GitHub


def markdown_summary(result: GateResult) -> str:
    """A Markdown table of the gate for ``$GITHUB_STEP_SUMMARY`` (verdict first)."""
    lines = [f"### {_ICON['fail'] if result.exit_code else _ICON['pass']} {result.headline}",
             "", "| | rule | target | metric | value | detail |",
             "| --- | --- | --- | --- | --- | --- |"]
    order = {"fail": 0, "missing": 1, "warn": 2, "waived": 3, "skipped": 4, "pass": 5}
    for c in sorted(result.checks, key=lambda c: order[c.status]):
        value = "" if c.value is None else f"{c.statistic} {c.value:.4g}"
        detail = _detail(c).replace("|", "\\|")
        lines.append(f"| {_ICON[c.status]} {c.status} | `{c.rule.id}` | {c.target or '—'} | "
                     f"`{c.rule.metric}` | {value} | {detail} |")
    for note in result.notes:
        lines.append(f"\n> ⚠️ {note}")
    return "\n".join(lines) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(result: GateResult) -> list[str]:
    """GitHub workflow commands (``::error``/``::warning``) for every check that is not a pass."""
    out = []
    file = _escape_property(_relative_uri(result.policy_path))
    for c in result.checks:
        if c.status in ("pass", "skipped"):
            continue
        command = "error" if c.status in ("fail", "missing") and c.rule.severity == "error" \
            else "warning"
        where = f"file={file}"
        if line := result.rule_lines.get(c.rule.id):
            where += f",line={line}"
        title = _escape_property(f"privaudit gate {c.status}: {c.name}")
        out.append(f"::{command} {where},title={title}::"
                   + _escape_data(f"{c.rule.metric}: {_detail(c)}"))
    for note in result.notes:
        out.append(f"::warning title=privaudit gate::{_escape_data(note)}")
    return out
