"""The up-front estimate: it counts the steps training really takes, `run`/`demo` print it
before any work, and a config over `budget.*` is refused with exit 2 naming the knobs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from privaudit.audit.config import config_from_dict
from privaudit.audit.estimate import budget_problems, check_budget, estimate_run, plan_run
from privaudit.core.errors import ConfigError
from tests.audit.bad_input_helpers import assert_contract, run_main
from tests.conftest import TINY, merge


def _write(tmp_path: Path, cfg: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_the_target_estimate_is_rounds_times_epochs_times_batches_per_client() -> None:
    cfg = config_from_dict(merge(TINY, {"federation": {"rounds": 3, "local_epochs": 2,
                                                       "batch_size": 16}}))
    sizes = {"client-0": 33, "client-1": 16}
    est = estimate_run(cfg, sizes)
    assert est.target_steps == 3 * 2 * (math.ceil(33 / 16) + math.ceil(16 / 16))  # 18
    assert est.total_steps == est.target_steps  # no references, requests or unlearning


def test_the_estimate_equals_the_steps_a_real_training_takes(tmp_path: Path) -> None:
    from privaudit.mechanisms.federated.train import train_federation
    from tests.mechanisms.federated.conftest import build_federation

    fed = build_federation({"federation": {"rounds": 2, "local_epochs": 2, "batch_size": 7}},
                           tmp_path / "run")
    est = estimate_run(fed.cfg, {c: len(d) for c, d in fed.clients.items()})
    result = train_federation(fed.cfg.recipe, fed.bundle, fed.clients, fed.test,
                              initial_state=fed.initial_state(), seed=fed.cfg.seed)
    taken = sum(s.steps_taken for s in result.client_states.values())
    assert taken == est.target_steps


def test_references_oracles_and_unlearning_are_counted() -> None:
    patch = {"attacks": {"references": {"count": 4}},
             "unlearning": {"methods": ["sisa", "gradient_ascent", "finetune_retain"],
                            "sisa": {"shards": 2, "slices": 2},
                            "requests": [{"id": "a", "kind": "record", "ids": ["x"]},
                                         {"id": "b", "kind": "subject", "ids": ["y"]}]}}
    cfg = config_from_dict(merge(TINY, patch))
    est = estimate_run(cfg, {"client-0": 64, "client-1": 64}, nonmembers=40)
    assert est.reference_models == 4
    # each reference: half of (128 training + 40 non-members) = 84 records over 2 clients
    assert est.reference_steps == 4 * 2 * 1 * 2 * math.ceil(42 / 16)
    assert est.oracle_retrainings == 2 and est.oracle_steps == 2 * est.target_steps
    assert est.sisa_shards == 2 and est.sisa_steps > 0
    assert est.unlearning_steps["gradient_ascent"] == 2 * 25 * 2  # max_steps × clients
    assert est.unlearning_steps["finetune_retain"] == 2 * est.target_steps // 2  # 1 round
    text = "\n".join(est.lines())
    assert "reference models: 4" in text and "oracle retrainings: 2" in text


def test_ulira_counts_its_extra_references_and_each_references_unlearning_job() -> None:
    """U-LiRA trains 2·P references when the battery has fewer, and each of them runs every
    judged method once per request: both count toward the budget."""
    request = {"id": "a", "kind": "record", "ids": ["x"]}
    base = {"attacks": {"references": {"count": 2}},
            "unlearning": {"requests": [request], "methods": ["gradient_ascent", "federaser"],
                           "verify": {"ulira_references": 3,
                                      "ulira_methods": ["gradient_ascent", "npo"]}}}
    sizes = {"client-0": 40, "client-1": 40}
    est = estimate_run(config_from_dict(merge(TINY, base)), sizes)
    off = estimate_run(config_from_dict(merge(TINY, merge(base, {"unlearning": {
        "verify": {"ulira_references": 0}}}))), sizes)
    assert (est.reference_models, off.reference_models) == (6, 2)
    assert est.reference_steps == 3 * off.reference_steps
    clients = config_from_dict(TINY).federation.clients
    max_steps = config_from_dict(TINY).unlearning.ascent.max_steps
    # npo is not among the run's methods; gradient ascent: 6 references × max_steps × clients
    assert est.unlearning_steps["U-LiRA gradient_ascent"] == 6 * max_steps * clients
    assert "U-LiRA npo" not in est.unlearning_steps and "U-LiRA federaser" not in \
        est.unlearning_steps
    assert est.total_steps > off.total_steps
    capped = config_from_dict(merge(TINY, merge(base, {"budget": {"max_reference_models": 4}})))
    assert any(p.startswith("budget.max_reference_models: the run trains 6")
               for p in budget_problems(capped, est))


def test_no_oracle_without_requests_or_when_it_is_switched_off() -> None:
    cfg = config_from_dict(merge(TINY, {"unlearning": {"oracle": False, "requests": [
        {"id": "a", "kind": "record", "ids": ["x"]}]}}))
    assert estimate_run(cfg, {"client-0": 10, "client-1": 10}).oracle_retrainings == 0
    assert estimate_run(config_from_dict(TINY), {"c": 10}).oracle_retrainings == 0


def test_a_budget_over_the_estimate_names_the_biggest_knobs() -> None:
    cfg = config_from_dict(merge(TINY, {"attacks": {"references": {"count": 8}},
                                        "budget": {"max_training_steps": 10,
                                                   "max_reference_models": 2}}))
    est = estimate_run(cfg, {"client-0": 64, "client-1": 64})
    problems = budget_problems(cfg, est)
    assert problems[0].startswith("budget.max_training_steps: the run needs about")
    assert "attacks.references.count" in problems[0] and "federation.rounds" in problems[0]
    assert problems[1] == ("budget.max_reference_models: the run trains 8 reference models, "
                           "more than the budget of 2; lower attacks.references.count (and "
                           "unlearning.verify.ulira_references, whose 2·P references are the "
                           "battery's) or raise budget.max_reference_models")
    with pytest.raises(ConfigError):
        check_budget(cfg, est)
    roomy = config_from_dict(merge(TINY, {"budget": {"max_training_steps": est.total_steps}}))
    assert budget_problems(roomy, est) == []


def test_the_budget_does_not_change_the_config_hash() -> None:
    with_budget = config_from_dict(merge(TINY, {"budget": {"max_training_steps": 5}}))
    assert with_budget.sha256() == config_from_dict(TINY).sha256()


def test_a_run_over_budget_is_refused_with_exit_2_before_writing_anything(
    tmp_path: Path,
) -> None:
    cfg = merge(TINY, {"attacks": {"references": {"count": 2}},
                       "budget": {"max_training_steps": 3}})
    out = tmp_path / "run"
    outcome = run_main("run", _write(tmp_path, cfg), "--out", out)
    assert_contract(outcome, allowed=(2,))
    assert "estimate:" in outcome.err
    assert "budget.max_training_steps" in outcome.err
    assert "attacks.references.count" in outcome.err and "federation.rounds" in outcome.err
    assert not out.exists()


def test_run_dry_run_prints_the_estimate_and_writes_nothing(tmp_path: Path) -> None:
    cfg = merge(TINY, {"attacks": {"references": {"count": 2}}})
    out = tmp_path / "run"
    outcome = run_main("run", _write(tmp_path, cfg), "--out", out, "--dry-run")
    assert outcome.code == 0, outcome.text
    est = plan_run(config_from_dict(cfg))
    assert f"estimate: {est.total_steps:,} training steps" in outcome.err
    assert "reference models: 2" in outcome.err
    assert "nothing written" in outcome.out
    assert not out.exists()


def test_demo_dry_run_prints_references_oracle_and_sisa(tmp_path: Path) -> None:
    outcome = run_main("demo", "--out", tmp_path / "demo", "--dry-run")
    assert outcome.code == 0, outcome.text
    for part in ("target federation:", "reference models: 2", "oracle retrainings: 1",
                 "SISA: 4 shards"):
        assert part in outcome.err
    assert not (tmp_path / "demo").exists()


def test_a_bad_budget_value_is_a_config_error_naming_it(tmp_path: Path) -> None:
    outcome = run_main("config", "validate",
                       _write(tmp_path, merge(TINY, {"budget": {"max_training_steps": 0}})))
    assert_contract(outcome, allowed=(2,))
    assert "budget.max_training_steps: Input should be greater than or equal to 1" in \
        outcome.err


def test_dry_run_states_the_dp_audits_ceiling_and_when_it_cannot_test_the_claim() -> None:
    from privaudit.audit.estimate import dp_audit_power_lines

    dp8 = {"dp": {"mode": "record", "target_epsilon": 8.0, "delta": 1e-5}}
    cfg = config_from_dict(merge(TINY, {
        "privacy": dp8, "attacks": {"dp_audit": {"canaries": 200, "kind": "mislabeled"}}}))
    lines = dp_audit_power_lines(cfg)
    assert lines[0].startswith(
        "DP audit: 200 mislabeled canaries, 20 guesses: it can show at most ε ≥ 2.57")
    assert "NOT INFORMATIVE" in lines[1] and "every canary guessed" in lines[1]
    honest = merge(TINY, {"privacy": {"dp": {"mode": "record", "target_epsilon": 1.0,
                                             "delta": 1e-5}},
                          "attacks": {"dp_audit": {"canaries": 200, "kind": "mislabeled"}}})
    assert len(dp_audit_power_lines(config_from_dict(honest))) == 1  # 1 < 2.57: testable
    # gradient canaries (auto under record-level DP) add the f-DP bound's ceiling
    gradient = dp_audit_power_lines(config_from_dict(merge(TINY, {
        "privacy": dp8, "attacks": {"dp_audit": {"canaries": 200}}})))
    assert gradient[0].startswith(
        "DP audit: 200 gradient canaries, 20 guesses: it can show at most ε ≥ 2.89")
    assert "one-run f-DP at most 2.89" in gradient[1] and "NOT INFORMATIVE" in gradient[2]
    enough = dp_audit_power_lines(config_from_dict(merge(TINY, {
        "privacy": dp8, "attacks": {"dp_audit": {
            "canaries": 6000, "guesses": {"positive": 0.2, "negative": 0.01}}}})))
    assert len(enough) == 2 and "at most ε ≥ 10.2" in enough[0]  # 8 < 10.2: testable


def test_dry_run_states_the_smallest_fpr_the_nonmembers_resolve_and_what_is_not_estimable(
) -> None:
    import doctest

    from privaudit.audit import estimate
    from privaudit.audit.estimate import tpr_resolution_lines

    cfg = config_from_dict(TINY)  # 40 held-out non-members
    lines = tpr_resolution_lines(cfg, nonmembers=40)
    assert lines[0] == "membership attacks: 40 held-out non-members resolve FPRs down to 0.25"
    assert lines[1] == ("  TPR at FPR 0.01, 0.001 will be NOT ESTIMABLE (an upper bound only): "
                        "0.001 needs at least 10000 held-out non-members")
    assert tpr_resolution_lines(cfg, nonmembers=10_000) == [
        "membership attacks: 10000 held-out non-members resolve FPRs down to 0.001"]
    assert plan_run(cfg).notes[-2:] == lines  # printed by --dry-run before anything trains
    assert doctest.testmod(estimate).failed == 0


def test_dry_run_states_what_each_erasure_request_can_show_and_a_one_record_one_cannot(
) -> None:
    from privaudit.audit.estimate import erasure_power_lines
    from tests.unlearning.conftest import data_of

    data = data_of(config_from_dict(TINY))
    one, ten = data.members[0].id, [r.id for r in data.members[1:11]]
    cfg = config_from_dict(merge(TINY, {"unlearning": {"requests": [
        {"id": "one", "kind": "record", "ids": [one]},
        {"id": "ten", "kind": "record", "ids": ten}]}}))
    lines = erasure_power_lines(cfg, data)
    m = len(data.nonmembers)
    assert lines[0].startswith(f"erasure one: 1 forget vs {m} held-out records")
    assert "NOT INFORMATIVE" in lines[0] and "records needed" in lines[0]
    assert lines[1].startswith("erasure ten: 10 forget") and "NOT INFORMATIVE" not in lines[1]
