"""`privaudit gate`: one test per exit code, baselines, waivers, statistics, the metric registry."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from privaudit.gate.evaluation import evaluate
from privaudit.gate.metrics import resolve_metric
from privaudit.gate.policy import Policy, load_policy, starter_policy
from tests.reports.cli_helpers import CliResult, run_cli
from tests.reports.samples import full_document, sample_report

TODAY = date(2026, 6, 1)


def _write(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _policy(tmp_path: Path, rules: list[dict[str, Any]], waivers: list[dict[str, Any]] | None
            = None, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"version": 1, "rules": rules, "waivers": waivers or []}))
    return path


def _gate(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, report: Path,
          policy: Path, *extra: str | Path) -> CliResult:
    return run_cli(capsys, monkeypatch, "gate", report, "--policy", policy, *extra)


def _check(doc: dict[str, Any], rule: dict[str, Any], **kwargs: Any) -> Any:
    policy = Policy.model_validate({"rules": [{"id": "r", **rule}],
                                    "waivers": kwargs.pop("waivers", [])})
    return evaluate(policy, doc, today=TODAY, **kwargs)


# ---------------------------------------------------------------- exit codes


def test_exit_0_when_every_rule_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    report = _write(tmp_path, "report.json", full_document())
    policy = _policy(tmp_path, [{"id": "dp-budget", "metric": "dp.epsilon", "max": 8},
                                {"id": "util", "metric": "utility.value", "min": 0.5}])
    result = _gate(capsys, monkeypatch, report, policy)
    assert result.code == 0, result.text
    assert "privacy gate PASSED" in result.out


def test_exit_1_when_an_error_rule_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    report = _write(tmp_path, "report.json", full_document())
    policy = _policy(tmp_path, [{"id": "dp-budget", "metric": "dp.epsilon", "max": 1.0}])
    result = _gate(capsys, monkeypatch, report, policy)
    assert result.code == 1
    assert "privacy gate FAILED" in result.out and "dp-budget" in result.out
    assert "point 3.2 > max 1" in result.out


def test_exit_2_when_the_policy_is_malformed_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    report = _write(tmp_path, "report.json", full_document())
    policy = _policy(tmp_path, [{"id": "dp-budget", "metric": "dp.epsilon", "max": "three"}])
    result = _gate(capsys, monkeypatch, report, policy)
    assert result.code == 2
    assert "rules.0.max" in result.err


def test_exit_2_when_the_report_is_malformed_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    doc = full_document()
    doc["utility"]["value"] = "high"
    policy = _policy(tmp_path, [{"id": "util", "metric": "utility.value", "min": 0.5}])
    result = _gate(capsys, monkeypatch, _write(tmp_path, "report.json", doc), policy)
    assert result.code == 2 and "utility.value" in result.err


def test_exit_3_on_an_internal_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import privaudit.gate.evaluation as gate

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(gate, "evaluate", broken)
    report = _write(tmp_path, "report.json", full_document())
    policy = _policy(tmp_path, [{"id": "util", "metric": "utility.value", "min": 0.5}])
    result = _gate(capsys, monkeypatch, report, policy, "--exit-zero")
    assert result.code == 3 and "internal error" in result.err


def test_exit_4_when_a_metric_is_missing_from_the_report_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    doc = sample_report().model_dump(mode="json")  # no DP card, no DP audit
    policy = _policy(tmp_path, [{"id": "dp-budget", "metric": "dp.epsilon", "max": 8},
                                {"id": "audit", "metric": "dp_audit.violation", "max": 0},
                                {"id": "util", "metric": "utility.value", "min": 0.5}])
    result = _gate(capsys, monkeypatch, _write(tmp_path, "report.json", doc), policy)
    assert result.code == 4
    assert "evidence incomplete: the report does not contain dp.epsilon, dp_audit.violation" \
        in result.err


def test_an_unknown_metric_is_a_policy_error_suggesting_the_registered_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo is a mistake in the policy (exit 2), not evidence the report lacks (exit 4)."""
    report = _write(tmp_path, "report.json", full_document())
    policy = _policy(tmp_path, [{"id": "x", "metric": "attacks.loss.aucc", "max": 0.6}])
    result = _gate(capsys, monkeypatch, report, policy)
    assert result.code == 2, result.err
    assert "rules.0.metric: unknown metric: did you mean 'attacks.loss.auc'" in result.err
    assert "got 'attacks.loss.aucc'" in result.err
    assert "PASSED" not in result.out and "FAILED" not in result.out


def test_exit_zero_reports_the_failure_but_exits_0(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    report = _write(tmp_path, "report.json", full_document())
    policy = _policy(tmp_path, [{"id": "dp-budget", "metric": "dp.epsilon", "max": 1.0}])
    result = _gate(capsys, monkeypatch, report, policy, "--exit-zero")
    assert result.code == 0 and "FAILED" in result.out and "would exit 1" in result.err


# ---------------------------------------------------------------- rules


def test_a_failing_warning_rule_warns_without_failing_the_gate() -> None:
    result = _check(full_document(), {"metric": "dp.epsilon", "max": 1, "severity": "warning"})
    assert [c.status for c in result.checks] == ["warn"] and result.exit_code == 0


def test_gating_on_ci_high_instead_of_the_point_changes_the_verdict() -> None:
    doc = sample_report(tpr=0.03, ci=(0.02, 0.08)).model_dump(mode="json")
    rule = {"metric": "attacks.loss.tpr_at_fpr.0.01", "max": 0.05}
    assert _check(doc, {**rule, "statistic": "point"}).exit_code == 0
    bound = _check(doc, {**rule, "statistic": "ci_high"})
    assert bound.exit_code == 1 and bound.checks[0].value == pytest.approx(0.08)


def test_statistical_metrics_are_gated_on_the_bound_by_default() -> None:
    doc = sample_report(tpr=0.03, ci=(0.02, 0.08)).model_dump(mode="json")
    result = _check(doc, {"metric": "attacks.loss.tpr_at_fpr.0.01", "max": 0.05})
    assert result.checks[0].statistic == "ci_high" and result.exit_code == 1
    floor = _check(doc, {"metric": "attacks.loss.tpr_at_fpr.0.01", "min": 0.025})
    assert floor.checks[0].statistic == "ci_low" and floor.exit_code == 1


def test_a_ci_statistic_on_a_metric_without_an_interval_is_a_policy_error(
        tmp_path: Path) -> None:
    from privaudit.core.errors import ConfigError

    path = _policy(tmp_path, [{"id": "r", "metric": "dp.epsilon", "max": 3,
                               "statistic": "ci_high"}])
    with pytest.raises(ConfigError, match=r"rules\.0\.statistic"):
        load_policy(path)


def test_dp_off_counts_as_infinite_epsilon_and_fails_a_budget() -> None:
    doc = full_document(privacy={"dp": {"enabled": False}})
    result = _check(doc, {"metric": "dp.epsilon", "max": 100})
    assert result.exit_code == 1 and "DP is off" in result.checks[0].message


def test_json_pointer_metrics_read_any_number_in_the_report() -> None:
    result = _check(full_document(), {"metric": "/secure_aggregation/expansion_ratio",
                                      "max": 10})
    assert result.exit_code == 0 and result.checks[0].value == pytest.approx(8.1)


def test_unlearning_wildcard_checks_every_request_and_applies_to_filters() -> None:
    doc = full_document()
    second = copy.deepcopy(doc["unlearning"][0])
    second.update(request_id="req-2", method="npo")
    second["forget"]["privleak"] = -30.0
    doc["unlearning"].append(second)
    both = _check(doc, {"metric": "unlearning.*.forget.privleak", "min": -10, "max": 10})
    assert [(c.target, c.status) for c in both.checks] == [("req-1/sisa", "pass"),
                                                          ("req-2/npo", "fail")]
    only_sisa = _check(doc, {"metric": "unlearning.*.forget.privleak", "min": -10,
                             "applies_to": "*/sisa"})
    assert [c.target for c in only_sisa.checks] == ["req-1/sisa"]
    by_method = resolve_metric(doc, "unlearning.npo.forget.privleak")
    assert [o.target for o in by_method] == ["req-2/npo"]


@pytest.mark.parametrize("name", ["dp.epsilon", "dp.subject_level_epsilon", "dp.delta",
                                  "attacks.loss.auc", "attacks.loss.tpr_at_fpr.0.001",
                                  "unlearning.*.forget.privleak",
                                  "secure_aggregation.security_bits",
                                  "secure_aggregation.max_abs_error",
                                  "dp_audit.epsilon_lower_bound", "dp_audit.violation",
                                  "utility.value"])
def test_every_registered_metric_of_the_issue_resolves_on_a_full_report(name: str) -> None:
    assert resolve_metric(full_document(), name)


def test_exposure_metric_reads_the_exposure_section() -> None:
    doc = full_document(exposure={"model": "federated", "mean_bits": 1.5, "max_bits": 4.0})
    assert resolve_metric(doc, "attacks.exposure.mean_bits")[0].point == 1.5


# ---------------------------------------------------------------- baselines


def _with_auc(auc: float) -> dict[str, Any]:
    doc = full_document()
    doc["attacks"][0].update(auc=auc, auc_ci_low=auc - 0.03, auc_ci_high=auc + 0.03)
    return doc


def test_an_absolute_regression_against_the_baseline_fails() -> None:
    rule = {"metric": "attacks.loss.auc", "statistic": "point", "max_increase": 0.02}
    result = _check(_with_auc(0.56), rule, baseline=_with_auc(0.52))
    assert result.exit_code == 1 and "increase 0.04" in result.checks[0].message
    assert _check(_with_auc(0.53), rule, baseline=_with_auc(0.52)).exit_code == 0


def test_a_relative_regression_against_the_baseline_fails() -> None:
    rule = {"metric": "attacks.loss.auc", "statistic": "point", "max_relative_increase": 0.05}
    assert _check(_with_auc(0.56), rule, baseline=_with_auc(0.52)).exit_code == 1  # +7.7%
    assert _check(_with_auc(0.54), rule, baseline=_with_auc(0.52)).exit_code == 0  # +3.8%


def test_a_baseline_only_rule_is_skipped_without_a_baseline() -> None:
    result = _check(_with_auc(0.9), {"metric": "attacks.loss.auc", "max_increase": 0.0})
    assert result.checks[0].status == "skipped" and result.exit_code == 0


def test_baseline_cli_flag_compares_against_the_given_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    current = _write(tmp_path, "pr.json", _with_auc(0.56))
    base = _write(tmp_path, "main.json", _with_auc(0.52))
    policy = _policy(tmp_path, [{"id": "auc", "metric": "attacks.loss.auc",
                                 "statistic": "point", "max_increase": 0.02}])
    result = _gate(capsys, monkeypatch, current, policy, "--baseline", base)
    assert result.code == 1 and "over baseline 0.52" in result.out


# ---------------------------------------------------------------- waivers


def test_a_valid_waiver_waives_the_failure_and_says_so() -> None:
    waiver = {"rule": "r", "reason": "tracked in PRIV-1", "owner": "ana",
              "expires": "2026-12-31"}
    result = _check(full_document(), {"metric": "dp.epsilon", "max": 1}, waivers=[waiver])
    assert result.exit_code == 0
    assert result.checks[0].status == "waived" and result.checks[0].waiver is not None
    assert result.count("waived") == 1


def test_an_expired_waiver_no_longer_applies_and_the_output_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    report = _write(tmp_path, "report.json", full_document())
    policy = _policy(tmp_path, [{"id": "dp-budget", "metric": "dp.epsilon", "max": 1.0}],
                     [{"rule": "dp-budget", "reason": "old", "owner": "bo",
                       "expires": "2020-01-31"}])
    result = _gate(capsys, monkeypatch, report, policy)
    assert result.code == 1
    assert "waiver for rule dp-budget (owner bo) expired on 2020-01-31" in result.out


def test_a_waiver_for_an_unknown_rule_is_a_policy_error(tmp_path: Path) -> None:
    from privaudit.core.errors import ConfigError

    path = _policy(tmp_path, [{"id": "a", "metric": "dp.epsilon", "max": 1}],
                   [{"rule": "b", "reason": "x", "owner": "y", "expires": "2030-01-01"}])
    with pytest.raises(ConfigError, match="waivers name rules that do not exist: b"):
        load_policy(path)


# ---------------------------------------------------------------- --init


def test_init_writes_a_commented_starter_policy_that_loads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "privacy-gate.yaml"
    result = run_cli(capsys, monkeypatch, "gate", "--init", "--policy", path)
    assert result.code == 0
    text = path.read_text()
    assert text == starter_policy() and text.count("#") > 10
    metrics = {r.metric for r in load_policy(path).policy.rules}
    assert {"dp.epsilon", "attacks.loss.tpr_at_fpr.0.001", "unlearning.*.forget.privleak",
            "utility.value"} <= metrics
    again = run_cli(capsys, monkeypatch, "gate", "--init", "--policy", path)
    assert again.code == 2 and "refusing to overwrite" in again.err


def test_a_gate_on_a_not_informative_dp_audit_exits_4_never_passes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    doc = full_document()
    doc["dp_audit"] |= {"claimed_epsilon": 7.9, "max_provable_epsilon": 1.82,
                        "informative": False}
    policy = _policy(tmp_path, [{"id": "audit", "metric": "dp_audit.violation", "max": 0}])
    result = _gate(capsys, monkeypatch, _write(tmp_path, "report.json", doc), policy)
    assert result.code == 4, result.err
    assert "NOT INFORMATIVE" in result.out + result.err


def test_a_gate_rule_on_a_not_estimable_tpr_exits_4_never_passes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 2000 non-members resolve 1% but not 0.1%: the report has only an upper bound there,
    # which is below the limit, yet a rule on it is evidence incomplete, not a pass
    doc = sample_report(nonmembers=2000).model_dump(mode="json")
    assert doc["attacks"][0]["tpr_at_fpr"]["0.001"]["estimable"] is False
    policy = _policy(tmp_path, [{"id": "mia", "metric": "attacks.loss.tpr_at_fpr.0.001",
                                 "max": 0.05}])
    result = _gate(capsys, monkeypatch, _write(tmp_path, "report.json", doc), policy)
    assert result.code == 4, result.text
    assert ("NOT ESTIMABLE: 2000 held-out non-members resolve FPRs down to 0.005 only (it "
            "needs at least 10000)") in result.out + result.err
    resolved = _check(doc, {"metric": "attacks.loss.tpr_at_fpr.0.01", "max": 0.05})
    assert resolved.exit_code == 0  # the same report resolves 1%: gated on its bound


def test_a_schema_0_4_point_on_too_few_nonmembers_is_not_estimable_for_the_gate() -> None:
    doc = sample_report(nonmembers=2000).model_dump(mode="json")
    doc["attacks"][0]["tpr_at_fpr"]["0.001"] = {"value": 0.0, "ci_low": 0.0, "ci_high": 0.01}
    result = _check(doc, {"metric": "attacks.loss.tpr_at_fpr.0.001", "max": 0.05})
    assert [c.status for c in result.checks] == ["missing"] and result.exit_code == 4


@pytest.mark.parametrize("metric", ["unlearning.*.forget.privleak", "unlearning.sisa.ulira_auc",
                                    "unlearning.req-1.forget.ks_pvalue"])
def test_a_gate_on_an_erasure_test_too_small_to_show_anything_exits_4_never_passes(
        metric: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    doc = full_document()
    doc["unlearning"][0]["forget"] |= {"n_records": 1, "informative": False,
                                       "privleak_floor": 161.0, "ks_pvalue_floor": 1.0}
    policy = _policy(tmp_path, [{"id": "erase", "metric": metric, "min": -100, "max": 100}])
    result = _gate(capsys, monkeypatch, _write(tmp_path, "report.json", doc), policy)
    assert result.code == 4, result.text
    assert "NOT INFORMATIVE for request req-1 (sisa)" in result.out + result.err


def test_applies_to_keeps_a_metric_that_does_not_apply_to_a_method_from_exiting_4(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    doc = full_document()
    approximate = copy.deepcopy(doc["unlearning"][0])
    approximate.update(request_id="req-1", method="npo", ulira_auc=0.52)
    doc["unlearning"][0]["ulira_auc"] = None  # SISA is exact: U-LiRA does not apply
    doc["unlearning"].append(approximate)
    rule = {"id": "ulira", "metric": "unlearning.*.ulira_auc", "max": 0.6}
    every = _gate(capsys, monkeypatch, _write(tmp_path, "report.json", doc),
                  _policy(tmp_path, [rule]))
    assert every.code == 4 and "req-1/sisa" in every.out + every.err
    approximate_only = _gate(capsys, monkeypatch, _write(tmp_path, "report.json", doc),
                             _policy(tmp_path, [rule | {"applies_to": "*/npo"}]))
    assert approximate_only.code == 0, approximate_only.text


def test_an_attack_metric_globs_over_models_and_applies_to_picks_among_them() -> None:
    doc = full_document()
    oracle = copy.deepcopy(next(a for a in doc["attacks"] if a["attack"] == "loss"))
    oracle.update(model="oracle/req-1", auc=0.9, auc_ci_low=0.85, auc_ci_high=0.95)
    doc["attacks"].append(oracle)
    every = _check(doc, {"metric": "attacks.loss.*.auc", "max": 0.8})
    assert {c.target for c in every.checks} >= {"federated", "oracle/req-1"}
    assert {c.target: c.status for c in every.checks}["oracle/req-1"] == "fail"
    federated = _check(doc, {"metric": "attacks.loss.*.auc", "max": 0.8,
                             "applies_to": "federated"})
    assert [c.target for c in federated.checks] == ["federated"]
