"""The robustness probes' statistics checked by simulation (``unlearning/robustness.py``,
``unlearning/relearning.py``): each variant's interval at 1 − α/V covers the true difference;
probing V variants flags an exact retrain on any of them at most at α in all (and would not
without the Bonferroni correction); the relearning probe errs at its level on exchangeable
relearned models and finds a model whose erased records came back.

A record's score (−loss) under a model is its own difficulty N(0, 1), plus the forget set's
shift under that model, plus the model's noise N(0, 0.5) (another retraining draws it again);
a shipped variant adds its own rounding noise N(0, ``rounding``) to every score of every
model (quantizing two adapters moves their scores differently)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from privaudit.attacks.metrics import AttackMetrics
from privaudit.audit.config import VerifyConfig
from privaudit.unlearning.comparison import LossPair
from privaudit.unlearning.paired import auc_difference
from privaudit.unlearning.probe_results import RelearningEvidence
from privaudit.unlearning.relearning import judge_recovery
from privaudit.unlearning.robustness import judge_variant, variant_test

ALPHA, VARIANTS = 0.05, 4


def _auc(members: np.ndarray, nonmembers: np.ndarray) -> AttackMetrics:
    """The LOSS attack's AUC alone (the flag rules read only the point estimate; the full
    :func:`~privaudit.attacks.metrics.evaluate_scores` would triple the simulation's time)."""
    value = float(roc_auc_score(np.r_[np.ones(members.size), np.zeros(nonmembers.size)],
                                -np.r_[members, nonmembers]))
    return AttackMetrics.model_construct(auc=value, auc_ci_low=value, auc_ci_high=value)


def _models(rng: np.random.Generator, n: int, m: int, shifts: tuple[float, float],
            rounding: float = 0.0, variants: int = 1, noise: float = 0.5,
            ) -> list[tuple[LossPair, LossPair]]:
    """(unlearned, oracle) loss pairs under each of ``variants`` variants of the same two
    models on the same n forget and m held-out records."""
    forget, held = rng.normal(0, 1, n), rng.normal(0, 1, m)
    models = [(forget + s + rng.normal(0, noise, n), held + rng.normal(0, noise, m))
              for s in shifts]
    out = []
    for _ in range(variants):
        u, o = ((-(f + rng.normal(0, rounding, n)), -(h + rng.normal(0, rounding, m)))
                for f, h in models)
        out.append((u, o))
    return out


def _true_difference(shift_u: float, shift_o: float, noise: float = 0.5) -> float:
    from scipy.stats import norm

    scale = np.sqrt(2 * (1 + noise**2))
    return float(norm.cdf(shift_u / scale) - norm.cdf(shift_o / scale))


def test_each_variant_is_judged_at_one_minus_alpha_over_v_with_resamples_that_can_reject(
) -> None:
    confidence, resamples = variant_test(1 - ALPHA, 50, VARIANTS)
    assert confidence == pytest.approx(1 - ALPHA / VARIANTS)
    assert 2 / (resamples + 1) < ALPHA / VARIANTS  # the swap test's smallest p-value
    assert variant_test(1 - ALPHA, 50, 1) == (pytest.approx(1 - ALPHA), 80)


def test_a_variants_interval_at_one_minus_alpha_over_v_covers_the_true_difference() -> None:
    """The paired interval of Δ AUC at 1 − 0.05/4 = 98.75%, over 300 simulated record
    samples (20 forget, 60 held-out records; the variant's rounding noise 0.1 on top):
    coverage at least 0.96 (0.9875 less three simulation standard errors, 0.019, and the
    percentile bootstrap's small-sample shortfall, ~0.01 in the 95% check of
    tests/unlearning/test_paired.py)."""
    assert _coverage(300, seed=11) >= 0.96


def _coverage(runs: int, seed: int) -> float:
    """Share of ``runs`` record samples whose variant interval (1 − α/V) holds the truth."""
    rng = np.random.default_rng(seed)
    confidence, resamples = variant_test(1 - ALPHA, 50, VARIANTS)
    truth, hits = _true_difference(1.0, 0.5), 0
    for _ in range(runs):
        ((after, oracle),) = _models(rng, 20, 60, (1.0, 0.5), rounding=0.1)
        d = auc_difference(after, oracle, confidence=confidence, n_resamples=resamples,
                           seed=int(rng.integers(2**31)))
        assert d is not None
        hits += d.ci_low <= truth <= d.ci_high
    return hits / runs


def _family_flag_rate(n: int, m: int, runs: int, seed: int, test: tuple[float, int],
                      rounding: float) -> float:
    """Share of ``runs`` in which an exact retrain (the same forget shift under both models:
    the records slightly member-like under each) is flagged on at least one of the
    variants, each judged at ``test``."""
    rng = np.random.default_rng(seed)
    cfg, fired = VerifyConfig(), 0
    for _ in range(runs):
        fired += any(judge_variant(after, oracle, [], auc=_auc, cfg=cfg, test=test,
                                   seed=int(rng.integers(2**31)))[2]
                     for after, oracle in _models(rng, n, m, (0.3, 0.3), rounding=rounding,
                                                  variants=VARIANTS))
    return fired / runs


@pytest.mark.parametrize("seed", [0, 1])
def test_probing_four_variants_flags_an_exact_retrain_on_any_at_most_five_percent(
        seed: int) -> None:
    """Family-wise: an exact retrain probed under 4 variants is flagged on any of them at
    most 5% of the time (plus three simulation standard errors: 0.110 at 120 runs). Without
    the correction (each variant at 95%) the same retrains are flagged more often than that
    bound (seed 0, 80 runs), so the check can fail. Measured at 200 runs (seeds 0, 1; this
    module run as a script): 1.5% and 2.5% corrected, 16.5% and 18% uncorrected."""
    runs, n, m, rounding = 120, 10, 40, 0.5
    bound = ALPHA + 3 * (ALPHA * (1 - ALPHA) / runs) ** 0.5
    corrected = _family_flag_rate(n, m, runs, seed, variant_test(1 - ALPHA, 50, VARIANTS),
                                  rounding)
    assert corrected <= bound, corrected
    if seed == 0:  # once is enough to show the check can fail
        uncorrected = _family_flag_rate(n, m, 80, seed, variant_test(1 - ALPHA, 50, 1),
                                        rounding)
        assert uncorrected > bound, (corrected, uncorrected)


def _relearnable_rate(n: int, m: int, shifts: tuple[float, float], runs: int, seed: int
                      ) -> float:
    """Share of ``runs`` in which the relearned unlearned model (forget shift ``shifts[0]``)
    is found ``relearnable`` against the relearned oracle (``shifts[1]``) on n measured
    erased records and m held-out ones, at the run's 95% with 200 resamples."""
    rng = np.random.default_rng(seed)
    found = 0
    for _ in range(runs):
        ((after, oracle),) = _models(rng, n, m, shifts)
        ev = judge_recovery(RelearningEvidence(steps=5, learning_rate=0.01, source="forget",
                                               relearn_records=n, eval_records=n),
                            after, oracle, confidence=1 - ALPHA, n_resamples=200,
                            seed=int(rng.integers(2**31)))
        found += bool(ev.relearnable)
    return found / runs


@pytest.mark.parametrize("n", [4, 10])
def test_relearned_models_that_treat_the_erased_records_alike_are_rarely_relearnable(
        n: int) -> None:
    runs = 300
    assert _relearnable_rate(n, 150, (0.3, 0.3), runs, seed=n) <= ALPHA + 3 * (
        ALPHA * (1 - ALPHA) / runs) ** 0.5


@pytest.mark.parametrize(("n", "power"), [(4, 0.2), (7, 0.9), (10, 0.9)])
def test_a_model_whose_erased_records_came_back_is_found_relearnable(n: int, power: float
                                                                     ) -> None:
    """Power against a relearned unlearned model that ranks the measured erased records as
    memorised records (shift 3: forget AUC ~0.98) while the relearned oracle does not (shift
    0). Measured at 200 runs (this module run as a script): 0.33 with 4 measured records
    (the demo's: one data subject of 3–4 records), 0.99 with 7, 1.0 with 10 and 20 — with a
    single subject measured, the probe finds even total recovery only one time in three."""
    assert _relearnable_rate(n, 150, (3.0, 0.0), 100, seed=100 + n) >= power


# the figures quoted above: PYTHONPATH=. .venv/bin/python -m tests.unlearning.test_probe_statistics
if __name__ == "__main__":
    print(f"coverage of the variant interval at 1 - 0.05/4, 300 samples: {_coverage(300, 11):.3f}")
    for s in (0, 1):
        print(f"seed {s}: an exact retrain flagged on any of 4 variants, 200 runs: "
              f"{_family_flag_rate(10, 40, 200, s, variant_test(0.95, 50, 4), 0.5):.3f} "
              f"corrected, {_family_flag_rate(10, 40, 200, s, variant_test(0.95, 50, 1), 0.5):.3f}"
              " uncorrected")
    for k in (4, 7, 10, 20):
        print(f"relearnable, {k} measured records, shift 3 vs 0, 200 runs: "
              f"{_relearnable_rate(k, 150, (3.0, 0.0), 200, seed=100 + k):.3f}")
