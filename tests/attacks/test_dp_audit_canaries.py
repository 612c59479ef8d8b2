"""Audit canaries: fair independent coins, a sealed inclusion, and canaries that stay out of
the audit split."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from scipy import stats

from privaudit.audit.config import config_from_dict
from privaudit.audit.stages.dp_audit import plant_dp_audit, score_dp_audit
from privaudit.core.errors import ConfigError, InternalError
from privaudit.mechanisms.data import prepare_data
from privaudit.mechanisms.data.audit_canaries import (
    SealedInclusion,
    draw_inclusion,
    plan_audit_canaries,
    resolve_kind,
)
from tests.conftest import TINY, merge


def test_inclusion_is_an_independent_fair_coin_per_canary() -> None:
    draws = np.stack([draw_inclusion(64, seed=s) for s in range(400)]).astype(float)
    n = draws.size
    # P(included) = 1/2: two-sided binomial test on all 25 600 coins
    assert stats.binomtest(int(draws.sum()), n, 0.5).pvalue > 0.001
    # every canary's own rate is fair (chi-square over the 64 positions)
    per = draws.sum(axis=0)
    expected = draws.shape[0] / 2
    chi2 = float(((per - expected) ** 2 / expected).sum() * 2)
    assert stats.chi2.sf(chi2, df=per.size) > 0.001
    # independent: neighbouring canaries are uncorrelated (|r| small over 400 x 63 pairs)
    a, b = draws[:, :-1].ravel(), draws[:, 1:].ravel()
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(a.size)


def test_the_run_directory_gets_a_commitment_that_opens_only_after_scoring() -> None:
    bits = draw_inclusion(20, seed=5)
    sealed = SealedInclusion.seal(bits, seed=5)
    assert "_bits" not in repr(sealed) and str(bits.astype(int)) not in repr(sealed)
    with pytest.raises(InternalError, match="only after scoring"):
        sealed.opening()
    with pytest.raises(InternalError, match="20 canary scores"):
        sealed.reveal(scores=np.zeros(3))
    assert (sealed.reveal(scores=np.zeros(20)) == bits).all()
    assert sealed.opening()["commitment_sha256"] == sealed.commitment_sha256
    other = SealedInclusion.seal(~bits, seed=5)
    assert other.commitment_sha256 != sealed.commitment_sha256


def test_scoring_never_receives_the_inclusion() -> None:
    assert not {"included", "sealed", "plan"} & set(inspect.signature(score_dp_audit).parameters)


def test_included_canaries_are_spread_over_the_clients_and_unique() -> None:
    plan = plan_audit_canaries(200, kind="mislabeled", labels=["a", "b", "c"], vocabulary=[],
                               clients=["client-0", "client-1", "client-2"], seed=1)
    assert len({r.text for r in plan.canaries}) == 200
    assert {r.label for r in plan.canaries} == {"a", "b", "c"}
    held = [len(v) for v in plan.placement.values()]
    assert sum(held) == plan.sealed.n_included and min(held) > 0
    assert all(r.subject_id == r.id for r in plan.canaries)


def test_canaries_are_never_audit_members_or_nonmembers() -> None:
    cfg = config_from_dict(merge(TINY, {"attacks": {"dp_audit": {"canaries": 50}}}))
    data = prepare_data(cfg.data, task=cfg.model.task, k=cfg.federation.clients, seed=cfg.seed)
    plan = plant_dp_audit(cfg, data)
    assert plan is not None
    canary_ids = {r.id for r in plan.canaries}
    assert not canary_ids & {r.id for r in data.members + data.nonmembers}
    trained = plan.with_clients(data.clients)
    in_training = {r.id for recs in trained.values() for r in recs} & canary_ids
    assert len(in_training) == plan.sealed.n_included


def test_kind_follows_the_task_and_refuses_mislabeled_text() -> None:
    assert resolve_kind("auto", "classification") == "mislabeled"
    assert resolve_kind("auto", "causal-lm") == "secret"
    with pytest.raises(ConfigError, match=r"needs model\.task 'classification'"):
        resolve_kind("mislabeled", "causal-lm")


def test_client_level_dp_plants_each_included_canary_as_a_whole_client_of_its_own() -> None:
    cfg = config_from_dict(merge(TINY, {
        "attacks": {"dp_audit": {"canaries": 40}},
        "privacy": {"dp": {"mode": "client", "target_epsilon": 50.0, "delta": 1e-3}},
    }))
    data = prepare_data(cfg.data, task=cfg.model.task, k=cfg.federation.clients, seed=cfg.seed)
    plan = plant_dp_audit(cfg, data)
    assert plan is not None
    trained = plan.with_clients(data.clients)
    assert len(plan.canary_clients) == plan.sealed.n_included
    assert all(len(trained[c]) == 1 for c in plan.canary_clients)
    # the data clients hold no canary: the protected unit, a client, is the canary
    for c, recs in data.clients.items():
        assert trained[c] == recs
    assert list(trained)[: len(data.clients)] == list(data.clients)


def test_absent_or_zero_canaries_turn_the_audit_off() -> None:
    for patch in ({}, {"attacks": {"dp_audit": {"canaries": 0}}}):
        cfg = config_from_dict(merge(TINY, patch))
        data = prepare_data(cfg.data, task=cfg.model.task, k=2, seed=cfg.seed)
        assert plant_dp_audit(cfg, data) is None


def test_guess_fractions_above_one_are_a_config_error() -> None:
    with pytest.raises(ConfigError):
        config_from_dict(merge(TINY, {"attacks": {"dp_audit": {
            "guesses": {"positive": 0.7, "negative": 0.5}}}}))
