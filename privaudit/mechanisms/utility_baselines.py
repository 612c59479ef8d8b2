"""What a useless model would score: the baselines the utility control compares with.

A privacy verdict on a model that learned nothing says little, and 1/K is no yardstick for
that: a classifier that always answers the most common class beats it whenever the classes
are unbalanced. So every run measures, on the same held-out records as the model:

- **classification**: ``majority_class``, the accuracy of always answering the training
  split's most common label; and ``tfidf_logreg``, a cheap bag-of-words model (scikit-learn's
  TF-IDF of word 1–2-grams + logistic regression) trained on the training records — what the
  task gives without a transformer, and without any privacy protection;
- **causal LM**: ``base_model``, the perplexity of the model before fine-tuning (the adapter
  switched off), which fine-tuning must improve on.

:func:`accuracy_interval` gives the Clopper–Pearson interval of an accuracy, so the control
can say whether the model is *shown* to beat the majority rate.

>>> majority_rate(["a", "a", "b"], ["a", "b", "b", "b"])
0.25
>>> low, high = accuracy_interval(0.9, 50, 0.95)
>>> round(low, 3), round(high, 3)
(0.782, 0.967)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from scipy.stats import binomtest

__all__ = ["accuracy_interval", "majority_rate", "tfidf_accuracy"]


def majority_rate(train_labels: Sequence[str], test_labels: Sequence[str]) -> float:
    """Accuracy on ``test_labels`` of always answering the most common training label."""
    if not train_labels or not test_labels:
        return float("nan")
    top, _ = Counter(train_labels).most_common(1)[0]
    return sum(label == top for label in test_labels) / len(test_labels)


def tfidf_accuracy(train_texts: Sequence[str], train_labels: Sequence[str],
                   test_texts: Sequence[str], test_labels: Sequence[str], *,
                   seed: int = 0) -> float | None:
    """Test accuracy of TF-IDF (word 1–2-grams) + logistic regression trained on the training
    records; None when the training records hold fewer than two labels."""
    if len(set(train_labels)) < 2 or not test_texts:
        return None
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          LogisticRegression(max_iter=1000, random_state=seed))
    model.fit(list(train_texts), list(train_labels))
    predicted = model.predict(list(test_texts))
    return float(sum(p == y for p, y in zip(predicted, test_labels, strict=True))
                 / len(test_labels))


def accuracy_interval(accuracy: float, n: int, confidence: float) -> tuple[float, float]:
    """Clopper–Pearson interval of an accuracy measured on ``n`` records."""
    if n <= 0:
        return 0.0, 1.0
    k = round(accuracy * n)
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)
