"""DP actually bites: the same deliberately overfitted run, attacked with and without DP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from tests.conftest import merge


def _loss_auc(cfg_dict: dict[str, Any], out: Path) -> tuple[float, Any]:
    report = run_audit(config_from_dict(cfg_dict), out).report
    return next(a.auc for a in report.attacks if a.attack == "loss"), report


def test_loss_attack_auc_with_epsilon_1_is_markedly_lower_than_without_dp(
    tmp_path: Path, overfit_config_dict: dict[str, Any]
) -> None:
    plain, _ = _loss_auc(overfit_config_dict, tmp_path / "plain")
    dp = {"privacy": {"dp": {"mode": "record", "target_epsilon": 1.0, "delta": 1e-5}}}
    private, report = _loss_auc(merge(overfit_config_dict, dp), tmp_path / "dp")
    card = report.privacy.dp
    assert 0.95 <= card.epsilon <= 1.0
    message = f"LOSS AUC without DP {plain:.3f}, with DP (ε = {card.epsilon:.2f}) {private:.3f}"
    assert plain >= 0.65, message  # the run without DP does memorise (measured 0.72)
    assert private <= plain - 0.12, message  # measured 0.53 at ε = 1.00
    assert abs(private - 0.5) < 0.1, message
    print(message)
