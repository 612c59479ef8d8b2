"""Every score on hand-made arrays, with the expected values worked out by hand here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from privaudit.attacks.scores import (
    AttackInputs,
    SignalSet,
    get_attack,
    lira_scores,
    min_k_pp_scores,
    min_k_scores,
    rmia_scores,
    token_moments,
    tune_offline_a,
)
from privaudit.core.errors import EvidenceIncomplete


def _phi(x: float) -> float:
    """Standard normal CDF by hand (math.erf), independent of scipy."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def test_loss_score_is_negated_loss_so_lower_loss_scores_higher() -> None:
    inputs = AttackInputs(target=SignalSet(loss=[0.1, 3.0, 1.0]))
    assert get_attack("loss").score(inputs).tolist() == [-0.1, -3.0, -1.0]


def test_zlib_score_divides_log_perplexity_by_compressed_length() -> None:
    inputs = AttackInputs(target=SignalSet(loss=[2.0, 3.0, 1.0], zlib_len=[40, 60, 10]))
    assert get_attack("zlib").score(inputs) == pytest.approx([-0.05, -0.05, -0.1])


def test_reference_score_subtracts_the_reference_models_loss() -> None:
    inputs = AttackInputs(
        target=SignalSet(loss=[0.2, 2.0]), reference_model=SignalSet(loss=[1.0, 2.5])
    )
    assert get_attack("reference").score(inputs) == pytest.approx([0.8, 0.5])


def test_min_k_averages_the_lowest_ceil_k_fraction_of_tokens() -> None:
    ell = [np.array([-0.1, -2.0, -0.5, -3.0, -0.2]), np.array([-1.0] * 4 + [-5.0])]
    assert min_k_scores(ell, k=0.2).tolist() == [-3.0, -5.0]
    assert min_k_scores(ell, k=0.4).tolist() == [-2.5, -3.0]
    assert min_k_scores(ell, k=1.0) == pytest.approx([-1.16, -1.8])


def test_min_k_takes_three_of_fifteen_tokens_at_k_02_despite_float_rounding() -> None:
    ell = [-np.arange(1.0, 16.0)]  # 0.2 * 15 = 3.0000000000000004 in floating point
    assert min_k_scores(ell, k=0.2).tolist() == [-14.0]  # mean(-15, -14, -13), not 4 tokens


def test_token_moments_of_a_fixed_distribution_match_the_closed_form() -> None:
    # p = (1/2, 1/4, 1/4): mu = -1.5 ln 2; E[(log p)^2] = 2.5 (ln 2)^2; sigma = 0.5 ln 2
    mu, sigma = token_moments(np.array([0.5, 0.25, 0.25]))
    assert mu == pytest.approx(-1.5 * math.log(2))
    assert sigma == pytest.approx(0.5 * math.log(2))


def test_min_k_pp_standardises_each_token_by_its_vocabulary_moments() -> None:
    # Both positions use p = (1/2, 1/4, 1/4); the text's tokens are the p=1/2 one, then a
    # p=1/4 one: z = (-ln2 + 1.5 ln2)/(0.5 ln2) = +1, then (-2 ln2 + 1.5 ln2)/(0.5 ln2) = -1.
    ln2 = math.log(2)
    ell = [np.array([-ln2, -2 * ln2])]
    mu = [np.array([-1.5 * ln2] * 2)]
    sd = [np.array([0.5 * ln2] * 2)]
    assert min_k_pp_scores(ell, mu, sd, k=0.5) == pytest.approx([-1.0])
    assert min_k_pp_scores(ell, mu, sd, k=1.0) == pytest.approx([0.0])
    sig = SignalSet(loss=[1.0], token_logprobs=ell, token_mu=mu, token_sigma=sd)
    assert get_attack("min_k_pp", k=0.5).score(AttackInputs(target=sig)) == pytest.approx([-1.0])


def _lira_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # example 0: IN phi = 2, 4; OUT phi = -1, 1; target 3.
    # example 1: IN phi = 0, 1; OUT phi = -2, -2; target -1.
    ref = np.array([[2.0, 0.0], [4.0, 1.0], [-1.0, -2.0], [1.0, -2.0]])
    keep = np.array([[True, True], [True, True], [False, False], [False, False]])
    return np.array([3.0, -1.0]), ref, keep


def test_lira_online_per_example_variance_is_the_gaussian_log_likelihood_ratio() -> None:
    target, ref, keep = _lira_case()
    scores = lira_scores(target, ref, keep, mode="online", variance="per_example")
    # ex 0: mu_in 3, mu_out 0, sigma_in = sigma_out = sqrt(2): (3/sqrt2)^2 / 2 = 2.25
    assert scores[0] == pytest.approx(2.25)
    # ex 1: OUT phi (-2, -2) has sd 0, floored at 1e-6: the target (-1) is 1e6 OUT-sds away,
    # so OUT is all but impossible and the score is huge but finite
    assert 1e10 < scores[1] < np.inf


def test_lira_online_fixed_variance_shares_one_pooled_sigma_between_in_and_out() -> None:
    target, ref, keep = _lira_case()
    # IN residuals: (+-1)^2 * 2 + (+-0.5)^2 * 2 = 2.5 over 4 - 2 = 2 dof
    # OUT residuals: (+-1)^2 * 2 + 0 = 2 over 2 dof
    # one σ for both sides (as the authors' code with a fixed variance): 4.5 / 4 dof
    var = 4.5 / 4
    expected = [
        -0.5 * (t - mi) ** 2 / var + 0.5 * (t - mo) ** 2 / var
        for t, mi, mo in [(3.0, 3.0, 0.0), (-1.0, 0.5, -2.0)]
    ]
    got = lira_scores(target, ref, keep, mode="online", variance="fixed")
    assert got == pytest.approx(expected)


def test_lira_offline_is_the_log_of_the_papers_one_sided_gaussian_test() -> None:
    target, ref, keep = _lira_case()
    got = lira_scores(target, ref, keep, mode="offline", variance="fixed")
    # OUT: mu = 0 and -2, pooled sd = 1: log Phi(3) and log Phi(1)
    assert got == pytest.approx([math.log(_phi(3.0)), math.log(_phi(1.0))])


def test_lira_offline_without_keep_treats_every_reference_as_out() -> None:
    ref = np.array([[0.0], [2.0], [4.0]])  # mean 2, sd 2; median 2
    assert lira_scores(np.array([4.0]), ref, None, mode="offline", variance="per_example") == (
        pytest.approx([math.log(_phi(1.0))])
    )


def test_lira_median_center_resists_an_outlier_reference() -> None:
    ref = np.array([[0.0], [1.0], [11.0]])  # median 1, mean 4, sd sqrt(37)
    sd = math.sqrt(37.0)
    med = lira_scores(np.array([1.0]), ref, None, mode="offline", variance="per_example")
    mean = lira_scores(np.array([1.0]), ref, None, mode="offline", variance="per_example",
                       center="mean")
    assert med == pytest.approx([math.log(0.5)])
    assert mean == pytest.approx([math.log(_phi(-3.0 / sd))])


def test_lira_refuses_examples_without_in_references_in_online_mode() -> None:
    ref = np.zeros((2, 3))
    keep = np.array([[True, False, False], [False, False, True]])  # example 1: no IN
    with pytest.raises(EvidenceIncomplete, match="IN reference"):
        lira_scores(np.zeros(3), ref, keep, mode="online", variance="fixed")


def test_rmia_offline_counts_population_points_dominated_by_the_likelihood_ratio() -> None:
    # one OUT reference, a = 0.5: Pr(.) = 0.5 * (1.5 * p_ref + 0.5)
    # x0: p 0.9, ref 0.6 -> Pr 0.7 -> ratio 1.2857; x1: p 0.3, ref 0.6 -> ratio 0.4286
    # z: p (0.5, 0.8, 0.6), ref (0.6, 0.2, 0.4) -> Pr (0.7, 0.4, 0.55) -> ratio (.714, 2.0, 1.091)
    got = rmia_scores(
        np.array([0.9, 0.3]), np.array([[0.6, 0.6]]), None,
        np.array([0.5, 0.8, 0.6]), np.array([[0.6, 0.2, 0.4]]), None,
        mode="offline", a=0.5, gamma=1.0, tiebreak=False,
    )
    assert got.tolist() == pytest.approx([2 / 3, 0.0])  # x0 beats .714 and 1.091; x1 none
    gamma2 = rmia_scores(
        np.array([0.9, 0.3]), np.array([[0.6, 0.6]]), None,
        np.array([0.5, 0.8, 0.6]), np.array([[0.6, 0.2, 0.4]]), None,
        mode="offline", a=0.5, gamma=1.5, tiebreak=False,
    )
    assert gamma2.tolist() == pytest.approx([1 / 3, 0.0])  # 1.2857/0.714 = 1.8 >= 1.5 only


def test_rmia_online_uses_the_mean_over_in_and_out_references() -> None:
    # x: p 0.8; refs 0.9 (IN) and 0.5 (OUT) -> Pr 0.7 -> ratio 8/7 = 1.143
    # z: p (0.6, 0.5); refs (0.5, 0.7) and (0.7, 0.3) -> Pr (0.6, 0.5) -> ratio (1.0, 1.0)
    inputs = AttackInputs(
        target=SignalSet(loss=[0.2], prob_true=[0.8]),
        references=[SignalSet(loss=[0.1], prob_true=[0.9]), SignalSet(loss=[0.7], prob_true=[0.5])],
        keep=np.array([[True], [False]]),
        population_target=SignalSet(loss=[0.5, 0.7], prob_true=[0.6, 0.5]),
        population_references=[SignalSet(loss=[0.7, 0.4], prob_true=[0.5, 0.7]),
                               SignalSet(loss=[0.4, 1.2], prob_true=[0.7, 0.3])],
    )
    def rmia(**params: object) -> list[float]:
        return get_attack("rmia", tiebreak=False, **params).score(inputs).tolist()

    assert rmia(mode="online") == [1.0]
    assert rmia(mode="online", gamma=1.2) == [0.0]
    # offline a=1 uses only the OUT reference (0.5): ratio 1.6; z all OUT: Pr (0.6, 0.5)
    assert rmia(mode="offline", a=1.0, gamma=1.5) == [1.0]


def test_rmia_tiebreak_orders_equal_fractions_by_ratio_and_stays_within_half_a_step() -> None:
    # a = 1, one OUT reference: Pr = p_ref. x ratios 0.6/0.2 = 3 and 0.9/0.2 = 4.5; the one z
    # has ratio 0.4/0.2 = 2, so both x dominate it: fraction 1 for both (a tie).
    args = (np.array([0.6, 0.9]), np.array([[0.2, 0.2]]), None,
            np.array([0.4]), np.array([[0.2]]), None)
    plain = rmia_scores(*args, mode="offline", a=1.0, tiebreak=False)
    broken = rmia_scores(*args, mode="offline", a=1.0, tiebreak=True)
    assert plain.tolist() == [1.0, 1.0]
    # + ratio/(1+ratio)/(2|Z|): 3/4/2 = 0.375 and 4.5/5.5/2 = 0.40909
    assert broken == pytest.approx([1.375, 1.0 + 4.5 / 5.5 / 2])


def test_rmia_offline_a_is_tuned_to_a_grid_value_on_a_reference_model(world) -> None:
    a = tune_offline_a(world.inputs, grid=[0.0, 0.5, 1.0])
    assert a in (0.0, 0.5, 1.0)
