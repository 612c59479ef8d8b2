"""Bad gate policies never crash `privaudit gate`: exit 2 naming the rule's field, or a verdict
(0 pass · 1 fail · 4 evidence missing) — never a traceback, never exit 3.

Hypothesis writes policies with rules of every shape (wrong types, unknown keys, NaN and
infinite limits, odd metric names and JSON pointers, bad globs and dates) and runs the real
CLI on a full sample report; the hostile files are checked one by one.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privaudit.gate.metrics import find_metric
from tests.audit.bad_input_helpers import TREES, assert_contract, run_main, yaml_bytes
from tests.reports.samples import full_document

METRICS = st.sampled_from([
    "dp.epsilon", "dp.delta", "dp.nothing", "attacks.loss.auc", "attacks.loss.federated.auc",
    "attacks.loss.tpr_at_fpr.0.01", "attacks.loss.tpr_at_fpr.7", "attacks.zzz.auc",
    "attacks.exposure.max_bits", "unlearning.*.forget.privleak", "unlearning.[.x",
    "secure_aggregation.security_bits", "dp_audit.violation", "utility.value", "utility",
    "/attacks/0/auc", "/attacks/99999999999999999999/auc", "/attacks/-1/auc", "/~2", "/",
    "/attacks/0", "/run", "//", "/attacks/0/tpr_at_fpr/0.01/value", "", ".", "*",
]) | st.text(max_size=20)
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-(10**30), 10**30), TREES)


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {"id": draw(st.sampled_from(["r", "dp-budget", "a.b:c", "", "-x"])
                                       | st.text(max_size=6)),
                            "metric": draw(METRICS)}
    for key in draw(st.lists(st.sampled_from(["max", "min", "max_increase",
                                              "max_relative_increase"]), max_size=3)):
        rule[key] = draw(NUMBERS)
    if draw(st.booleans()):
        rule["statistic"] = draw(st.sampled_from(["point", "ci_low", "ci_high", "median"])
                                 | TREES)
    if draw(st.booleans()):
        rule["severity"] = draw(st.sampled_from(["error", "warning", "fatal"]))
    if draw(st.booleans()):
        rule["applies_to"] = draw(st.sampled_from(["*", "[", "federated", "**/x"]) | TREES)
    if draw(st.booleans()):
        rule[draw(st.text(min_size=1, max_size=6))] = draw(TREES)
    return rule


@st.composite
def policies(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(TREES)
    policy: dict[str, Any] = {"rules": draw(st.lists(rules(), max_size=3))}
    if draw(st.booleans()):
        policy["version"] = draw(st.sampled_from([1, 2, "1"]) | TREES)
    if draw(st.booleans()):
        policy["waivers"] = [{"rule": draw(st.sampled_from(["r", "x"]) | TREES),
                              "reason": draw(st.sampled_from(["because", ""]) | TREES),
                              "owner": "me",
                              "expires": draw(st.sampled_from(["2099-01-01", "2000-01-01",
                                                               "2027-13-45"]) | TREES)}]
    return policy


def _gate(policy: bytes, report: dict[str, Any] | bytes | None = None) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        rp = Path(tmp) / "report.json"
        if isinstance(report, bytes):
            rp.write_bytes(report)
        else:
            rp.write_text(json.dumps(report if report is not None else full_document()))
        pp = Path(tmp) / "policy.yaml"
        pp.write_bytes(policy)
        outcome = run_main("gate", rp, "--policy", pp)
        assert_contract(outcome, allowed=(0, 1, 2, 4))
        return outcome


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policy=policies())
def test_a_random_policy_gives_a_verdict_or_exit_2_naming_the_field(policy: Any) -> None:
    outcome = _gate(yaml_bytes(policy))
    if outcome.code in (0, 1, 4):  # a verdict: every metric it named is a registered name
        rules = policy.get("rules") if isinstance(policy, dict) else None
        for rule in rules or []:
            metric = rule.get("metric") if isinstance(rule, dict) else None
            if isinstance(metric, str) and not metric.startswith("/"):
                assert find_metric(metric) is not None, (metric, outcome.text[-2000:])


DESTINATIONS = st.sampled_from(["DIR", "FILE", "FILE/x.xml", "/dev/null/x.xml", "DIR/new/x.xml",
                                "DIR/x.xml"])


@settings(max_examples=25, deadline=None)
@given(junit=st.none() | DESTINATIONS, sarif=st.none() | DESTINATIONS,
       metric=st.sampled_from(["attacks.loss.auc", "dp.epsilom"]))
def test_gate_outputs_are_written_or_refused_naming_the_option_before_the_verdict(
    junit: str | None, sarif: str | None, metric: str
) -> None:
    """--junit-xml / --sarif: a path that cannot be a file is exit 2 naming the option, with
    no verdict printed and no output written; a usable one (new, or an existing file, which
    is replaced) is written before the verdict."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "adir").mkdir()
        (root / "afile").write_text("x", encoding="utf-8")
        rp, pp = root / "report.json", root / "policy.yaml"
        rp.write_text(json.dumps(full_document()))
        pp.write_bytes(yaml_bytes({"rules": [{"id": "r", "metric": metric, "max": 1.0}]}))

        def where(d: str | None, name: str) -> Path | None:
            return None if d is None else Path(d.replace("DIR", str(root / "adir")).replace(
                "FILE", str(root / "afile")).replace("x.xml", name))

        paths = {"--junit-xml": where(junit, "j.xml"), "--sarif": where(sarif, "s.sarif")}
        args: list[str | Path] = ["gate", rp, "--policy", pp]
        for option, path in paths.items():
            if path is not None:
                args += [option, path]
        outcome = run_main(*args)
        assert_contract(outcome, allowed=(0, 2))
        bad = [o for o, d in (("--junit-xml", junit), ("--sarif", sarif))
               if d is not None and d != "FILE" and not d.startswith("DIR/")]
        if bad:
            assert outcome.code == 2 and any(f"{o}: " in outcome.err for o in bad), outcome.err
        if outcome.code == 2:
            assert "PASSED" not in outcome.text and "FAILED" not in outcome.text
            assert all(p is None or not p.is_file() or p == root / "afile"
                       for p in paths.values())
            assert (root / "afile").read_text(encoding="utf-8") == "x"
        else:
            assert all(p is None or p.is_file() for p in paths.values())


@settings(max_examples=30, deadline=None)
@given(blob=st.binary(max_size=200))
def test_random_bytes_as_the_policy(blob: bytes) -> None:
    _gate(blob)


def test_a_nan_limit_is_refused_instead_of_passing_every_value() -> None:
    """NaN compares false with everything: `max: .nan` would pass any value silently."""
    outcome = _gate(b"rules: [{id: r, metric: dp.epsilon, max: .nan}]\n")
    assert outcome.code == 2
    assert "rules.0.max: must be a number or ±infinity, not NaN" in outcome.err


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        (b"a: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,"
         b"*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d]\n"
         b"f: [*e,*e,*e,*e,*e,*e,*e,*e]\n", "too large once its aliases are expanded"),
        (b"[" * 3000, "not valid YAML"),
        (b"rules: [{id: r, metric: dp.epsilon, max: " + b"9" * 5000 + b"}]\n", "not valid"),
        (b"rules: [{id: r, metric: \"/~2\", max: 1}]\n", "rules.0.metric"),
        (b"rules: [{id: r, metric: dp.epsilon, max: 1, bogus: 2}]\n", "rules.0.bogus"),
        (b"rules: [{id: r, metric: dp.epsilon, max: 1, statistic: median}]\n",
         "rules.0.statistic"),
        (b"rules: [{id: r, metric: dp.epsilon, max: 1}]\nwaivers: [{rule: r, reason: x, "
         b"owner: y, expires: 2027-13-45}]\n", "month must be in 1..12"),
        ("rules: [{id: r, metric: dp.epsilon, max: 1, description: café}]\n".encode("latin-1"),
         "not UTF-8"),
        (b"rules: []\n", "rules"),
        (b"", "a policy must be a mapping"),
    ],
)
def test_hostile_policies_exit_2_naming_the_problem(policy: bytes, says: str) -> None:
    outcome = _gate(policy)
    assert outcome.code == 2, outcome.text
    assert says in outcome.err, outcome.err


@pytest.mark.parametrize(
    "report",
    [b"", b"{", b"[]", b"[" * 100_000, b'{"schema_version": ' + b"9" * 5000 + b"}",
     "{}".encode("utf-16"), json.dumps({**full_document(), "attacks": "x"}).encode()],
)
def test_a_broken_report_exits_2(report: bytes) -> None:
    outcome = _gate(b"rules: [{id: r, metric: dp.epsilon, max: 1}]\n", report)
    assert outcome.code == 2, outcome.text


def test_a_good_policy_still_gives_its_verdict() -> None:
    assert _gate(yaml_bytes({"rules": [{"id": "auc", "metric": "attacks.loss.auc",
                                        "max": 1.0}]})).code == 0
    assert _gate(yaml_bytes({"rules": [{"id": "auc", "metric": "attacks.loss.auc",
                                        "max": 0.0}]})).code == 1
