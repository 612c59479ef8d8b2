"""Bad data files never crash `privaudit run`: exit 2 naming the file and line, or success.

A valid JSONL/CSV corpus is mutated by hypothesis — fields dropped or given values of the
wrong type (NaN, lists, huge numbers, lone surrogates), ids duplicated, labels NaN or new,
huge lines — then serialised, and the bytes mutated again (BOM, foreign encodings, random
bytes, truncation). `privaudit run --dry-run` loads the file exactly as a run does.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privaudit.core.errors import DataError
from privaudit.mechanisms.data import load_records
from tests.audit.bad_input_helpers import TREES, assert_contract, run_main, yaml_bytes
from tests.conftest import TINY

FIELDS = ("id", "subject_id", "text", "label")
WORDS = ("refund", "invoice", "password", "delivery", "broken", "account", "late", "charge")
LABELS = ("billing", "tech", "shipping")


def _rows() -> list[dict[str, Any]]:
    rows = []
    for s in range(60):
        for j in range(2):
            n = 3 * s + j
            text = " ".join(WORDS[(n * k + s) % len(WORDS)] for k in range(1, 6))
            rows.append({"id": f"r{s:03d}-{j}", "subject_id": f"s{s:03d}", "text": text,
                         "label": LABELS[(s + j) % 3]})
    return rows


ROWS = _rows()


def _config(data: Path) -> dict[str, Any]:
    cfg = copy.deepcopy(TINY)
    cfg["data"] = {"source": "file", "path": str(data), "test_records": 8,
                   "audit": {"members": 8, "nonmembers": 8}}
    return cfg


def _serialise(rows: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt == "jsonl":
        lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    names = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else str(v) for k, v in r.items()})
    return buf.getvalue().encode("utf-8", "surrogatepass")


@st.composite
def row_mutations(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = copy.deepcopy(ROWS)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(rows) - 1))
        kind = draw(st.sampled_from(["drop", "value", "dup", "label", "huge", "extra"]))
        if kind == "drop":
            rows[i].pop(draw(st.sampled_from(FIELDS)), None)
        elif kind == "value":
            rows[i][draw(st.sampled_from(FIELDS))] = draw(TREES)
        elif kind == "dup":
            source = rows[draw(st.integers(0, len(rows) - 1))]
            if "id" in source:  # an earlier "drop" may have removed it
                rows[i]["id"] = source["id"]
        elif kind == "label":
            rows[i]["label"] = draw(st.sampled_from(
                [float("nan"), "NaN", "nan", "null", "", " ", "brand-new-label", 3, True, None]))
        elif kind == "huge":
            rows[i]["text"] = "x" * draw(st.sampled_from([10_000, 200_000]))
        else:
            rows[i][draw(st.text(min_size=1, max_size=6))] = draw(TREES)
    return rows


@st.composite
def byte_mutations(draw: st.DrawFn, blob: bytes) -> bytes:
    kind = draw(st.sampled_from(["none", "bom", "insert", "truncate", "latin1", "utf16",
                                 "empty"]))
    if kind == "bom":
        return b"\xef\xbb\xbf" + blob
    if kind == "insert":
        at = draw(st.integers(0, len(blob)))
        return blob[:at] + draw(st.binary(min_size=1, max_size=8)) + blob[at:]
    if kind == "truncate":
        return blob[: draw(st.integers(0, len(blob)))]
    if kind == "latin1":
        return blob.decode("utf-8", "surrogatepass").replace("refund", "réfund").encode(
            "latin-1", "replace")
    if kind == "utf16":
        return blob.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
    if kind == "empty":
        return b""
    return blob


def _dry_run(blob: bytes, fmt: str) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / f"data.{fmt}"
        data.write_bytes(blob)
        cfg = Path(tmp) / "config.yaml"
        cfg.write_bytes(yaml_bytes(_config(data)))
        out = Path(tmp) / "run"
        outcome = run_main("run", cfg, "--out", out, "--dry-run")
        assert_contract(outcome)
        assert not out.exists()
        return outcome


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fmt=st.sampled_from(["jsonl", "csv"]), rows=row_mutations(), data=st.data())
def test_a_mutated_data_file_exits_2_naming_the_line_or_loads(
    fmt: str, rows: list[dict[str, Any]], data: st.DataObject
) -> None:
    blob = data.draw(byte_mutations(_serialise(rows, fmt)))
    outcome = _dry_run(blob, fmt)
    if outcome.code == 2:  # names the file (and the line), or the config field it breaks
        assert re.search(rf"data\.{fmt}(:\d+)?: |\b[a-z_]+\.[a-z_.]+: ", outcome.err), \
            outcome.err
    if "not UTF-8" in outcome.err:  # a foreign byte is named by its line, never an offset
        assert re.search(rf"data\.{fmt}:\d+: not UTF-8 text", outcome.err), outcome.err


def test_the_unmutated_corpus_loads_in_both_formats() -> None:
    for fmt in ("jsonl", "csv"):
        outcome = _dry_run(_serialise(ROWS, fmt), fmt)
        assert outcome.code == 0, outcome.text


@pytest.mark.parametrize(
    ("fmt", "edit", "says"),
    [
        ("jsonl", lambda b: b"", "no records"),
        ("jsonl", lambda b: b"\xef\xbb\xbf" + b, None),  # a BOM is fine
        ("csv", lambda b: b"\xef\xbb\xbf" + b, None),
        ("jsonl", lambda b: b.replace(b'"label": "tech"', b'"label": NaN', 1), "is NaN"),
        ("jsonl", lambda b: b.replace(b'"label": "tech"', b'"label": "NaN"', 1),
         "a missing value"),
        ("csv", lambda b: b.replace(b",tech\r\n", b",nan\r\n", 1), "a missing value"),
        ("jsonl", lambda b: b.replace(b'"r000-1"', b'"r000-0"', 1), "duplicate id 'r000-0'"),
        ("jsonl", lambda b: b.replace(b'"s000"', b'"\\ud800"', 1), "not valid Unicode"),
        ("jsonl", lambda b: b.replace(b'"s000"', b"9" * 5000, 1), "not valid JSON"),
        ("jsonl", lambda b: b"[" * 100_000 + b"\n" + b, "not valid JSON"),
        ("jsonl", lambda b: b.replace(b'"s000"', b"true", 1), "must be a string or an integer"),
        ("jsonl", lambda b: b.replace(b'"s000"', b'"   "', 1), "missing field(s) subject_id"),
        ("csv", lambda b: b.replace(b"\r\n", b"\x00\r\n", 3), "data.csv:2: missing field"),
        ("csv", lambda b: b.replace(b"label", b"lbl", 1), "missing field(s) label"),
        ("jsonl", lambda b: b.decode().encode("utf-16"), "not UTF-8"),
        ("csv", lambda b: b + b'x,s1,"' + b"y" * 200_000 + b'",tech\r\n', "malformed CSV"),
    ],
)
def test_hostile_data_files_exit_2_naming_the_line(fmt: str, edit: Any, says: str | None
                                                   ) -> None:
    outcome = _dry_run(edit(_serialise(ROWS, fmt)), fmt)
    if says is None:
        assert outcome.code == 0, outcome.text
    else:
        assert outcome.code == 2
        assert says in outcome.err, outcome.err


def test_a_nan_label_names_the_line_in_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("id,subject_id,text,label\na,s1,hi,x\nb,s2,yo,NaN\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d.csv:3: field 'label' is 'NaN', a missing value"):
        load_records(path, need_label=True)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_mixed_encoding_data_file_names_the_line_of_the_foreign_byte(fmt: str) -> None:
    """A latin-1 'é' deep in a UTF-8 file was reported as a byte offset of the reader's
    buffer; now the line (and column) of the first foreign byte."""
    blob = _serialise(ROWS, fmt)
    at = blob.index(b"invoice", len(blob) // 2)
    line = blob.count(b"\n", 0, at) + 1
    mixed = blob[:at] + "é".encode("latin-1") + blob[at:]
    outcome = _dry_run(mixed, fmt)
    assert outcome.code == 2
    assert f"data.{fmt}:{line}: not UTF-8 text (invalid continuation byte: byte 0xe9" \
        in outcome.err, outcome.err
    assert "at byte" not in outcome.err


@pytest.mark.parametrize(("fmt", "edit"), [
    ("jsonl", lambda b: b.replace(b'"text": "', b'"text": "", "x": "', 1)),
    ("jsonl", lambda b: b.replace(b'"text": "', b'"text": "   ", "x": "', 1)),
    ("csv", lambda b: b.replace(b",s000,", b",s000,,", 1).replace(b",billing\r\n", b"\r\n", 1)),
])
def test_an_empty_text_is_called_empty_not_missing(fmt: str, edit: Any) -> None:
    outcome = _dry_run(edit(_serialise(ROWS, fmt)), fmt)
    assert outcome.code == 2, outcome.text
    assert f"data.{fmt}:" in outcome.err and "field 'text' is empty" in outcome.err, outcome.err
    assert "missing" not in outcome.err
