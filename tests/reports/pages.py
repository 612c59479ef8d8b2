"""What a reader sees first: the report's first screen and its first PDF pages, checked and
saved as images (#21). The report tests use it; so does the README's screenshot command:

    .venv/bin/python -m tests.reports.pages runs/demo docs/

which writes ``report-first-screen.png`` (1280 × 900, as a laptop shows it) and
``report-pdf-page-1.png``, ``report-pdf-page-2.png`` (report.pdf as printed by headless
Chromium, rasterised by PDFium) into the folder, and prints the checks.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privaudit.reports.pdf import html_to_pdf, screenshot_html


@dataclass(frozen=True)
class FirstPages:
    table_whole_on_first_screen: bool
    page_1_text: str
    #: control id → whether PDF page 1 holds its title followed by its status
    status_lines_on_page_1: dict[str, bool]
    pdf_pages: int


def _plain(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def check_first_pages(html: Path, controls: list[dict[str, Any]], out: Path) -> FirstPages:
    """Screenshot ``html``'s first screen, print it to PDF, render pages 1–2, and check that
    the verdict table (``#controls``) and every control's status line are on them."""
    import pypdfium2 as pdfium

    out.mkdir(parents=True, exist_ok=True)
    screen = screenshot_html(html, out / "report-first-screen.png", visible_selector="#controls",
                             full_page=False)
    pdf_path = html_to_pdf(html, out / "report.pdf")
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        for i in range(min(2, len(pdf))):
            pdf[i].render(scale=1.4).to_pil().save(out / f"report-pdf-page-{i + 1}.png")
        page_1 = _plain(pdf[0].get_textpage().get_text_range())
        pages = len(pdf)
    finally:
        pdf.close()
    lines: dict[str, bool] = {}
    for c in controls:
        title = _plain(c["title"])
        at = page_1.find(title)
        lines[c["id"]] = at >= 0 and page_1.find(c["status"], at + len(title)) >= 0
    return FirstPages(table_whole_on_first_screen=screen.selector_whole_on_screen,
                      page_1_text=page_1, status_lines_on_page_1=lines, pdf_pages=pages)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tests.reports.pages RUN_DIR OUT_DIR", file=sys.stderr)
        return 2
    run, out = Path(argv[0]), Path(argv[1])
    controls = json.loads((run / "report.json").read_text())["verdict"]["controls"]
    found = check_first_pages(run / "report.html", controls, out)
    (out / "report.pdf").unlink()  # the run's own report.pdf is the artifact; this was a check
    print(f"verdict table whole on the first screen (1280 x 900): "
          f"{found.table_whole_on_first_screen}")
    print(f"every control's status line on PDF page 1: "
          f"{all(found.status_lines_on_page_1.values())} {found.status_lines_on_page_1}")
    print(f"PDF pages: {found.pdf_pages}; images in {out}")
    return 0 if found.table_whole_on_first_screen and all(
        found.status_lines_on_page_1.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
