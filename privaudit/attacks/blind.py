"""The blind baseline: can members be told from non-members without looking at the model?

A membership-inference AUC is evidence about a model only if the members and non-members it
compares come from the same distribution. When they do not — members longer, from another
period, another topic — an attack that never queries the model separates them too, and every
AUC mixes what the model remembers with how the two sets differ (Das, Zhang and Tramèr, "Blind
Baselines Beat Membership Inference Attacks for Foundation Models", 2024). This baseline is
that attack: a classifier of the texts alone.

- Features: character 2–4-grams (TF-IDF, words' insides and edges) and three length features
  (log bytes, log words, zlib compression ratio), scaled.
- Classifier: logistic regression (scikit-learn), scored out of fold (stratified
  ``folds``-fold cross-validation), so every record is scored by a classifier that never saw
  it; members score higher. With ``groups`` (data subjects) the folds keep each subject's
  records together (``StratifiedGroupKFold``): members and non-members are whole subjects'
  records, so a classifier that saw one record of a subject would otherwise recognise the
  others by the name in them, and call a split leaky that is not.
- Decision: the split *leaks* when the one-sided Mann–Whitney test of the out-of-fold scores
  (members greater) has p < :data:`LEAK_ALPHA`. The AUC and its bootstrap interval are
  reported next to it. Under a random split of one pool the out-of-fold AUC sits at or below
  0.5 (cross-validation's known pessimism under the null), so the false-alarm rate is below
  the test's α; ``tests/attacks/test_blind.py`` measures both error rates.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from scipy.stats import mannwhitneyu

from privaudit.attacks.metrics import evaluate_scores
from privaudit.attacks.results import BlindBaseline

__all__ = ["LEAK_ALPHA", "blind_baseline", "blind_scores", "fold_count", "length_features"]

#: One-sided significance level at which the blind baseline says the split leaks.
LEAK_ALPHA = 0.001
FEATURES = ("character 2-4-grams (TF-IDF)", "log bytes", "log words", "zlib ratio")


def length_features(texts: Sequence[str]) -> np.ndarray:
    """(log bytes, log words, zlib ratio) per text.

    >>> length_features(["aaaa"]).round(3).tolist()
    [[1.609, 0.693, 3.0]]
    """
    rows = []
    for text in texts:
        raw = text.encode("utf-8")
        rows.append((np.log1p(len(raw)), np.log1p(len(text.split())),
                     len(zlib.compress(raw)) / max(len(raw), 1)))
    return np.asarray(rows, dtype=np.float64).reshape(len(texts), 3)


def fold_count(is_member: np.ndarray, folds: int, groups: Sequence[str] | None) -> int:
    """Folds the cross-validation can use: at most ``folds``, and no more than the members,
    the non-members (or, with ``groups``, the data subjects of each) there are."""
    y = np.asarray(is_member).astype(int)
    units = (np.bincount(y, minlength=2).tolist() if groups is None else
             [len({g for g, m in zip(groups, y, strict=True) if m == c}) for c in (0, 1)])
    k = int(min(folds, *units))
    if k < 2:
        raise ValueError("the blind baseline needs members and non-members of at least 2 "
                         f"{'data subjects' if groups is not None else 'records'} each")
    return k


def blind_scores(texts: Sequence[str], is_member: np.ndarray, *, folds: int = 5,
                 seed: int = 0, groups: Sequence[str] | None = None) -> np.ndarray:
    """Out-of-fold scores of a text-only classifier (members score higher); ``groups``: one
    data subject per text, never split across folds."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    y = np.asarray(is_member).astype(int)
    k = fold_count(y, folds, groups)
    features = FeatureUnion([
        ("ngrams", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2,
                                   max_features=20_000, sublinear_tf=True)),
        ("lengths", make_pipeline(FunctionTransformer(length_features), StandardScaler())),
    ])
    model = make_pipeline(features, LogisticRegression(C=1.0, max_iter=2000))
    cv = (StratifiedKFold(n_splits=k, shuffle=True, random_state=seed) if groups is None
          else StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed))
    return np.asarray(cross_val_predict(model, list(texts), y, cv=cv, groups=groups,
                                        method="decision_function"), dtype=np.float64)


def blind_baseline(members: Sequence[str], nonmembers: Sequence[str], *, seed: int = 0,
                   confidence: float = 0.95, n_bootstrap: int = 200, folds: int = 5,
                   subjects: tuple[Sequence[str], Sequence[str]] | None = None
                   ) -> BlindBaseline:
    """The blind baseline on these members' and non-members' texts (module docstring);
    ``subjects``: the data subject of each member and of each non-member."""
    texts = [*members, *nonmembers]
    y = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))].astype(bool)
    groups = None if subjects is None else [*subjects[0], *subjects[1]]
    scores = blind_scores(texts, y, folds=folds, seed=seed, groups=groups)
    m = evaluate_scores(scores, y, fprs=(0.01,), confidence=confidence,
                        n_bootstrap=n_bootstrap, seed=seed)
    p = float(mannwhitneyu(scores[y], scores[~y], alternative="greater").pvalue)
    return BlindBaseline(
        auc=m.auc, auc_ci_low=m.auc_ci_low, auc_ci_high=m.auc_ci_high, p_value=p,
        alpha=LEAK_ALPHA, leaks=p < LEAK_ALPHA, n_members=m.n_members,
        n_nonmembers=m.n_nonmembers, features=list(FEATURES),
        folds=fold_count(y, folds, groups),
        grouped_by_subject=groups is not None,
    )
