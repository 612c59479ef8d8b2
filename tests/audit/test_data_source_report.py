"""The report names a user's data file by its name and sha256, never by where it lies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.core.rundir import path_sha256, sha256_file
from tests.conftest import MEMORISE, TINY, merge


def test_a_file_run_reports_the_data_file_s_name_and_sha256_not_its_path(tmp_path: Path) -> None:
    data = tmp_path / "private" / "corpus" / "tickets.jsonl"
    data.parent.mkdir(parents=True)
    shutil.copy(MEMORISE, data)
    cfg = config_from_dict(merge(TINY, {"data": {"source": "file", "path": str(data),
                                                 "test_records": 40}}))
    outcome = run_audit(cfg, tmp_path / "run")
    report = json.loads((outcome.run_dir / "report.json").read_text())
    assert report["data"]["source"] == "tickets.jsonl"
    assert report["data"]["source_sha256"] == sha256_file(data)
    assert str(data.parent) not in (outcome.run_dir / "report.json").read_text()
    assert "tickets.jsonl" in (outcome.run_dir / "report.html").read_text()


def test_a_directory_s_sha256_covers_every_file_s_name_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.arrow").write_bytes(b"one")
    (tmp_path / "d" / "sub" / "b.json").write_bytes(b"two")
    first = path_sha256(tmp_path / "d")
    (tmp_path / "d" / "sub" / "b.json").write_bytes(b"TWO")
    assert path_sha256(tmp_path / "d") != first
    (tmp_path / "d" / "sub" / "b.json").write_bytes(b"two")
    assert path_sha256(tmp_path / "d") == first
    (tmp_path / "d" / "a.arrow").rename(tmp_path / "d" / "c.arrow")
    assert path_sha256(tmp_path / "d") != first
