"""The objectives and FedEraser's calibration, against their formulas on toy numbers."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

from privaudit.audit.config import UnlearningConfig
from privaudit.mechanisms.tasks import ForwardOutput
from privaudit.unlearning import ascent, incremental
from privaudit.unlearning.ascent import NPO, GradDiff, graddiff_loss, npo_loss
from privaudit.unlearning.incremental import calibrate


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_npo_loss_equals_the_formula_on_a_toy_batch() -> None:
    logp, ref = [-0.5, -2.0, -0.1], [-1.0, -1.0, -0.3]
    retain = [0.7, 0.2]
    beta, alpha = 0.1, 0.5
    pairs = zip(logp, ref, strict=True)
    expected = -(2 / beta) * sum(_log_sigmoid(-beta * (a - b)) for a, b in pairs) / 3
    expected += alpha * sum(retain) / 2
    got = npo_loss(torch.tensor(logp), torch.tensor(ref), torch.tensor(retain), beta=beta,
                   alpha=alpha)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(13.9987, abs=1e-4)  # 20·0.68867 + 0.5·0.45, by hand


def test_npo_objective_uses_the_label_log_probability_for_classification() -> None:
    cfg = UnlearningConfig(ascent={"beta": 0.2, "alpha": 1.0})  # type: ignore[arg-type]
    forget = ForwardOutput(loss=torch.tensor([0.5, 2.0]), logits=torch.zeros(2, 4))
    retain = ForwardOutput(loss=torch.tensor([1.0]), logits=torch.zeros(1, 4))
    ref = torch.tensor([-1.0, -1.0])
    got = NPO(cfg).objective(forget, ref, retain, "classification")
    r = [-0.5 - -1.0, -2.0 - -1.0]
    expected = -(2 / 0.2) * sum(_log_sigmoid(-0.2 * x) for x in r) / 2 + 1.0
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_npo_gradient_pushes_the_forget_log_probability_down() -> None:
    logp = torch.tensor([-0.3], requires_grad=True)
    npo_loss(logp, torch.tensor([-0.3]), None, beta=0.1, alpha=1.0).backward()
    assert logp.grad is not None and float(logp.grad) > 0  # descending lowers log π_θ


def test_graddiff_weights_forget_and_retain_terms() -> None:
    got = graddiff_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.5]), gamma=2.0, alpha=3.0)
    assert float(got) == pytest.approx(-2.0 * 2.0 + 3.0 * 0.5)
    cfg = UnlearningConfig(ascent={"gamma": 1.0, "alpha": 0.0})  # type: ignore[arg-type]
    out = ForwardOutput(loss=torch.tensor([2.0]), logits=torch.zeros(1, 2))
    assert float(GradDiff(cfg).objective(out, torch.zeros(1), None, "classification")) == -2.0


def test_calibration_keeps_the_new_direction_at_the_stored_norm() -> None:
    old = {"a": torch.tensor([3.0, 4.0]), "b": torch.tensor([1.0])}
    new = {"a": torch.tensor([0.0, -2.0]), "b": torch.tensor([0.0])}
    out = calibrate(old, new)
    assert out["a"].tolist() == [0.0, -5.0]
    assert out["b"].tolist() == [0.0]  # a zero update stays zero


@pytest.mark.parametrize("module", [ascent, incremental])
def test_worked_numbers_in_docstrings(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0
