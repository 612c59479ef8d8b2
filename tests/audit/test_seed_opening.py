"""The report's seed commitment can be opened from the run directory, and only with its seed."""

from __future__ import annotations

import json
from pathlib import Path

from privaudit.core import provenance as pv
from privaudit.core.commitment import (
    SEED_OPENING,
    opening_problem,
    run_seed_commitment,
    verify_seed_commitment,
)
from privaudit.core.rundir import RunDir


def _run(root: Path, *, config_seed: int, committed_seed: int) -> RunDir:
    run = RunDir(root).create()
    (root / "config.yaml").write_text(f"name: t\nseed: {config_seed}\n")
    report = {"schema_version": "1.0.0", "report_id": "r",
              "run": {"seed_commitment": run_seed_commitment(run, committed_seed)}}
    (root / "report.json").write_text(json.dumps(report))
    pv.write_manifest(root)
    return run


def test_a_run_keeps_one_commitment_across_its_reports_and_its_salt_opens_it(
    tmp_path: Path,
) -> None:
    run = RunDir(tmp_path / "a").create()
    first = run_seed_commitment(run, 7)
    assert run_seed_commitment(run, 7) == first  # a resumed run or a re-rendered report
    salt = bytes.fromhex(json.loads(run.path(*SEED_OPENING).read_text())["salt"])
    assert len(salt) >= 16
    assert verify_seed_commitment(first, 7, salt) and not verify_seed_commitment(first, 8, salt)
    other = RunDir(tmp_path / "b").create()
    assert run_seed_commitment(other, 7) != first  # a fresh salt per run hides equal seeds


def test_verify_passes_when_the_config_seed_opens_the_reports_commitment(tmp_path: Path) -> None:
    root = tmp_path / "run"
    _run(root, config_seed=7, committed_seed=7)
    assert opening_problem(root, json.loads((root / "report.json").read_text())["run"]
                           ["seed_commitment"]) is None
    assert pv.verify_run(root).findings == []


def test_verify_flags_a_report_made_with_another_seed_than_the_run_directorys_config(
    tmp_path: Path,
) -> None:
    root = tmp_path / "run"
    _run(root, config_seed=7, committed_seed=8)
    findings = pv.verify_run(root).findings
    assert [(f.path, f.kind) for f in findings] == [("data/seed-opening.json",
                                                     "seed_commitment")]
    assert "config.yaml" in findings[0].problem


def test_verify_reports_an_unreadable_opening_instead_of_raising(tmp_path: Path) -> None:
    root = tmp_path / "run"
    _run(root, config_seed=7, committed_seed=7)
    (root / "data" / "seed-opening.json").write_text('{"salt": "zz"}')
    pv.write_manifest(root)
    findings = pv.verify_run(root).findings
    assert [f.kind for f in findings] == ["seed_commitment"]
    assert "not checkable" in findings[0].problem
