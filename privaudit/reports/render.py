"""Write the report's files into the run directory, then seal the run.

Order: report.json (with its verdict, crosswalk and own hash) → report.html → summary.md →
report.pdf (printed from report.html by headless Chromium) → manifest.json (sha256 of every
file) → manifest.sig (Ed25519, when a key is given). A format that cannot be rendered never
fails the run and is never dropped silently: the HTML and summary.md say which file is
missing and why, and :class:`RenderOutcome` carries the same note for the command line.

:func:`rerender_report` draws everything again from report.json alone (``privaudit report``):
rendering is deterministic for HTML and Markdown, and report.json is never rewritten, so its
canonical hash never changes.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privaudit.core.errors import ConfigError, PrivauditError
from privaudit.core.provenance import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    load_private_key,
    public_key_fingerprint,
    sign_manifest,
    write_manifest,
)
from privaudit.core.rundir import RunDir, sha256_file, write_text_atomic
from privaudit.core.runguard import rewriting
from privaudit.reports import pdf
from privaudit.reports.html import RenderContext, SigningInfo, render_html
from privaudit.reports.markdown import render_summary
from privaudit.reports.schema import Artifact, Report, parse_report
from privaudit.reports.verdict import finalize_report

FORMATS = ("html", "pdf", "md")
FILE_NAMES = {"html": "report.html", "pdf": "report.pdf", "md": "summary.md"}
#: Environment variable holding the passphrase of an encrypted signing key.
PASSPHRASE_ENV = "PRIVAUDIT_SIGNING_PASSPHRASE"
#: Files of the run that the report's ``artifacts`` never list (they are written after it).
OWN_FILES = frozenset({"report.json", *FILE_NAMES.values(), MANIFEST_NAME, SIGNATURE_NAME})


@dataclass
class RenderOutcome:
    """What was written, what was not and why (format → note), and the seal."""

    written: list[Path] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    manifest: Path | None = None
    signature: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    report: Report | None = None


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode("utf-8") if value else None


def check_formats(formats: Sequence[str]) -> list[str]:
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ConfigError(f"--format: each must be one of {', '.join(FORMATS)}; got "
                          f"{', '.join(bad)}")
    return [f for f in FORMATS if f in formats]


def signing_info(sign_key: Path | None) -> SigningInfo | None:
    """Who will sign: the fingerprint of ``sign_key``'s public half (read before rendering)."""
    if sign_key is None:
        return None
    key = load_private_key(sign_key, passphrase=_passphrase())
    return SigningInfo(fingerprint=public_key_fingerprint(key.public_key()))


def existing_signature(run_dir: Path) -> SigningInfo | None:
    """The signer recorded in ``run_dir/manifest.sig`` (unverified), if any."""
    path = run_dir / SIGNATURE_NAME
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
        return SigningInfo(fingerprint=str(envelope["public_key_fingerprint"]),
                           algorithm=str(envelope.get("algorithm", "Ed25519")),
                           signed_at=envelope.get("signed_at"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pdf_note(formats: Sequence[str]) -> dict[str, str]:
    if "pdf" not in formats:
        return {}
    if pdf.find_chromium() is None:
        return {"pdf": "report.pdf was NOT rendered: headless Chromium was not found "
                       f"({pdf.INSTALL_HINT}); re-render later with "
                       "`privaudit report RUN --format pdf`"}
    return {"pdf": "report.pdf is this page printed by headless Chromium"}


def render_files(document: Mapping[str, Any], out_dir: Path, formats: Sequence[str], *,
                 signing: SigningInfo | None = None) -> RenderOutcome:
    """Render ``formats`` of ``document`` (a parsed report.json) into ``out_dir``."""
    formats = check_formats(formats)
    outcome = RenderOutcome(notes=_pdf_note(formats))

    def draw(notes: dict[str, str]) -> str:
        context = RenderContext(signing=signing, renderings=notes)
        html = render_html(document, context)
        if "html" in formats:
            write_text_atomic(out_dir / FILE_NAMES["html"], html)
        if "md" in formats:
            write_text_atomic(out_dir / FILE_NAMES["md"], render_summary(document, context))
        return html

    start = time.perf_counter()
    html = draw(outcome.notes)
    outcome.seconds["html+md"] = time.perf_counter() - start
    outcome.written += [out_dir / FILE_NAMES[f] for f in formats if f in ("html", "md")]
    if "pdf" in formats and pdf.find_chromium() is not None:
        start = time.perf_counter()
        try:
            _print_pdf(html, out_dir, keep_html="html" in formats)
            outcome.written.append(out_dir / FILE_NAMES["pdf"])
        except PrivauditError as exc:
            outcome.notes["pdf"] = f"report.pdf was NOT rendered: {exc}"
            (out_dir / FILE_NAMES["pdf"]).unlink(missing_ok=True)
            draw(outcome.notes)  # the page and summary say so
        outcome.seconds["pdf"] = time.perf_counter() - start
    return outcome


def _print_pdf(html: str, out_dir: Path, *, keep_html: bool) -> None:
    if keep_html:
        pdf.html_to_pdf(out_dir / FILE_NAMES["html"], out_dir / FILE_NAMES["pdf"])
        return
    with tempfile.TemporaryDirectory(prefix="privaudit-pdf-") as tmp:
        page = Path(tmp) / FILE_NAMES["html"]
        page.write_text(html, encoding="utf-8")
        pdf.html_to_pdf(page, out_dir / FILE_NAMES["pdf"])


def seal_run(run_dir: Path, *, sign_key: Path | None = None) -> tuple[Path, Path | None]:
    """Write manifest.json over every file of the run; sign it when ``sign_key`` is given.

    Call it again whenever a file of the run changes (e.g. after serving an erasure).
    A stale manifest.sig is removed when the run is re-sealed without a key.
    """
    manifest = write_manifest(run_dir)
    if sign_key is None:
        (Path(run_dir) / SIGNATURE_NAME).unlink(missing_ok=True)
        return manifest, None
    return manifest, sign_manifest(run_dir, sign_key, passphrase=_passphrase())


def run_artifacts(run_dir: Path) -> list[Artifact]:
    """sha256 of every file of the run that the report describes (models, data, config,
    signals) — everything but the report's own files, the seal and hidden temporaries."""
    out = []
    for path in sorted(Path(run_dir).rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if (rel in OWN_FILES or path.name.startswith(".") or path.is_symlink()
                or not path.is_file()):
            continue
        out.append(Artifact(path=rel, sha256=sha256_file(path)))
    return out


def write_report(report: Report, run: RunDir, *, formats: Sequence[str] = FORMATS,
                 sign_key: Path | None = None) -> RenderOutcome:
    """Finalize ``report`` (verdict, crosswalk, own hash), write it and its renderings, and
    seal the run directory."""
    signing = signing_info(sign_key)  # a bad key fails before anything is written
    if not report.artifacts:
        report = report.model_copy(update={"artifacts": run_artifacts(run.root)})
    final = finalize_report(report)
    write_text_atomic(run.report_json, final.to_json())
    outcome = render_files(final.model_dump(mode="json"), run.root, formats, signing=signing)
    outcome.manifest, outcome.signature = seal_run(run.root, sign_key=sign_key)
    outcome.report = final
    return outcome


def rerender_report(run_dir: Path, formats: Sequence[str], *, out: Path | None = None,
                    sign_key: Path | None = None) -> RenderOutcome:
    """Re-render from ``run_dir/report.json`` alone into ``out`` (default: the run itself).

    In place, the run is locked and checked against its seal first (a file that differs from
    the manifest or the report's artifacts is refused, never re-sealed), and re-sealed
    afterwards. A signed run is re-signed only with ``sign_key``; re-rendering it in place
    without one is refused (its signature would no longer match) — pass the key, or render
    elsewhere with ``out``.
    """
    run_dir = Path(run_dir)
    report_path = run_dir / "report.json"
    if not report_path.is_file():
        raise ConfigError(f"{run_dir}: no report.json (is this a run directory?)")
    try:
        document = json.loads(report_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{report_path}: not valid JSON ({exc})") from None
    report = parse_report(document, source=str(report_path), allow_unknown_sections=True)
    in_place = out is None or Path(out).resolve() == run_dir.resolve()
    signed = (run_dir / SIGNATURE_NAME).is_file()
    if in_place and signed and sign_key is None:
        raise ConfigError(f"{run_dir} is signed ({SIGNATURE_NAME}); re-rendering changes files "
                          "the signature covers: pass --sign KEY to re-sign, or --out DIR to "
                          "render elsewhere")
    target = run_dir if in_place else Path(out)  # type: ignore[arg-type]
    signing = signing_info(sign_key) if sign_key else existing_signature(run_dir)
    # known fields get their defaults filled in; unknown sections are drawn generically;
    # report.json itself is never rewritten
    drawn = {**document, **report.model_dump(mode="json")}
    if not in_place:
        target.mkdir(parents=True, exist_ok=True)
        return render_files(drawn, target, formats, signing=signing)
    redrawn = {FILE_NAMES[f] for f in check_formats(formats)}
    with rewriting(run_dir, command="report", rewritten=redrawn):
        outcome = render_files(drawn, target, formats, signing=signing)
        if (run_dir / MANIFEST_NAME).is_file() or sign_key is not None:
            outcome.manifest, outcome.signature = seal_run(run_dir, sign_key=sign_key)
    return outcome
