"""The utility control against what a useless model scores: the majority class and a
bag-of-words model for a classifier, the base model for a causal LM."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from privaudit.mechanisms.utility_baselines import majority_rate, tfidf_accuracy
from privaudit.reports.schema import Control
from privaudit.reports.verdict import evaluate_verdict
from tests.reports.samples import full_document


def _utility(**utility: Any) -> Control:
    doc = copy.deepcopy(full_document())
    doc["utility"] |= utility
    return next(c for c in evaluate_verdict(doc).controls if c.id == "utility")


def test_a_constant_classifier_fails_the_utility_control() -> None:
    # always the majority class: its accuracy is the majority rate, 0.407 on 6 classes
    control = _utility(value=0.407, n_records=200,
                       baselines={"majority_class": 0.407, "tfidf_logreg": 0.62})
    assert control.status == "FAIL" and "most common class: 40.7%" in control.reason


def test_an_accuracy_not_shown_above_the_majority_rate_warns() -> None:
    control = _utility(value=0.45, n_records=40, baselines={"majority_class": 0.407})
    assert control.status == "WARN" and "not shown to beat" in control.reason


def test_a_model_a_bag_of_words_beats_by_more_than_ten_points_warns() -> None:
    control = _utility(value=0.70, n_records=400,
                       baselines={"majority_class": 0.30, "tfidf_logreg": 0.95})
    assert control.status == "WARN" and "bag-of-words" in control.reason


def test_a_model_shown_above_both_baselines_passes_and_names_them() -> None:
    control = _utility(value=0.93, n_records=400,
                       baselines={"majority_class": 0.30, "tfidf_logreg": 0.95})
    assert control.status == "PASS"
    assert "majority class 30.0%" in control.reason and "TF-IDF 95.0%" in control.reason


@pytest.mark.parametrize(("value", "status"), [(1287.0, "FAIL"), (140.0, "PASS")])
def test_a_causal_lm_is_judged_against_the_base_model_s_perplexity(
        value: float, status: str) -> None:
    control = _utility(metric="perplexity", value=value, baselines={"base_model": 370.0})
    assert control.status == status and "370" in control.reason


def test_a_perplexity_without_a_baseline_is_not_informative() -> None:
    control = _utility(metric="perplexity", value=140.0, baselines={})
    assert control.status == "NOT INFORMATIVE"


def test_majority_rate_is_the_test_share_of_the_training_split_s_most_common_label() -> None:
    assert majority_rate(["a", "a", "b"], ["b", "a", "a", "a"]) == 0.75


def test_the_bag_of_words_baseline_learns_a_separable_task_and_refuses_one_label() -> None:
    train = [f"invoice payment {i}" for i in range(10)] + [f"router wifi {i}" for i in range(10)]
    labels = ["billing"] * 10 + ["network"] * 10
    test, test_labels = ["late invoice payment", "wifi router down"], ["billing", "network"]
    assert tfidf_accuracy(train, labels, test, test_labels) == 1.0
    assert tfidf_accuracy(train, ["x"] * 20, test, test_labels) is None
