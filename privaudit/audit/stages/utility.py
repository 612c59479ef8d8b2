"""The utility stage: the model's utility on held-out records, and what a useless model would
score on the same records (:mod:`privaudit.mechanisms.utility_baselines`), for the utility
control to compare with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.models import AdapterState, adapter_state, set_adapter_state
from privaudit.mechanisms.tasks import EncodedSet, evaluate_utility
from privaudit.mechanisms.utility_baselines import majority_rate, tfidf_accuracy

__all__ = ["MeasuredUtility", "measure_utility"]


@dataclass
class MeasuredUtility:
    """The model's utility on ``n_records`` held-out records and the baselines' on the same."""

    metric: str
    value: float
    n_records: int
    baselines: dict[str, float] = field(default_factory=dict)


def measure_utility(model: nn.Module, held_out: EncodedSet, *, task: str,
                    train: Sequence[Record], test: Sequence[Record],
                    base_state: AdapterState | None, seed: int,
                    state: AdapterState | None = None) -> MeasuredUtility:
    """Utility of ``model`` on ``held_out`` (the encoding of ``test``) with the adapter
    ``state`` (loaded, and left loaded; default: as the model is), and the majority-class and
    TF-IDF baselines trained on ``train`` (classification) or the base model's perplexity
    (causal LM, ``base_state``: the adapter switched off)."""
    if state is not None:
        set_adapter_state(model, state)
    metric, value = evaluate_utility(model, held_out, task)
    baselines: dict[str, float] = {}
    if task == "classification":
        train_labels = [r.label or "" for r in train]
        test_labels = [r.label or "" for r in test]
        baselines["majority_class"] = majority_rate(train_labels, test_labels)
        bow = tfidf_accuracy([r.text for r in train], train_labels, [r.text for r in test],
                             test_labels, seed=seed)
        if bow is not None:
            baselines["tfidf_logreg"] = bow
    elif base_state:
        kept = adapter_state(model)
        try:
            set_adapter_state(model, base_state)
            baselines["base_model"] = evaluate_utility(model, held_out, task)[1]
        finally:
            set_adapter_state(model, kept)
    return MeasuredUtility(metric=metric, value=value, n_records=len(test), baselines=baselines)
