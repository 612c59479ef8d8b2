"""The report a regulator reads (#21): the decision first, each thing said once, plain words
for ε, a glossary, crosswalk statuses that never read as compliance on presence alone."""

from __future__ import annotations

import html as html_lib
import re
from collections import Counter
from pathlib import Path
from typing import Any

from privaudit.reports.html import prepare_document, render_html
from privaudit.reports.markdown import render_summary
from privaudit.reports.schema import Report
from privaudit.reports.verdict import finalize_report
from tests.reports.pages import check_first_pages
from tests.reports.samples import full_document, sample_report
from tests.reports.test_pdf import needs_chromium

MODELS = ["federated", "oracle/req-0001", "gradient_ascent/req-0001", "graddiff/req-0001",
          "npo/req-0001", "sisa/req-0001", "finetune_retain/req-0001", "federaser/req-0001"]
WARNING = "TPR at FPR=0.001 is not measurable with 200 non-members"


def _many_models(warn: bool = True) -> Report:
    """The sample report with 4 attacks on each of 8 models (the demo's shape)."""
    report = sample_report(nonmembers=200)
    base = report.attacks[0]
    attacks = [base.model_copy(update={"attack": name, "model": model,
                                       "auc": 0.5 + 0.01 * i + 0.002 * j,
                                       "warnings": [WARNING] if warn else []})
               for i, model in enumerate(MODELS)
               for j, name in enumerate(["loss", "rmia", "rmia-offline", "reference"])]
    return finalize_report(report.model_copy(update={"attacks": attacks}))


def _text(page: str) -> str:
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r'<img [^>]*>', " ", page)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", page))


def _sentences(text: str) -> list[str]:
    return [s for s in (" ".join(p.split()) for p in re.split(r"(?<=[.!?])\s+", text))
            if len(s.split()) >= 6]


def test_summary_md_names_the_strongest_attack_per_model_in_at_most_40_lines() -> None:
    md = render_summary(_many_models().model_dump(mode="json"))
    lines = md.splitlines()
    assert len(lines) <= 40, len(lines)
    attack_lines = [line for line in lines if line.startswith("  - ")]
    assert len(attack_lines) == len(MODELS)
    for model, line in zip(MODELS, attack_lines, strict=True):
        assert model.replace("_", "\\_") in line and "reference AUC" in line  # the strongest


def test_the_decision_comes_first_then_a_table_of_contents_then_the_annex() -> None:
    page = render_html(full_document())
    order = ["verdict", "scope", "epsilon", "not-tested", "contents", "verdict-details",
             "crosswalk", "attacks", "glossary"]
    at = [page.index(f'id="{i}"') for i in order]
    assert at == sorted(at), dict(zip(order, at, strict=True))
    scope = page[at[1]:at[2]]
    assert "Synthetic" in scope and "Models audited" in scope and "Sample sizes" in scope


def test_the_epsilon_box_states_the_odds_factor_with_its_delta_and_the_policy() -> None:
    doc = full_document()
    eps, delta = doc["privacy"]["dp"]["epsilon"], doc["privacy"]["dp"]["delta"]
    box = _text(render_html(doc)).split("What the privacy guarantee means")[1][:900]
    assert f"e^{eps:.3g}" in box and f"{__import__('math').exp(eps):,.0f}" in box
    assert f"δ = {delta:g}" in box and "calls ε above 10 weak" in box


def test_every_glossary_link_has_a_definition_and_verdict_terms_are_linked() -> None:
    page = render_html(_many_models().model_dump(mode="json"))
    links = set(re.findall(r'href="#term-([\w-]+)"', page))
    defined = set(re.findall(r'<dt id="term-([\w-]+)"', page))
    assert links and links <= defined
    verdict = page[page.index('id="controls"'):page.index('id="scope"')]
    assert 'href="#term-auc"' in verdict


def test_no_sentence_appears_more_than_twice_in_a_32_result_report() -> None:
    page = render_html(_many_models().model_dump(mode="json"))
    counts = Counter(_sentences(_text(page)))
    repeated = {s: n for s, n in counts.items() if n > 2}
    assert not repeated, repeated
    assert page.count(WARNING) == 2  # once in the attack section, once in the limitations


def test_the_verdict_line_names_one_attack_per_model_not_every_result() -> None:
    report = _many_models()
    assert report.verdict is not None
    mia = next(c for c in report.verdict.controls if c.id == "membership-inference")
    assert mia.reason.count("attack on the") <= len(MODELS)


def test_a_crosswalk_row_is_supported_only_when_its_controls_passed() -> None:
    report = _many_models()
    assert report.verdict is not None
    status = {c.id: c.status for c in report.verdict.controls}
    for row in report.crosswalk:
        judged = [status[c] for c in row.controls]
        if row.status == "SUPPORTED":
            assert judged and all(s == "PASS" for s in judged), row.clause
        assert row.status in ("SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "NOT EVALUATED")


def _demo_shaped() -> dict[str, Any]:
    """Every section filled in, 32 attack results, and the long erasure reasons of the demo."""
    doc = full_document()
    doc["attacks"] = [a.model_dump(mode="json") for a in _many_models().attacks]
    return doc


@needs_chromium
def test_the_first_screen_shows_the_whole_verdict_and_pdf_page_1_every_status_line(
        tmp_path: Path) -> None:
    doc = _demo_shaped()
    (tmp_path / "report.html").write_text(render_html(doc), encoding="utf-8")
    controls = prepare_document(doc)[0]["verdict"]["controls"]
    found = check_first_pages(tmp_path / "report.html", controls, tmp_path / "pages")
    assert found.table_whole_on_first_screen
    assert all(found.status_lines_on_page_1.values()), (found.status_lines_on_page_1,
                                                        found.page_1_text)
    for name in ("report-first-screen.png", "report-pdf-page-1.png", "report-pdf-page-2.png"):
        assert (tmp_path / "pages" / name).read_bytes().startswith(b"\x89PNG")
