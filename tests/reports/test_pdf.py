"""PDF and screenshot via headless Chromium; the static self-containment check."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from privaudit.reports.html_refs import external_references
from privaudit.reports.pdf import (
    RenderEngineUnavailable,
    find_chromium,
    html_to_pdf,
    screenshot_html,
)

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="headless Chromium not found: apt-get install -y chromium (or set PRIVAUDIT_CHROMIUM)")

PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
SELF_CONTAINED = f"""<!doctype html><html><head><meta charset="utf-8"><title>Audit</title>
<style>.verdict {{ background: #0a0; color: #fff; }}</style></head><body>
<h1 id="verdict" class="verdict">Verdict: PASS — ε = 8.0</h1><img alt="roc" src="{PIXEL}">
<a href="https://eur-lex.europa.eu/">GDPR</a></body></html>"""


@needs_chromium
def test_html_renders_to_a_pdf(tmp_path: Path) -> None:
    (tmp_path / "r.html").write_text(SELF_CONTAINED, encoding="utf-8")
    start = time.perf_counter()
    out = html_to_pdf(tmp_path / "r.html", tmp_path / "out" / "r.pdf")
    seconds = time.perf_counter() - start
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]
    assert b"/StructTreeRoot" in data  # tagged PDF, readable by assistive technology
    assert seconds < 30


@needs_chromium
def test_a_self_contained_page_loads_without_failed_requests_and_shows_the_verdict(
        tmp_path: Path) -> None:
    (tmp_path / "r.html").write_text(SELF_CONTAINED, encoding="utf-8")
    page = screenshot_html(tmp_path / "r.html", tmp_path / "r.png", visible_selector="#verdict")
    assert page.png_path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert page.requests[0] == page.url  # the document itself was loaded
    assert page.self_contained and page.failed_requests == [] and page.errors == []
    assert page.selector_visible and page.selector_above_fold
    assert "Verdict: PASS" in page.selector_text


@needs_chromium
def test_missing_and_external_resources_are_reported_as_failed_requests(tmp_path: Path) -> None:
    (tmp_path / "r.html").write_text(
        '<html><body><h1 id="verdict" style="display:none">hidden</h1>'
        '<img src="missing.png"><img src="https://example.com/x.png">'
        '<script>throw new Error("broken script")</script></body></html>')
    page = screenshot_html(tmp_path / "r.html", tmp_path / "r.png", visible_selector="#verdict")
    failed = {f.url.rsplit("/", 1)[-1] for f in page.failed_requests}
    assert failed == {"missing.png", "x.png"}
    assert not page.self_contained and len(page.external_requests) == 2
    assert any("broken script" in e for e in page.errors)
    assert not page.selector_visible


def test_without_chromium_rendering_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVAUDIT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    (tmp_path / "r.html").write_text(SELF_CONTAINED)
    assert find_chromium() is None
    with pytest.raises(RenderEngineUnavailable, match="apt-get install -y chromium"):
        html_to_pdf(tmp_path / "r.html", tmp_path / "r.pdf")


def test_static_check_lists_fetched_resources_but_not_links_or_data_uris() -> None:
    html = ('<link rel="stylesheet" href="https://cdn.example/x.css">'
            '<style>@import "y.css"; body { background: url(bg.png) }</style>'
            f'<img src="{PIXEL}" srcset="a.png 1x, {PIXEL} 2x"><a href="https://x.org">x</a>'
            '<svg><use href="#icon"/><image href="pic.svg"/></svg>'
            '<div style="background-image: url(\'data:image/png;base64,AA\')"></div>'
            '<script src="app.js"></script>')
    assert external_references(html) == ["https://cdn.example/x.css", "y.css", "bg.png",
                                         "a.png", "pic.svg", "app.js"]
    assert external_references(SELF_CONTAINED) == []
