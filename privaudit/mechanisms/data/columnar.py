"""Columnar data the way users keep it: a Parquet file, a ``datasets.save_to_disk`` directory,
and the column mapping ``data.columns`` that renames a file's columns to privaudit's fields.

A ``save_to_disk`` directory holds ``dataset_info.json``, ``state.json`` and the table as one
or more ``data-0000N-of-0000M.arrow`` files (Arrow IPC stream format), read in the order
``state.json`` lists them under ``_data_files``; the ``datasets`` package is not needed. A
DatasetDict directory (``dataset_dict.json``) is refused, naming its splits: point
``data.path`` at one split's subdirectory.

Rows are numbered from 1 over the whole table (``data.parquet: row 7: ...``). Values come
from pyarrow's ``to_pylist`` (large and dictionary-encoded strings read as ``str``), a null is
a missing value, and the records loader applies the same rules as for JSONL. A nested column
(a list, a struct, a map) is ignored unless it is one of the record's own fields (``id``,
``subject_id``, ``text``, ``label``, after the mapping), where its value is refused as not a
string or an integer. pyarrow is imported inside the readers, so importing privaudit stays
light.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privaudit.core.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

#: the keys of ``data.columns``: privaudit's own record fields
COLUMN_KEYS = ("id", "subject_id", "text", "label")
FORMATS = ".jsonl, .csv, .parquet, or a datasets.save_to_disk directory"
_BATCH_ROWS = 4096


def mapping_problems(columns: Mapping[str, str]) -> list[str]:
    """What is wrong with a ``data.columns`` mapping: unknown keys, blank column names, two
    keys naming one column. Empty when it is fine."""
    problems = []
    unknown = [k for k in columns if k not in COLUMN_KEYS]
    if unknown:
        problems.append(f"unknown key(s) {', '.join(map(repr, unknown))} "
                        f"(allowed keys: {', '.join(COLUMN_KEYS)})")
    blank = [k for k, v in columns.items() if not isinstance(v, str) or not v.strip()]
    if blank:
        problems.append(f"key(s) {', '.join(map(repr, blank))} must name a column "
                        "(a non-empty string)")
    by_column: dict[str, list[str]] = {}
    for key, col in columns.items():
        by_column.setdefault(col, []).append(key)
    for col, keys in by_column.items():
        if len(keys) > 1:
            problems.append(f"keys {', '.join(map(repr, keys))} all name column {col!r}; "
                            "a column fills one field")
    return problems


def listed(names: Sequence[str], most: int = 30) -> str:
    """Column names as an error message lists them (the first ``most``)."""
    shown = ", ".join(map(repr, names[:most]))
    more = f", ... ({len(names) - most} more)" if len(names) > most else ""
    return (shown + more) or "no columns"


def check_columns(where: str, columns: Mapping[str, str] | None, names: Sequence[str]) -> None:
    """Every mapped column is among ``names`` (a file's header); DataError naming the config
    key, the column asked for and the columns the file has otherwise."""
    for key, col in (columns or {}).items():
        if col not in names:
            raise DataError(f"{where}: data.columns.{key}: no column {col!r} in the file "
                            f"(it has: {listed(list(names))})")


def dataset_dir_problem(path: Path) -> str | None:
    """None when ``path`` is a ``datasets.save_to_disk`` directory of one Dataset; else why
    not (a DatasetDict names its splits)."""
    if (path / "dataset_dict.json").is_file():
        try:
            splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))
            names = [str(s) for s in splits.get("splits", [])]
        except (OSError, ValueError, AttributeError, TypeError):
            names = []
        names = names or sorted(p.name for p in path.iterdir() if (p / "state.json").is_file())
        example = f" (e.g. {path / names[0]})" if names else ""
        return (f"a datasets DatasetDict directory (splits: {', '.join(names) or 'none found'}); "
                f"point data.path at one split's subdirectory{example}")
    if not (path / "state.json").is_file():
        return ("a directory must be a datasets.save_to_disk directory (with state.json, "
                "dataset_info.json and data-*.arrow files)")
    return None


def arrow_files(path: Path) -> list[Path]:
    """The ``.arrow`` files of a save_to_disk directory, in ``state.json``'s order."""
    problem = dataset_dir_problem(path)
    if problem:
        raise DataError(f"{path}: {problem}")
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        names = [str(f["filename"]) for f in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}/state.json: not a datasets state file (needs _data_files, "
                        f"a list of {{\"filename\": ...}}; {type(exc).__name__}: {exc})") from None
    if not names:
        raise DataError(f"{path}/state.json: _data_files lists no .arrow file")
    files = []
    for name in names:
        if Path(name).name != name or name in ("", ".", ".."):
            raise DataError(f"{path}/state.json: _data_files names {name!r}, not a file "
                            "inside the directory")
        if not (path / name).is_file():
            raise DataError(f"{path}: {name} is listed in state.json but missing")
        files.append(path / name)
    return files


def _wanted(columns: Mapping[str, str] | None) -> set[str]:
    """The file columns that become the record's own fields."""
    return {(columns or {}).get(k, k) for k in COLUMN_KEYS}


def _kept(schema: pa.Schema, wanted: set[str]) -> list[str]:
    """The columns read: every scalar one, and a nested one only when it is a record field."""
    import pyarrow as pa

    def nested(t: pa.DataType) -> bool:
        return pa.types.is_nested(t) or (
            pa.types.is_dictionary(t) and pa.types.is_nested(t.value_type))

    return [f.name for f in schema if f.name in wanted or not nested(f.type)]


def _batch_rows(batch: Any) -> Iterator[dict[str, object]]:
    names = batch.schema.names
    values = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
    for row in zip(*values, strict=True):
        yield dict(zip(names, row, strict=True))


def parquet_rows(
    path: Path, columns: Mapping[str, str] | None
) -> Iterator[tuple[int, dict[str, object]]]:
    """``(row number, row)`` of a Parquet file, numbered from 1."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        check_columns(str(path), columns, schema.names)
        n = 0
        for batch in pf.iter_batches(batch_size=_BATCH_ROWS,
                                     columns=_kept(schema, _wanted(columns))):
            for row in _batch_rows(batch):
                n += 1
                yield n, row
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None


def arrow_dir_rows(
    path: Path, columns: Mapping[str, str] | None
) -> Iterator[tuple[int, dict[str, object]]]:
    """``(row number, row)`` of a save_to_disk directory, numbered from 1 over its files."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    n = 0
    for file in arrow_files(path):
        try:
            with pa.memory_map(str(file)) as source:
                reader = ipc.open_stream(source)
                check_columns(str(file), columns, reader.schema.names)
                kept = _kept(reader.schema, _wanted(columns))
                for batch in reader:
                    for row in _batch_rows(batch.select(kept)):
                        n += 1
                        yield n, row
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{file}: not a readable Arrow stream file ({exc})") from None
