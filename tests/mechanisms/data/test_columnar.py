"""Data the way users keep it: Parquet, datasets.save_to_disk directories, ``data.columns``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from privaudit.audit.config import DataConfig, config_from_dict
from privaudit.core.errors import ConfigError, DataError
from privaudit.mechanisms.data import Record, load_records
from privaudit.mechanisms.data.splits import load_corpus

ROWS = [
    {"id": f"r{i}", "subject_id": f"s{i // 2}", "text": f"message number {i}",
     "label": "billing" if i % 3 else "tech"}
    for i in range(6)
]
#: privaudit's names -> the file's own names
COLUMNS = {"text": "body", "subject_id": "author", "label": "category"}
RENAMED = [
    {"id": r["id"], "author": r["subject_id"], "body": r["text"], "category": r["label"],
     "source": "web"}
    for r in ROWS
]


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows)


def _key(records: list[Record]) -> list[tuple[str, str, str, str | None]]:
    return [(r.id, r.subject_id, r.text, r.label) for r in records]


def _parquet(tmp_path: Path, rows: list[dict[str, Any]], name: str = "data.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(_table(rows), path)
    return path


def _save_to_disk(directory: Path, shards: list[list[dict[str, Any]]],
                  order: list[int] | None = None) -> Path:
    """What ``datasets.Dataset.save_to_disk`` writes: Arrow stream shards, state.json listing
    them (in ``order``), dataset_info.json, the features in the schema's metadata."""
    directory.mkdir(parents=True)
    names = [f"data-{i:05d}-of-{len(shards):05d}.arrow" for i in range(len(shards))]
    features = {k: {"dtype": "string", "_type": "Value"} for k in shards[0][0]}
    info = {"citation": "", "description": "", "features": features, "homepage": "",
            "license": ""}
    for name, rows in zip(names, shards, strict=True):
        table = _table(rows).replace_schema_metadata(
            {"huggingface": json.dumps({"info": {"features": features}})})
        with ipc.new_stream(str(directory / name), table.schema) as writer:
            writer.write_table(table, max_chunksize=2)  # several batches per shard
    listed = [names[i] for i in (order if order is not None else range(len(names)))]
    state = {"_data_files": [{"filename": n} for n in listed], "_fingerprint": "0123abcd",
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
             "_output_all_columns": False, "_split": None}
    (directory / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    (directory / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return directory


def test_a_parquet_file_with_its_own_column_names_loads_through_columns_as_the_jsonl_does(
    tmp_path: Path,
) -> None:
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    from_jsonl = load_records(jsonl, need_label=True)
    from_parquet = load_records(_parquet(tmp_path, RENAMED), need_label=True, columns=COLUMNS)
    assert from_parquet == from_jsonl
    assert _key(from_parquet) == _key(from_jsonl)
    assert all(r.fields == {"source": "web"} for r in from_parquet)  # unmapped: kept


def test_columns_rename_jsonl_and_csv_too(tmp_path: Path) -> None:
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in RENAMED), encoding="utf-8")
    csv = tmp_path / "data.csv"
    csv.write_text("id,author,body,category,source\n" + "".join(
        f"{r['id']},{r['author']},{r['body']},{r['category']},web\n" for r in RENAMED),
        encoding="utf-8")
    expected = _key(load_records(_parquet(tmp_path, RENAMED), need_label=True, columns=COLUMNS))
    assert _key(load_records(jsonl, need_label=True, columns=COLUMNS)) == expected
    assert _key(load_records(csv, need_label=True, columns=COLUMNS)) == expected


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_a_save_to_disk_directory_loads_its_arrow_files_in_state_json_order(
    tmp_path: Path, order: list[int]
) -> None:
    shards = [ROWS[:4], ROWS[4:]]
    directory = _save_to_disk(tmp_path / "ds", shards, order)
    records = load_records(directory, need_label=True)
    assert [r.id for r in records] == [r["id"] for i in order for r in shards[i]]


def test_a_save_to_disk_directory_maps_columns_and_keeps_the_others_as_fields(
    tmp_path: Path,
) -> None:
    directory = _save_to_disk(tmp_path / "ds", [RENAMED[:3], RENAMED[3:]])
    records = load_records(directory, need_label=True, columns=COLUMNS)
    assert _key(records) == [(r["id"], r["subject_id"], r["text"], r["label"]) for r in ROWS]
    assert records[0].fields == {"source": "web"}


def test_a_dataset_dict_directory_is_refused_naming_its_splits(tmp_path: Path) -> None:
    root = tmp_path / "dd"
    _save_to_disk(root / "train", [ROWS[:4]])
    _save_to_disk(root / "test", [ROWS[4:]])
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}),
                                            encoding="utf-8")
    with pytest.raises(DataError, match=r"DatasetDict directory \(splits: train, test\); "
                                        r"point data.path at one split's subdirectory"):
        load_records(root, need_label=True)
    assert len(load_records(root / "train", need_label=True)) == 4  # one split loads


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv", "jsonl"])
def test_a_mapped_column_missing_from_the_file_names_the_key_the_column_and_the_columns(
    tmp_path: Path, fmt: str
) -> None:
    rows = [{k: v for k, v in r.items() if k != "body"} for r in RENAMED]
    if fmt == "parquet":
        path = _parquet(tmp_path, rows)
    elif fmt == "arrow":
        path = _save_to_disk(tmp_path / "ds", [rows])
    else:
        path = tmp_path / f"data.{fmt}"
        path.write_text("id,author,category,source\nr0,s0,tech,web\n" if fmt == "csv" else
                        json.dumps(rows[0]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data.columns.text: no column 'body' in (the file|this "
                       r"record) \(it has: 'id', 'author', 'category', 'source'\)"):
        load_records(path, need_label=True, columns=COLUMNS)


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_a_null_label_is_missing_and_named_by_its_row(tmp_path: Path, fmt: str) -> None:
    rows = [dict(r) for r in ROWS]
    rows[2]["label"] = None
    path = _parquet(tmp_path, rows) if fmt == "parquet" else \
        _save_to_disk(tmp_path / "ds", [rows[:2], rows[2:]])  # row 3 is the 2nd file's 1st
    with pytest.raises(DataError, match=rf"{path.name}: row 3: missing field\(s\) label"):
        load_records(path, need_label=True)
    assert len(load_records(path, need_label=False)) == len(rows)  # no label needed: fine


def test_an_integral_float_label_is_refused_naming_the_row(tmp_path: Path) -> None:
    """A pandas integer column with a missing value becomes floats (3.0): refused, as in
    JSONL, with the row named and the cause said."""
    table = _table(ROWS).set_column(3, "label", pa.array([1.0, 2.0, 3.0, 1.0, 2.0, None]))
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError, match=r"data.parquet: row 1: field 'label' must be a string "
                                        r"or an integer \(got float 1.0; a whole number kept"):
        load_records(path, need_label=True)


def test_a_duplicate_id_across_arrow_files_is_refused_naming_both_rows(tmp_path: Path) -> None:
    shards = [ROWS[:3], [{**ROWS[3], "id": "r1"}, *ROWS[4:]]]
    directory = _save_to_disk(tmp_path / "ds", shards)
    with pytest.raises(DataError, match=r"ds: row 4: duplicate id 'r1' \(first on row 2\)"):
        load_records(directory, need_label=True)


def test_large_and_dictionary_encoded_strings_read_and_nested_columns_are_ignored(
    tmp_path: Path,
) -> None:
    n = len(ROWS)
    table = pa.table({
        "id": pa.array([r["id"] for r in ROWS], pa.large_string()),
        "subject_id": pa.array([r["subject_id"] for r in ROWS]).dictionary_encode(),
        "text": pa.array([r["text"] for r in ROWS], pa.large_string()),
        "label": pa.array([r["label"] for r in ROWS]).dictionary_encode(),
        "tags": pa.array([["a", "b"]] * n),
        "meta": pa.array([{"k": 1}] * n),
        "score": pa.array(range(n), pa.int64()),
    })
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    records = load_records(path, need_label=True)
    assert _key(records) == [(r["id"], r["subject_id"], r["text"], r["label"]) for r in ROWS]
    assert records[5].fields == {"score": "5"}  # tags (a list), meta (a struct): ignored


def test_a_nested_column_mapped_to_a_record_field_is_refused(tmp_path: Path) -> None:
    rows = [{**r, "body": [r["text"]]} for r in ROWS]
    path = _parquet(tmp_path, rows)
    with pytest.raises(DataError, match=r"row 1: field 'text' must be a string or an integer "
                                        r"\(got list"):
        load_records(path, need_label=True, columns={"text": "body"})


def test_an_unknown_suffix_or_plain_directory_lists_the_formats(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match=r"allowed: .jsonl, .csv, .parquet, or a "
                                        r"datasets.save_to_disk directory"):
        load_records(path, need_label=False)
    with pytest.raises(DataError, match=r"a directory must be a datasets.save_to_disk directory"):
        load_records(tmp_path, need_label=False)
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_records(path.rename(tmp_path / "bad.parquet"), need_label=False)


@pytest.mark.parametrize(
    ("columns", "says"),
    [
        ({"txt": "body"}, r"unknown key\(s\) 'txt' \(allowed keys: id, subject_id, text, "
                          r"label\)"),
        ({"text": "body", "label": "body"}, r"keys 'text', 'label' all name column 'body'"),
        ({"text": "  "}, r"key\(s\) 'text' must name a column"),
    ],
)
def test_a_bad_columns_mapping_is_refused_by_the_config(columns: dict[str, str],
                                                        says: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"data": {"source": "file", "path": "d.parquet", "columns": columns}})
    assert any(p.startswith("data.columns: ") for p in info.value.problems)
    assert any(re.search(says, p) for p in info.value.problems), \
        info.value.problems
    with pytest.raises(DataError, match=says):  # the loader checks it too
        load_records(Path("d.parquet"), need_label=True, columns=columns)


def test_a_config_with_a_parquet_file_and_columns_loads_the_corpus(tmp_path: Path) -> None:
    _parquet(tmp_path, RENAMED)
    raw = {"data": {"source": "file", "path": "data.parquet", "columns": COLUMNS}}
    cfg = config_from_dict(raw, base_dir=tmp_path)
    assert isinstance(cfg.data, DataConfig) and cfg.data.columns == COLUMNS
    records, labels = load_corpus(cfg.data, task="classification", seed=0)
    assert labels == ["billing", "tech"]
    assert _key(records) == [(r["id"], r["subject_id"], r["text"], r["label"]) for r in ROWS]


def test_a_directory_data_path_must_be_a_save_to_disk_directory(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    root = _save_to_disk(tmp_path / "dd" / "train", [ROWS]).parent
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train"]}), encoding="utf-8")
    for path, says in [
        ("plain", "data.path: a directory must be a datasets.save_to_disk directory"),
        ("dd", "data.path: a datasets DatasetDict directory (splits: train)"),
    ]:
        with pytest.raises(ConfigError) as info:
            config_from_dict({"data": {"source": "file", "path": path}}, base_dir=tmp_path)
        assert any(p.startswith(says) for p in info.value.problems), info.value.problems
    cfg = config_from_dict({"data": {"source": "file", "path": "dd/train"}}, base_dir=tmp_path)
    assert len(load_corpus(cfg.data, task="classification", seed=0)[0]) == len(ROWS)
