"""The attack figures: log-log ROC with confidence bands per model, exposure per canary."""

from __future__ import annotations

import numpy as np

from privaudit.attacks.metrics import evaluate_scores
from privaudit.reports.figures.attacks import exposure_figure, roc_figure
from privaudit.reports.schema import (
    AttackResult,
    CanaryExposure,
    Exposure,
    RateCI,
    RocCurve,
)


def _result(name: str, model: str, shift: float) -> AttackResult:
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(shift, 1, 300), rng.normal(0, 1, 300)]
    m = evaluate_scores(scores, np.r_[np.ones(300), np.zeros(300)], n_bootstrap=20)
    return AttackResult(attack=name, model=model, auc=m.auc, n_members=300, n_nonmembers=300,
                        tpr_at_fpr={k: RateCI(**v.model_dump()) for k, v in m.tpr_at_fpr.items()},
                        roc=RocCurve(**m.roc.model_dump()))


def test_roc_figure_has_log_axes_one_panel_per_model_and_a_band_per_curve() -> None:
    attacks = [_result("loss", "federated", 0.5), _result("rmia", "federated", 1.0),
               _result("loss", "oracle", 0.1)]
    fig = roc_figure(attacks)
    assert fig is not None
    axes = fig.get_axes()
    assert len(axes) == 2
    assert all(ax.get_xscale() == "log" and ax.get_yscale() == "log" for ax in axes)
    assert len(axes[0].collections) >= 2  # one confidence band per curve (+ error bars)
    assert roc_figure([]) is None


def test_exposure_figure_plots_every_canary_against_its_insertions() -> None:
    exposure = Exposure(
        model="federated", mean_bits=6.0, max_bits=12.0, log2_space_size=19.93,
        secret_format="6 random digits", method="skewnorm", n_candidates=1000,
        canaries=[CanaryExposure(canary_id=f"c{i}", insertions=n, bits=b, rank=1.0)
                  for i, (n, b) in enumerate([(1, 1.0), (4, 5.0), (16, 12.0)])],
    )
    fig = exposure_figure(exposure)
    assert fig is not None
    points = fig.get_axes()[0].collections[0].get_offsets()
    assert np.asarray(points).tolist() == [[1.0, 1.0], [4.0, 5.0], [16.0, 12.0]]
    assert exposure_figure(None) is None
