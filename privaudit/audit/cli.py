"""The ``privaudit`` command line (typer). Exit codes are mapped in one place, :func:`main`.

0 pass · 1 gate or verification failed · 2 usage or config error · 3 internal error ·
4 evidence incomplete. A user mistake never shows a traceback; an internal error never
exits 0.
"""

from __future__ import annotations

import json
import sys
import traceback
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from privaudit.audit.cli_reports import SIGN_HELP, print_render_notes
from privaudit.audit.cli_reports import register as register_report_commands
from privaudit.audit.config import AuditConfig, config_from_dict, json_schema, load_config
from privaudit.core.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ConfigError,
    Interrupted,
    PrivauditError,
)
from privaudit.core.progress import default_reporter

app = typer.Typer(
    name="privaudit",
    help="Audit privacy and machine unlearning in federated fine-tuning of transformers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect and validate config files.", no_args_is_help=True)
app.add_typer(config_app, name="config")

out_console = Console()
err_console = Console(stderr=True)

PRESETS = ("demo", "causal-lm")


def load_preset(name: str) -> AuditConfig:
    if name not in PRESETS:
        raise ConfigError(f"--preset: must be one of {', '.join(PRESETS)} (got {name!r})")
    text = resources.files("privaudit.audit.presets").joinpath(f"{name}.yaml").read_text()
    return config_from_dict(yaml.safe_load(text))


def _summary(outcome_report: object, run_dir: Path) -> None:
    from privaudit.reports.schema import Report

    report = outcome_report if isinstance(outcome_report, Report) else None
    if report is None:
        return
    table = Table(title=f"privaudit — {escape(report.run.name)}", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row(f"utility ({report.utility.metric})", f"{report.utility.value:.3f}")
    # every attack on the first model attacked (the federated one); the strongest on the others
    models = list(dict.fromkeys(a.model for a in report.attacks))
    for a in (a for a in report.attacks if a.model == models[0]):
        table.add_row(f"{a.attack} attack AUC ({a.model})", f"{a.auc:.3f}")
        tpr = a.tpr_at_fpr.get("0.01")
        if tpr is not None:
            table.add_row(
                f"{a.attack} TPR at 1% FPR",
                f"{100 * tpr.value:.1f}% [{100 * tpr.ci_low:.1f}, {100 * tpr.ci_high:.1f}]"
                if tpr.value is not None else f"not estimable (≤ {100 * tpr.ci_high:.1f}%)",
            )
    for name in models[1:]:
        top = max((a for a in report.attacks if a.model == name), key=lambda a: a.auc)
        table.add_row(f"strongest attack AUC ({name})", f"{top.auc:.3f} ({top.attack})")
    if report.blind_baseline is not None:
        b = report.blind_baseline
        table.add_row("blind baseline AUC (texts only)",
                      f"{b.auc:.3f}{' — the split leaks' if b.leaks else ''}")
    if report.exposure is not None:
        e = report.exposure
        table.add_row(f"canary exposure ({e.model})",
                      f"{e.mean_bits:.2f} bits mean, {e.max_bits:.2f} max")
    for stage, secs in report.run.seconds.items():
        table.add_row(f"time: {stage}", f"{secs:.1f} s")
    if report.verdict is not None:
        table.add_row("verdict", report.verdict.status.upper())
        for c in report.verdict.controls:  # which controls did not pass, and why not
            if c.status != "PASS" and c.applicable:
                table.add_row(f"  not passed: {c.id}", c.status)
    table.add_row("report", str(run_dir / "report.html"))
    out_console.print(table)


def _run(cfg: AuditConfig, out: Path, resume: bool, engine: str, sign: Path | None = None,
         dry_run: bool = False) -> None:
    from privaudit.audit.estimate import check_budget, plan_run
    from privaudit.audit.outpaths import check_outputs, output_dir_problems
    from privaudit.audit.pipeline import run_audit
    from privaudit.reports.render import signing_info

    try:
        signing_info(sign or cfg.report.sign_key)  # a bad key fails before any work
    except ConfigError as exc:
        raise ConfigError(f"{'--sign' if sign else 'report.sign_key'}: {exc}") from None
    check_outputs(output_dir_problems(out, "--out"))  # /dev/null/run: refused before any work
    estimate = plan_run(cfg)  # every config-and-data check (audit/preflight.py), nothing written
    for line in estimate.lines():
        err_console.print(line, highlight=False, markup=False, soft_wrap=True)
    check_budget(cfg, estimate)  # a run over budget.* is refused here (exit 2)
    if dry_run:
        out_console.print(f"dry run: config, data and requests are valid; nothing written "
                          f"to {out}", highlight=False)
        return
    try:
        outcome = run_audit(
            cfg, out, resume=resume, engine=engine, reporter=default_reporter(), sign_key=sign
        )
    except KeyboardInterrupt:  # Ctrl-C: say what the run directory kept (exit 130)
        from privaudit.audit.runclaim import describe_kept

        raise Interrupted(describe_kept(out.resolve())) from None
    _summary(outcome.report, outcome.run_dir)
    if outcome.rendered is not None:
        print_render_notes(outcome.rendered.notes)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="run directory")] = Path("runs/demo"),
    preset: Annotated[str, typer.Option(help=f"one of: {', '.join(PRESETS)}")] = "demo",
    resume: Annotated[bool, typer.Option("--resume", help="reuse completed stages")] = False,
    sign: Annotated[Path | None, typer.Option("--sign", help=SIGN_HELP)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check the config, data and "
                                          "requests, print the estimate, write nothing")] = False,
) -> None:
    """Run the embedded default end to end (no network, no data needed)."""
    _run(load_preset(preset), out, resume, "inprocess", sign, dry_run)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="YAML config file")],
    out: Annotated[Path, typer.Option("--out", help="run directory")] = Path("runs/latest"),
    resume: Annotated[bool, typer.Option("--resume", help="reuse completed stages")] = False,
    engine: Annotated[str, typer.Option(help="inprocess | flower")] = "inprocess",
    sign: Annotated[Path | None, typer.Option("--sign", help=SIGN_HELP)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check the config, data and "
                                          "requests, print the estimate, write nothing")] = False,
) -> None:
    """Run the audit described by CONFIG into --out."""
    _run(load_config(config), out, resume, engine, sign, dry_run)


@app.command()
def erase(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="a finished run directory")],
    request: Annotated[Path | None, typer.Option("--request", help="REQUEST.yaml: one request "
                                                 "or a list ({id, kind: record|subject|client, "
                                                 "ids})")] = None,
    request_stream: Annotated[Path | None, typer.Option(
        "--request-stream", help="REQUESTS.jsonl: one request per line, served one after "
        "another, each on the model the one before produced; every certificate says whether "
        "the earlier erasures stay erased")] = None,
    methods: Annotated[str | None, typer.Option(
        "--methods", help="comma-separated unlearners (default: the run's unlearning.methods, "
        "else all it supports); the oracle runs unless unlearning.oracle is false")] = None,
    sign: Annotated[Path | None, typer.Option("--sign", help=SIGN_HELP)] = None,
) -> None:
    """Serve an erasure request on a finished run: unlearned models, results, report again."""
    from privaudit.audit.erase_run import erase_finished_run
    from privaudit.audit.threads import configure_threads

    configure_threads()
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    if (request is None) == (request_stream is None):
        raise ConfigError("erase: give exactly one of --request REQUEST.yaml or "
                          "--request-stream REQUESTS.jsonl (got "
                          f"{'both' if request else 'neither'})")
    results = erase_finished_run(run_dir, request or request_stream,  # type: ignore[arg-type]
                                 methods=chosen, reporter=default_reporter(), sign_key=sign,
                                 stream=request_stream is not None)
    table = Table(title=f"privaudit erase — {run_dir}", show_header=True)
    for column in ("request", "method", "exactness", "seconds", "speedup", "forget loss",
                   "earlier erased"):
        table.add_column(column)
    for r in results:
        speedup = f"{r.speedup_vs_oracle:.1f}x" if r.speedup_vs_oracle else "-"
        loss = f"{r.forget.mean_loss_before:.3f} -> {r.forget.mean_loss_after:.3f}"
        seq = r.sequence
        earlier = "-" if seq is None or seq.earlier_auc is None else (
            f"AUC {seq.earlier_auc:.2f} (oracle {seq.earlier_auc_oracle:.2f})")
        table.add_row(r.request_id, r.method, r.exactness, f"{r.seconds:.1f}", speedup, loss,
                      earlier)
    out_console.print(table)


@app.command("audit-model")
def audit_model_command(
    base: Annotated[Path, typer.Option("--base", help="local Hugging Face model directory")],
    task: Annotated[str, typer.Option("--task", help="causal-lm | classification")],
    members: Annotated[Path, typer.Option("--members", help="records the model was trained "
                                          "on (JSONL, CSV, Parquet)")],
    nonmembers: Annotated[Path, typer.Option("--nonmembers", help="records it never saw, "
                                             "drawn from the same pool")],
    adapter: Annotated[Path | None, typer.Option("--adapter", help="peft LoRA adapter "
                                                 "directory on top of --base")] = None,
    dp_claim: Annotated[Path | None, typer.Option("--dp-claim", help="YAML {epsilon, delta, "
                                                  "unit_of_privacy}: a declared DP claim to "
                                                  "test")] = None,
    unlearned: Annotated[Path | None, typer.Option("--unlearned", help="peft adapter on "
                                                   "--base after erasing --forget")] = None,
    forget: Annotated[Path | None, typer.Option("--forget", help="the erased records (members "
                                                "all)")] = None,
    oracle: Annotated[Path | None, typer.Option("--oracle", help="peft adapter retrained "
                                                "without --forget: the yardstick")] = None,
    references: Annotated[int, typer.Option("--references", help="reference models "
                                            "privaudit trains by --reference-recipe (even; "
                                            "LiRA needs 4)")] = 0,
    reference_recipe: Annotated[Path | None, typer.Option(
        "--reference-recipe", help="YAML {epochs, batch_size, learning_rate, optimizer, dp}: "
        "how the adapter was fine-tuned")] = None,
    population: Annotated[Path | None, typer.Option(
        "--population", help="more records the model never saw: the references train on "
        "halves of them with the audited ones; RMIA's population points")] = None,
    out: Annotated[Path, typer.Option("--out", help="run directory (new or empty)")] = Path(
        "runs/audit-model"),
    sign: Annotated[Path | None, typer.Option("--sign", help=SIGN_HELP)] = None,
    max_length: Annotated[int, typer.Option("--max-length", min=8, max=8192,
                                            help="tokens per record")] = 128,
    seed: Annotated[int, typer.Option("--seed", help="bootstrap and cross-validation seed")] = 0,
) -> None:
    """Audit a model trained elsewhere (no retraining): attacks, blind baseline, report."""
    from privaudit.audit.audit_model import audit_model
    from privaudit.audit.threads import configure_threads

    configure_threads()
    report = audit_model(base, task=task, members=members, nonmembers=nonmembers,
                         adapter=adapter, dp_claim=dp_claim, unlearned=unlearned,
                         forget=forget, oracle=oracle, population=population,
                         references=references, reference_recipe=reference_recipe,
                         out=out, sign_key=sign,
                         max_length=max_length, seed=seed, reporter=default_reporter())
    _summary(report, out)


register_report_commands(app)  # report, verify, keygen, gate


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the config."""
    out_console.print_json(json.dumps(json_schema()))


@config_app.command("validate")
def config_validate(config: Annotated[Path, typer.Argument(help="YAML config file")]) -> None:
    """Exit 0 when CONFIG is valid; otherwise list every problem and exit 2."""
    load_config(config)
    out_console.print(f"{config}: valid")


def _print_error(exc: PrivauditError) -> None:
    # the message is user data (a field, a value, a file name): never read as rich markup
    label = "interrupted" if isinstance(exc, Interrupted) else "error"
    err_console.print(f"[bold red]{label}:[/] {escape(str(exc))}", highlight=False)
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            if problem != str(exc):
                err_console.print(f"  - {problem}", highlight=False, markup=False)


def _is_click_exception(exc: BaseException) -> bool:
    # typer vendors click, so match the class by name rather than by import path
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the typer app and map exceptions to the contract's exit codes."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except PrivauditError as exc:
        _print_error(exc)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort as exc:
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            err_console.print("interrupted (Ctrl-C)", highlight=False)
            return EXIT_INTERRUPTED
        err_console.print("aborted")
        return EXIT_USAGE
    except Exception as exc:
        if _is_click_exception(exc):  # usage errors: bad option, unknown command
            exc.show()  # type: ignore[attr-defined]
            return int(exc.exit_code) or EXIT_USAGE  # type: ignore[attr-defined]
        err_console.print(f"[bold red]internal error:[/] {type(exc).__name__}: "
                          f"{escape(str(exc))}")
        traceback.print_exc(file=sys.stderr)
        return EXIT_INTERNAL
    return rv if isinstance(rv, int) else 0
