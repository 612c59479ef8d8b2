"""The ``report``, ``verify``, ``keygen`` and ``gate`` commands (registered on the typer app by
:func:`register`). Exit codes follow the contract in :mod:`privaudit.audit.cli`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from privaudit.audit.outpaths import (
    check_outputs,
    output_dir_problems,
    output_file_problems,
    write_output,
)
from privaudit.core.errors import EXIT_OK, ConfigError

out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
SIGN_HELP = ("Ed25519 private key (PEM) that signs manifest.json into manifest.sig; "
             "an encrypted key reads its passphrase from $PRIVAUDIT_SIGNING_PASSPHRASE")


def print_render_notes(notes: dict[str, str]) -> None:
    for fmt, note in notes.items():
        if "NOT rendered" in note:
            err_console.print(f"[yellow]warning:[/] {fmt}: {note}", highlight=False)


def report(
    run: Annotated[Path | None, typer.Argument(help="run directory holding report.json")] = None,
    formats: Annotated[str, typer.Option("--format", help="comma-separated: html,pdf,md")] =
        "html,pdf,md",
    out: Annotated[Path | None, typer.Option("--out", help="render into DIR instead of RUN "
                                                           "(the run is left untouched)")] = None,
    sign: Annotated[Path | None, typer.Option("--sign", help=SIGN_HELP)] = None,
    schema: Annotated[bool, typer.Option("--schema", help="print the JSON Schema of "
                                                          "report.json and exit")] = False,
) -> None:
    """Re-render a run's report from its report.json alone (and re-seal the run)."""
    if schema:
        from privaudit.reports.schema import json_schema

        typer.echo(json.dumps(json_schema(), indent=2))
        return
    if run is None:
        raise ConfigError("report: give a run directory (or --schema)")
    from privaudit.reports.render import rerender_report

    outcome = rerender_report(run, [f.strip() for f in formats.split(",") if f.strip()],
                              out=out, sign_key=sign)
    for path in outcome.written:
        out_console.print(f"wrote {path}", highlight=False)
    if outcome.manifest is not None:
        out_console.print(f"sealed {outcome.manifest}"
                          + (f" and signed {outcome.signature}" if outcome.signature else ""),
                          highlight=False)
    print_render_notes(outcome.notes)


def verify(
    run: Annotated[Path, typer.Argument(help="run directory")],
    public_key: Annotated[Path | None, typer.Option("--public-key", help="the signer's "
                                                    "Ed25519 public key (PEM) you trust")] = None,
) -> None:
    """Check every sha256 of manifest.json and of the report's artifacts[], the report's own
    hash and the signature."""
    from privaudit.core.commitment import SEED_OPENING
    from privaudit.core.provenance import verify_run

    result = verify_run(run, public_key)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if not result.ok:
        for finding in result.findings:
            err_console.print(f"[bold red]FAILED[/] {finding}", highlight=False)
        err_console.print(f"verification failed: {len(result.findings)} problem(s) in {run}",
                          highlight=False)
        raise typer.Exit(1)
    signed = (f"; signature by {result.signer_fingerprint} ({result.signed_at}) is valid"
              if result.signer_fingerprint else "")
    opened = ("; config.yaml's seed opens the report's seed commitment"
              if run.joinpath(*SEED_OPENING).is_file() else "")
    out_console.print(f"OK: {result.files_checked} files match manifest.json; report hash "
                      f"matches{opened}{signed}", highlight=False)


def keygen(
    out: Annotated[Path, typer.Option("--out", help="directory for the key pair")],
) -> None:
    """Write a new Ed25519 key pair (PEM); the private key is readable by its owner only."""
    from privaudit.core.provenance import (
        generate_keypair,
        load_public_key,
        public_key_fingerprint,
    )
    from privaudit.reports.render import PASSPHRASE_ENV

    check_outputs(output_dir_problems(out, "--out"))
    passphrase = os.environ.get(PASSPHRASE_ENV)
    private, public = generate_keypair(out, passphrase=passphrase.encode() if passphrase
                                       else None)
    out_console.print(f"private key: {private}{' (encrypted)' if passphrase else ''}\n"
                      f"public key:  {public}\n"
                      f"fingerprint: {public_key_fingerprint(load_public_key(public))}",
                      highlight=False)


def _gate_table(result: object) -> None:
    from privaudit.gate.evaluation import GateResult

    if not isinstance(result, GateResult):
        return
    style = {"pass": "green", "fail": "bold red", "warn": "yellow", "waived": "magenta",
             "missing": "bold red", "skipped": "dim"}
    colour = "red" if result.exit_code else "green"
    out_console.print(f"[bold {colour}]{result.headline}[/]", highlight=False)
    table = Table(show_header=True, header_style="bold")
    for column in ("status", "rule", "target", "metric", "value", "detail"):
        table.add_column(column, overflow="fold")
    order = {"fail": 0, "missing": 1, "warn": 2, "waived": 3, "skipped": 4, "pass": 5}
    for c in sorted(result.checks, key=lambda c: order[c.status]):
        detail = c.message + (f" — WAIVED until {c.waiver.expires} ({c.waiver.owner}): "
                              f"{c.waiver.reason}" if c.waiver else "")
        value = "" if c.value is None else f"{c.statistic} {c.value:.4g}"
        table.add_row(f"[{style[c.status]}]{c.status.upper()}[/]", c.rule.id,
                      c.target or "—", c.rule.metric, value, detail)
    out_console.print(table)
    for note in result.notes:
        out_console.print(f"[yellow]note:[/] {note}", highlight=False)


def gate(
    report: Annotated[Path | None, typer.Argument(help="report.json (or a run directory)")] =
        None,
    policy: Annotated[Path, typer.Option("--policy", help="policy YAML")] =
        Path("privacy-gate.yaml"),
    baseline: Annotated[Path | None, typer.Option("--baseline", help="report.json to compare "
                                                  "against (e.g. of the main branch)")] = None,
    junit_xml: Annotated[Path | None, typer.Option("--junit-xml", help="write JUnit XML")] =
        None,
    sarif: Annotated[Path | None, typer.Option("--sarif", help="write SARIF 2.1.0")] = None,
    github_summary: Annotated[bool, typer.Option(
        "--github-summary", help="append Markdown to $GITHUB_STEP_SUMMARY and print "
        "::error/::warning annotations")] = False,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="exit 0 even when the gate "
                                            "fails or evidence is missing")] = False,
    init: Annotated[bool, typer.Option("--init", help="write a commented starter policy to "
                                       "--policy and exit")] = False,
) -> None:
    """Fail a build on a privacy regression: check REPORT against the rules of --policy."""
    from privaudit.gate import ci
    from privaudit.gate.evaluation import run_gate
    from privaudit.gate.policy import starter_policy

    if init:
        write_output(policy, starter_policy(), "--policy", overwrite=False, parents=False)
        out_console.print(f"wrote {policy} (a starter policy: edit the limits, then commit it)",
                          highlight=False)
        return
    if report is None:
        raise ConfigError("gate: give REPORT (a report.json or run directory), or --init")
    outputs = {"--junit-xml": junit_xml, "--sarif": sarif}
    check_outputs(p for option, path in outputs.items() if path is not None
                  for p in output_file_problems(path, option))  # before any work
    report_path = report / "report.json" if report.is_dir() else report
    baseline_path = baseline / "report.json" if baseline and baseline.is_dir() else baseline
    result = run_gate(report_path, policy, baseline_path=baseline_path)
    if junit_xml is not None:  # written before the verdict is announced
        write_output(junit_xml, ci.junit_xml(result), "--junit-xml")
    if sarif is not None:
        write_output(sarif, json.dumps(ci.sarif(result), indent=2) + "\n", "--sarif")
    _gate_table(result)
    if github_summary:
        for line in ci.github_annotations(result):
            typer.echo(line)
        target = os.environ.get("GITHUB_STEP_SUMMARY")
        if target:
            with open(target, "a", encoding="utf-8") as fh:
                fh.write(ci.markdown_summary(result))
        else:
            err_console.print("[yellow]warning:[/] --github-summary: $GITHUB_STEP_SUMMARY is "
                              "not set; the summary is printed instead", highlight=False)
            typer.echo(ci.markdown_summary(result))
    code = result.exit_code
    if result.missing_required:
        names = sorted({c.rule.metric for c in result.missing_required})
        err_console.print("evidence incomplete: the report does not contain "
                          + ", ".join(names), highlight=False)
    if code != EXIT_OK and exit_zero:
        err_console.print(f"--exit-zero: the gate would exit {code}", highlight=False)
        code = EXIT_OK
    if code != EXIT_OK:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the commands to the privaudit app."""
    app.command("report")(report)
    app.command("verify")(verify)
    app.command("keygen")(keygen)
    app.command("gate")(gate)
