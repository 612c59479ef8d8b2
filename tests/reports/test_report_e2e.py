"""End to end on the tiny run: every file of the run directory, signed, verified, screenshotted."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from privaudit.core.commitment import verify_seed_commitment
from privaudit.reports.pdf import find_chromium, screenshot_html
from tests.reports.cli_helpers import run_cli

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="headless Chromium not found: `apt-get install -y chromium` (make test does this "
    "as root) or set PRIVAUDIT_CHROMIUM")


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny audit run once through the CLI with --sign (all formats Chromium allows)."""
    from privaudit.audit.cli import main
    from tests.conftest import TINY

    root = tmp_path_factory.mktemp("e2e")
    formats = ["html", "pdf", "md"] if find_chromium() else ["html", "md"]
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "report": {"formats": formats}}))
    assert main(["keygen", "--out", str(root / "keys")]) == 0
    start = time.perf_counter()
    code = main(["run", str(config), "--out", str(root / "run"),
                 "--sign", str(root / "keys" / "privaudit-ed25519.pem")])
    return {"code": code, "root": root, "run": root / "run", "seconds":
            time.perf_counter() - start, "formats": formats}


def test_a_signed_run_writes_every_file_of_the_contract(signed_run: dict[str, Any]) -> None:
    assert signed_run["code"] == 0
    run: Path = signed_run["run"]
    expected = {"report.json", "report.html", "summary.md", "manifest.json", "manifest.sig"}
    if "pdf" in signed_run["formats"]:
        expected.add("report.pdf")
    assert expected <= {p.name for p in run.iterdir()}
    report = json.loads((run / "report.json").read_text())
    assert report["verdict"]["status"] in ("pass", "warn", "fail", "incomplete")
    assert [r["clause"] for r in report["crosswalk"]][:2] == ["Art. 17", "Art. 25"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["report_sha256"] == report["report_sha256"]


def test_the_signed_run_verifies_against_its_public_key(
        signed_run: dict[str, Any], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    key = signed_run["root"] / "keys" / "privaudit-ed25519.pub.pem"
    result = run_cli(capsys, monkeypatch, "verify", signed_run["run"], "--public-key", key)
    assert result.code == 0, result.text
    assert "signature by sha256:" in result.out
    assert "config.yaml's seed opens the report's seed commitment" in result.out


def test_the_pipeline_report_commits_to_the_seed_without_carrying_it(
        signed_run: dict[str, Any]) -> None:
    run = signed_run["run"]
    report = json.loads((run / "report.json").read_text())
    salt = bytes.fromhex(json.loads((run / "data" / "seed-opening.json").read_text())["salt"])
    seed = yaml.safe_load((run / "config.yaml").read_text())["seed"]
    assert verify_seed_commitment(report["run"]["seed_commitment"], seed, salt)
    assert "seed" not in report["run"]  # only the commitment; the manifest covers the opening
    files = json.loads((run / "manifest.json").read_text())["files"]
    assert "data/seed-opening.json" in {f["path"] for f in files}


@needs_chromium
def test_report_html_loads_in_headless_chromium_with_the_verdict_visible(
        signed_run: dict[str, Any], tmp_path: Path) -> None:
    start = time.perf_counter()
    page = screenshot_html(signed_run["run"] / "report.html", tmp_path / "report.png",
                           visible_selector="#verdict-status")
    seconds = time.perf_counter() - start
    assert page.png_path.stat().st_size > 10_000
    assert page.failed_requests == [] and page.external_requests == [] and page.errors == []
    assert page.selector_visible and page.selector_above_fold
    assert page.selector_text.startswith("Verdict: ")
    assert seconds < 30


@needs_chromium
def test_report_pdf_is_a_tagged_pdf(signed_run: dict[str, Any]) -> None:
    data = (signed_run["run"] / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and b"/StructTreeRoot" in data
