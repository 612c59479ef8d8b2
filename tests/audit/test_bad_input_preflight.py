"""Issue 17, part 2: bad input found before anything is written, named, never a traceback.

Every case runs the real CLI on the tiny config: without ``--dry-run`` it must exit 2 naming
the field or option and leave ``--out`` uncreated; with ``--dry-run`` it must fail the same
way (the dry run runs every check a run makes from its config and data,
``privaudit/audit/preflight.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from privaudit.core.params import ConfigSection
from tests.audit.bad_input_helpers import assert_contract, run_main
from tests.conftest import TINY, merge
from tests.reports.samples import full_document

RECORD_DP = {"mode": "record", "noise_multiplier": 1.0, "delta": 1e-5}
CLIENT_DP = {"mode": "client", "noise_multiplier": 1.0, "delta": 1e-5}


def _config(tmp_path: Path, patch: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(merge(TINY, patch)), encoding="utf-8")
    return path


def _refused_before_writing(tmp_path: Path, patch: dict[str, Any], says: str) -> str:
    """Exit 2 naming ``says``, with and without --dry-run; --out never created."""
    config, out = _config(tmp_path, patch), tmp_path / "run"
    for extra in ((), ("--dry-run",)):
        outcome = run_main("run", config, "--out", out, *extra)
        assert_contract(outcome, allowed=(2,))
        assert says in outcome.err, outcome.err
        assert not out.exists(), f"{extra or 'run'}: wrote {sorted(out.rglob('*'))[:5]}"
    return outcome.err


# ---------------------------------------------------------------- numbers must be finite


@pytest.mark.parametrize(("dp", "field", "value"), [
    ({**RECORD_DP, "noise_multiplier": ".inf"}, "noise_multiplier", "Infinity"),
    ({**RECORD_DP, "max_grad_norm": ".inf"}, "max_grad_norm", "Infinity"),
    ({**CLIENT_DP, "clip_norm": ".inf"}, "clip_norm", "Infinity"),
    ({**RECORD_DP, "noise_multiplier": None, "target_epsilon": ".inf"}, "target_epsilon",
     "Infinity"),
    ({**RECORD_DP, "noise_multiplier": ".nan"}, "noise_multiplier", "NaN"),
    ({**CLIENT_DP, "client_sample_rate": "-.inf"}, "client_sample_rate", "-Infinity"),
])
def test_an_infinite_noise_multiplier_is_a_config_error_naming_the_field(
        tmp_path: Path, dp: dict[str, Any], field: str, value: str) -> None:
    """`.inf` noise hung Opacus' PRV accountant; an infinite clip norm printed ε 7.99 for a
    guarantee with unbounded sensitivity. Every float of the config is finite now."""
    config = tmp_path / "config.yaml"
    text = yaml.safe_dump(merge(TINY, {"privacy": {"dp": dp}}))
    config.write_text(text.replace("'.inf'", ".inf").replace("'-.inf'", "-.inf")
                      .replace("'.nan'", ".nan"), encoding="utf-8")
    out = tmp_path / "run"
    outcome = run_main("run", config, "--out", out)
    assert_contract(outcome, allowed=(2,))
    assert f"privacy.dp.{field}: Input should be a finite number (got {value})" in outcome.err
    assert not out.exists()


def test_every_config_section_refuses_non_finite_floats() -> None:
    """Once, in the shared base: every section of every family derives from it."""
    from privaudit.audit.config import AuditConfig
    from privaudit.mechanisms.dp.config import DPConfig
    from privaudit.mechanisms.secagg.config import SecureAggregationConfig

    for section in (AuditConfig, DPConfig, SecureAggregationConfig):
        assert issubclass(section, ConfigSection)
        assert section.model_config.get("allow_inf_nan") is False


# ---------------------------------------------------------------- DP and secure aggregation


@pytest.mark.parametrize(("patch", "says"), [
    ({"privacy": {"dp": {**RECORD_DP, "delta": 0.5}}},
     "privacy.dp.delta: must be < 1/(smallest client size)"),
    ({"privacy": {"dp": {**RECORD_DP, "noise_multiplier": None, "target_epsilon": 1e-6}}},
     "privacy.dp.target_epsilon: unreachable"),
    ({"privacy": {"dp": {**RECORD_DP, "batch_size": 5000}}},
     "privacy.dp.sample_rate: batch_size / client size must be in (0, 1]"),
    ({"privacy": {"dp": {**CLIENT_DP, "client_sample_rate": 0.1}}},
     "privacy.dp.client_sample_rate: expected clients per round q·n must be >= 1"),
    ({"secure_aggregation": {"enabled": True, "min_clients": 3}},
     "secure_aggregation.min_clients: must be <= federation.clients (= 2)"),
])
def test_dp_and_secure_aggregation_problems_are_found_before_the_run_directory_is_created(
        tmp_path: Path, patch: dict[str, Any], says: str) -> None:
    """These were found only after config.yaml and data/ were written, and --dry-run called
    the configs valid."""
    _refused_before_writing(tmp_path, patch, says)


def test_preflight_lists_every_problem_at_once(tmp_path: Path) -> None:
    err = _refused_before_writing(tmp_path, {
        "privacy": {"dp": {**RECORD_DP, "delta": 0.5, "batch_size": 5000}},
        "unlearning": {"requests": [{"id": "r1", "kind": "record", "ids": ["nope"]}]},
    }, "privacy.dp.delta")
    assert "privacy.dp.sample_rate" in err
    assert "unlearning.requests[0] (r1).ids: record ids not in the training data" in err


def test_excluding_every_subject_says_nothing_would_be_left_to_train_on(tmp_path: Path) -> None:
    subjects = [f"s{i:05d}" for i in range(TINY["data"]["synthetic"]["subjects"])]
    err = _refused_before_writing(tmp_path, {"data": {"exclude_subjects": subjects}},
                                  "data.exclude_subjects: excludes every training record")
    assert "nothing would be left to train on" in err
    assert "not in the training data" not in err


def test_duplicate_fprs_are_a_config_error_naming_attacks_fprs(tmp_path: Path) -> None:
    _refused_before_writing(tmp_path, {"attacks": {"fprs": [0.01, 0.01]}},
                            "attacks.fprs: FPRs must be distinct")


# ---------------------------------------------------------------- the model directory


@pytest.mark.parametrize(("config_json", "says"), [
    ('{"model_type": "bert", \n', "config.json:2: not valid JSON"),
    ('{"hidden_size": 3}', "does not load (Unrecognized model"),
    ("[1, 2]", "does not load"),
])
def test_a_model_directory_with_a_broken_config_json_names_model_base(
        tmp_path: Path, config_json: str, says: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(config_json, encoding="utf-8")
    err = _refused_before_writing(tmp_path, {"model": {"base": str(model)}}, "model.base: ")
    assert says in err, err


# ---------------------------------------------------------------- output paths


@pytest.mark.parametrize(("out", "says"), [
    (Path("/dev/null/run"), "--out: cannot create it: '/dev/null' is not a directory "
                            "(got '/dev/null/run')"),
    ("FILE", "--out: exists and is not a directory"),
    ("FILE/run", "--out: cannot create it: "),
])
def test_an_out_that_cannot_be_created_is_a_usage_error_naming_the_option(
        tmp_path: Path, out: Path | str, says: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    target = Path(str(out).replace("FILE", str(afile)))
    for extra in ((), ("--dry-run",)):
        outcome = run_main("run", _config(tmp_path, {}), "--out", target, *extra)
        assert_contract(outcome, allowed=(2,))
        assert "--out: " in outcome.err and says in outcome.err, outcome.err
    assert afile.read_text(encoding="utf-8") == "x"


def test_keygen_out_naming_an_existing_file_is_a_usage_error(tmp_path: Path) -> None:
    afile = tmp_path / "keys"
    afile.write_text("not a directory", encoding="utf-8")
    outcome = run_main("keygen", "--out", afile)
    assert_contract(outcome, allowed=(2,))
    assert f"--out: exists and is not a directory (allowed: a directory, or a path where " \
        f"one can be created; got '{afile}')" in outcome.err
    assert afile.read_text(encoding="utf-8") == "not a directory"


@pytest.mark.parametrize("option", ["--junit-xml", "--sarif"])
def test_a_gate_output_naming_a_directory_is_a_usage_error_before_any_verdict(
        tmp_path: Path, option: str) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps(full_document()), encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules: [{id: auc, metric: attacks.loss.auc, max: 1.0}]\n",
                      encoding="utf-8")
    outdir = tmp_path / "reports"
    outdir.mkdir()
    other = tmp_path / ("x.sarif" if option == "--junit-xml" else "x.xml")
    other_option = "--sarif" if option == "--junit-xml" else "--junit-xml"
    outcome = run_main("gate", report, "--policy", policy, option, outdir, other_option, other)
    assert_contract(outcome, allowed=(2,))
    assert f"{option}: is a directory" in outcome.err and f"got '{outdir}'" in outcome.err
    assert "PASSED" not in outcome.text and "FAILED" not in outcome.text
    assert not other.exists(), "the other output was written before the refusal"
    assert list(outdir.iterdir()) == []


def test_gate_writes_its_outputs_before_it_announces_the_verdict(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps(full_document()), encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules: [{id: auc, metric: attacks.loss.auc, max: 1.0}]\n",
                      encoding="utf-8")
    junit, sarif = tmp_path / "ci" / "junit.xml", tmp_path / "ci" / "gate.sarif"
    outcome = run_main("gate", report, "--policy", policy, "--junit-xml", junit,
                       "--sarif", sarif)
    assert_contract(outcome, allowed=(0,))
    assert junit.is_file() and sarif.is_file()


def test_gate_init_into_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    policy = tmp_path / "missing" / "privacy-gate.yaml"
    outcome = run_main("gate", "--init", "--policy", policy)
    assert_contract(outcome, allowed=(2,))
    assert f"--policy: cannot write it: the directory '{policy.parent}' does not exist" \
        in outcome.err
    assert not policy.parent.exists()


# ---------------------------------------------------------------- gate metric names


@pytest.mark.parametrize("severity", ["error", "warning"])
def test_a_misspelt_gate_metric_is_a_policy_error_suggesting_the_name(
        tmp_path: Path, severity: str) -> None:
    """`dp.epsilom` exited 4 (evidence incomplete), and 0 with PASSED in a warning rule."""
    report = tmp_path / "report.json"
    report.write_text(json.dumps(full_document()), encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"rules: [{{id: dp, metric: dp.epsilom, max: 3, severity: {severity}}}]\n",
                      encoding="utf-8")
    outcome = run_main("gate", report, "--policy", policy)
    assert_contract(outcome, allowed=(2,))
    assert "rules.0.metric: unknown metric: did you mean 'dp.epsilon'?" in outcome.err
    assert "got 'dp.epsilom'" in outcome.err
    assert "PASSED" not in outcome.text


@pytest.mark.parametrize(("metric", "suggested"), [
    ("dp_audit.epsilom_lower_bound", "dp_audit.epsilon_lower_bound"),
    ("secure_aggregation.securty_bits", "secure_aggregation.security_bits"),
    ("unlearning.*.forget.privleek", "unlearning.*.forget.privleak"),
    ("unlearning.sisa.retian.mia_auc", "unlearning.sisa.retain"),
])
def test_a_misspelt_report_field_in_a_field_generic_metric_is_a_policy_error(
        tmp_path: Path, metric: str, suggested: str) -> None:
    """`dp_audit.<field>`, `secure_aggregation.<field>`, `unlearning.<selector>.<path>`: a
    field the report schema does not have exited 4 (evidence incomplete); it is exit 2,
    naming the close fields. A known field the report lacks stays exit 4."""
    report = tmp_path / "report.json"
    report.write_text(json.dumps(full_document()), encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"rules: [{{id: r, metric: '{metric}', max: 3}}]\n", encoding="utf-8")
    outcome = run_main("gate", report, "--policy", policy)
    assert_contract(outcome, allowed=(2,))
    assert f"did you mean '{suggested}" in outcome.err and f"got '{metric}'" in outcome.err
    policy.write_text("rules: [{id: r, metric: 'unlearning.*.ulira_auc', max: 3}]\n",
                      encoding="utf-8")
    assert run_main("gate", report, "--policy", policy).code == 4


def test_a_reference_federation_with_a_client_smaller_than_the_dp_batch_is_refused_by_dry_run(
        tmp_path: Path) -> None:
    """Each reference re-partitions half the population with its own seed: with 4 clients
    and a DP batch of 30, the target's clients (~36 records) pass and a reference's (~10 of
    the 80 audit records' half) do not. The dry run said valid before, and the run died in
    the references stage."""
    patch = {"federation": {"clients": 4},
             "privacy": {"dp": {**RECORD_DP, "batch_size": 30}},
             "attacks": {"references": {"count": 4, "population": "audit"},
                         "battery": [{"name": "loss"}, {"name": "lira"}]}}
    err = _refused_before_writing(tmp_path, patch, "attacks.references: reference 0 trains on "
                                  "half the population")
    assert "privacy.dp" in err
