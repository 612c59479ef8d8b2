"""DP actually bites: the same memorising run, attacked with and without DP, on several seeds."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from tests.conftest import check_memorises, merge

#: run seeds (data split, model init, sampling, noise): the claim must hold on each
SEEDS = (0, 1, 2)


def _loss_auc(cfg_dict: dict[str, Any], out: Path) -> tuple[float, Any]:
    report = run_audit(config_from_dict(cfg_dict), out).report
    return next(a.auc for a in report.attacks if a.attack == "loss"), report


@pytest.mark.parametrize("seed", SEEDS)
def test_loss_attack_auc_with_epsilon_1_is_markedly_lower_than_without_dp(
    tmp_path: Path, overfit_config_dict: dict[str, Any], seed: int
) -> None:
    base = merge(overfit_config_dict, {"seed": seed})
    plain, _ = _loss_auc(base, tmp_path / "plain")
    check_memorises(plain, what=f"the run without DP (seed {seed})")
    dp = {"privacy": {"dp": {"mode": "record", "target_epsilon": 1.0, "delta": 1e-5}}}
    private, report = _loss_auc(merge(base, dp), tmp_path / "dp")
    card = report.privacy.dp
    assert 0.95 <= card.epsilon <= 1.0
    message = f"seed {seed}: LOSS AUC without DP {plain:.3f}, with DP (ε = {card.epsilon:.2f}) " \
              f"{private:.3f}"
    # 40 members and 40 non-members: an AUC's standard error is about 0.06, so the margin is
    # a gap of several standard errors, not one draw's luck (measured 0.21-0.29, seeds 0-2)
    assert private <= plain - 0.15, message
    # no attack on an ε-DP model has an expected AUC above e^ε / (1 + e^ε) (0.73 at ε = 1)
    ceiling = math.exp(card.epsilon) / (1 + math.exp(card.epsilon))
    assert private <= ceiling + 0.05, f"{message}; the DP ceiling is {ceiling:.3f}"
    print(message)
