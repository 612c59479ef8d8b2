from __future__ import annotations

import json
from pathlib import Path

import pytest

from privaudit.core.errors import DataError
from privaudit.mechanisms.data import Record, load_records


def _jsonl(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


GOOD = {"id": "a", "subject_id": "s1", "text": "hello", "label": "x"}


def test_jsonl_and_csv_load_the_same_records(tmp_path: Path) -> None:
    rows = [GOOD, {"id": "b", "subject_id": "s2", "text": "world", "label": "y", "site": "h1"}]
    from_jsonl = load_records(_jsonl(tmp_path, rows), need_label=True)
    csv_path = tmp_path / "data.csv"
    csv_path.write_text("id,subject_id,text,label\na,s1,hello,x\nb,s2,world,y\n", encoding="utf-8")
    from_csv = load_records(csv_path, need_label=True)
    def key(rs: list[Record]) -> list[tuple[str, str, str | None]]:
        return [(r.id, r.text, r.label) for r in rs]

    assert key(from_jsonl) == key(from_csv)
    assert from_jsonl[1].fields == {"site": "h1"}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([GOOD, GOOD], r"data.jsonl:2: duplicate id 'a' \(first on line 1\)"),
        ([{"id": "a", "text": "t", "label": "x"}], r"data.jsonl:1: missing field\(s\) subject_id"),
        ([{**GOOD, "text": "   "}], r"data.jsonl:1: field 'text' is empty"),
        ([{**GOOD, "label": None}], r"data.jsonl:1: missing field\(s\) label"),
        ([GOOD, "just a string"], r"data.jsonl:2: each line must be a JSON object"),
    ],
)
def test_bad_rows_raise_data_error_naming_the_line(
    tmp_path: Path, rows: list[object], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        load_records(_jsonl(tmp_path, rows), need_label=True)


def test_unknown_label_names_line_and_allowed_labels(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, [GOOD, {**GOOD, "id": "b", "label": "zzz"}])
    with pytest.raises(DataError, match=r":2: unknown label 'zzz' \(allowed: x, y\)"):
        load_records(path, need_label=True, allowed_labels=["x", "y"])


def test_invalid_json_and_bad_encoding_are_data_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a",\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:1: not valid JSON"):
        load_records(path, need_label=False)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,subject_id,text\na,s,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_records(latin, need_label=False)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match=r"unknown format '.txt'"):
        load_records(path, need_label=False)
    with pytest.raises(DataError, match="file not found"):
        load_records(tmp_path / "missing.jsonl", need_label=False)
