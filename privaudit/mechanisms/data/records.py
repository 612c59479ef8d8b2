"""Records and the loader for a user's own data: JSONL, CSV, Parquet or a
``datasets.save_to_disk`` directory (the last two: ``columnar.py``).

A record has ``id``, ``subject_id``, ``text`` and, for classification, ``label``;
``data.columns`` maps these names to a file's own column names (``{text: body}``), for every
format. Any other fields are kept in ``fields`` (``partition.scheme: by_field`` reads them);
a file column named like a mapped key (a ``text`` column when ``text`` maps to ``body``) is
left out. Every problem in a file is a :class:`DataError` naming the file and the line (for
Parquet and Arrow: ``row N``, from 1): not UTF-8 (a leading BOM is fine),
not JSON, a missing or blank field, a value that is not a string or an integer (NaN, a list,
a boolean), a lone surrogate, a label that spells a missing value (``NaN``, ``null``), a
duplicate id, no records at all.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from privaudit.core.errors import DataError
from privaudit.mechanisms.data.columnar import (
    FORMATS,
    arrow_dir_rows,
    check_columns,
    listed,
    mapping_problems,
    parquet_rows,
)

REQUIRED = ("id", "subject_id", "text")
#: label texts that mean "no value" (NaN, null, pandas' <NA>); never a class name
MISSING_LABELS = frozenset({"nan", "null", "<na>"})


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Record:
    id: str
    subject_id: str
    text: str
    label: str | None = None
    fields: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


def records_sha256(records: Iterable[Record]) -> str:
    """sha256 over (id, subject_id, label, text) of records in the given order."""
    h = hashlib.sha256()
    for r in records:
        for part in (r.id, r.subject_id, r.label or "", r.text):
            h.update(part.encode("utf-8"))
            h.update(b"\x1f")
        h.update(b"\x1e")
    return h.hexdigest()


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _row_to_record(row: dict[str, object], where: str, need_label: bool) -> Record:
    # a blank id or subject is missing; a text that is there but blank is empty (below)
    missing = [k for k in REQUIRED if (row.get(k) is None if k == "text" else _blank(row.get(k)))]
    if need_label and _blank(row.get("label")):
        missing.append("label")
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    # a null is a missing value (an unneeded label may be missing: Parquet has it on every row)
    values = {k: row[k] for k in (*REQUIRED, "label") if row.get(k) is not None}
    for k, v in values.items():
        if isinstance(v, float) and v != v:  # NaN
            raise DataError(f"{where}: field '{k}' is NaN")
        if isinstance(v, bool) or not isinstance(v, str | int):
            hint = ("; a whole number kept as a float, as pandas keeps an integer column with "
                    "missing values: store it as integers or strings"
                    if isinstance(v, float) and v.is_integer() else "")
            raise DataError(f"{where}: field '{k}' must be a string or an integer "
                            f"(got {type(v).__name__} {_shown(v)}{hint})")
    for k, v in row.items():
        if isinstance(v, str) and not _encodable(v):
            raise DataError(f"{where}: field '{k}' is not valid Unicode text (lone surrogate)")
    label = values.get("label")
    if isinstance(label, str) and label.strip().lower() in MISSING_LABELS:
        raise DataError(f"{where}: field 'label' is {label!r}, a missing value; give a class "
                        "name or leave the record out")
    text = str(values["text"])
    if not text.strip():
        raise DataError(f"{where}: field 'text' is empty (a record needs some text; "
                        f"got {_shown(text)})")
    extra = {k: str(v) for k, v in row.items() if k not in (*REQUIRED, "label") and v is not None}
    return Record(
        id=str(values["id"]),
        subject_id=str(values["subject_id"]),
        text=text,
        label=None if label in (None, "") else str(label),
        fields=extra,
    )


def _rows(
    path: Path, columns: Mapping[str, str] | None
) -> Iterable[tuple[int, dict[str, object]]]:
    suffix = path.suffix.lower()
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:  # a leading BOM is allowed
            if suffix in (".jsonl", ".ndjson", ".json"):
                for lineno, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
                    except (ValueError, RecursionError) as exc:  # a 5000-digit int, deep nesting
                        why = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
                        raise DataError(f"{path}:{lineno}: not valid JSON ({why})") from None
                    if not isinstance(row, dict):
                        raise DataError(f"{path}:{lineno}: each line must be a JSON object")
                    yield lineno, row
            elif suffix == ".csv":
                reader = csv.DictReader(fh)
                if columns:
                    check_columns(str(path), columns, reader.fieldnames or [])
                for row in reader:
                    if None in row:
                        raise DataError(f"{path}:{reader.line_num}: more values than columns")
                    yield reader.line_num, dict(row)
            else:
                raise DataError(f"{path}: unknown format '{suffix}' (allowed: {FORMATS})")
    except UnicodeDecodeError as exc:
        raise DataError(_not_utf8(path, exc.reason)) from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None


def _not_utf8(path: Path, reason: str) -> str:
    """``path:LINE: not UTF-8 text (…)``: the text reader's offset counts from its last
    buffer, so the first bad byte is found again in the raw file, and its line named."""
    raw = path.read_bytes()
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        column = exc.start - (body.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = body[exc.start]
        return (f"{path}:{line}: not UTF-8 text ({exc.reason}: byte 0x{byte:02x} at column "
                f"{column}; save the file as UTF-8)")
    return f"{path}: not UTF-8 text ({reason})"


def _renamed(
    row: dict[str, object], columns: Mapping[str, str], where: str
) -> dict[str, object]:
    """``row`` with the mapped columns under privaudit's names (``data.columns``)."""
    mapped = {}
    for key, col in columns.items():
        if col not in row:
            raise DataError(f"{where}: data.columns.{key}: no column {col!r} in this record "
                            f"(it has: {listed(list(row))})")
        mapped[key] = row[col]
    sources = set(columns.values())
    rest = {k: v for k, v in row.items() if k not in sources and k not in columns}
    return {**rest, **mapped}


def _numbered_rows(
    path: Path, columns: Mapping[str, str] | None
) -> tuple[str, Iterable[tuple[int, dict[str, object]]]]:
    """("line", rows) of a JSONL or CSV file; ("row", rows) of Parquet or Arrow."""
    if path.is_dir():
        return "row", arrow_dir_rows(path, columns)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() == ".parquet":
        return "row", parquet_rows(path, columns)
    return "line", _rows(path, columns)


def load_records(
    path: Path,
    *,
    need_label: bool,
    allowed_labels: Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
) -> list[Record]:
    """Read a JSONL, CSV or Parquet file or a ``datasets.save_to_disk`` directory of records,
    its columns renamed by ``columns`` (privaudit's name -> the file's); raise DataError
    naming the first bad line (row)."""
    problems = mapping_problems(columns or {})
    if problems:
        raise DataError(f"data.columns: {'; '.join(problems)}")
    unit, rows = _numbered_rows(path, columns)
    seen: dict[str, int] = {}
    records: list[Record] = []
    for n, row in rows:
        where = f"{path}:{n}" if unit == "line" else f"{path}: row {n}"
        rec = _row_to_record(_renamed(row, columns, where) if columns else row, where,
                             need_label)
        if rec.id in seen:
            raise DataError(f"{where}: duplicate id '{rec.id}' (first on {unit} {seen[rec.id]})")
        if allowed_labels is not None and rec.label not in allowed_labels:
            raise DataError(
                f"{where}: unknown label '{rec.label}' (allowed: {', '.join(allowed_labels)})"
            )
        seen[rec.id] = n
        records.append(rec)
    if not records:
        raise DataError(f"{path}: no records")
    return records
