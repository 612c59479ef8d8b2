"""Loss and utility of an unlearned model: one adapter, or SISA shards averaged.

A SISA model predicts with the mean of its shards' probabilities (Bourtoule et al. 2021):
for classification p(y|x) = (1/S) Σ_s p_s(y|x); for a causal LM the same per token. The loss
of an example is then −log of that mean (per-token mean for a causal LM), the convention of
``mechanisms/tasks.py`` for a single model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import numpy as np
import torch
from torch import nn

from privaudit.mechanisms.model.device import model_device
from privaudit.mechanisms.models import AdapterState, ensemble_log_probs, set_adapter_state
from privaudit.mechanisms.tasks import Batch, EncodedSet, evaluate_utility, forward

Member = Callable[[], AbstractContextManager[object]]


def _mean_logprob(
    model: nn.Module, states: Sequence[AdapterState] | None, batch: Batch, task: str,
    member: Member | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log of the shard-mean probability of the label (B,) or of each next token (B, T−1),
    float64, through the one ensemble (:func:`~privaudit.mechanisms.models.
    ensemble_log_probs`) the attacks use too.

    ``states=None``: the model as it is (its current adapter)."""
    masks: list[torch.Tensor | None] = []

    def one() -> torch.Tensor:
        out = forward(model, batch, task)
        if task == "classification":
            if batch.labels is None:
                raise ValueError("classification batch without labels")
            logp = torch.log_softmax(out.logits.double(), -1)
            return logp.gather(-1, batch.labels.unsqueeze(-1)).squeeze(-1)
        if out.token_logprobs is None:
            raise ValueError("causal-lm forward returned no token log-probs")
        masks.append(out.token_mask)
        return out.token_logprobs.double()

    return ensemble_log_probs(model, states, one, member=member), (masks[-1] if masks else None)


@torch.no_grad()
def per_example_loss(
    model: nn.Module,
    states: Sequence[AdapterState] | None,
    data: EncodedSet,
    task: str,
    *,
    batch_size: int = 64,
    member: Member | None = None,
) -> np.ndarray:
    """Per-example loss of the (ensemble) model on ``data`` in eval mode; restores the mode.

    ``states=None`` evaluates the model's current adapter; ``member``: the context each
    member is evaluated in (:func:`~privaudit.mechanisms.models.ensemble_log_probs`)."""
    if len(data) == 0:
        return np.zeros(0)
    was_training = model.training
    model.eval()
    out: list[np.ndarray] = []
    device = model_device(model)
    for batch in data.batches(batch_size):
        logp, mask = _mean_logprob(model, states, batch.to(device), task, member)
        if task == "classification":
            loss = -logp
        else:
            m = mask if mask is not None else torch.ones_like(logp)
            loss = -(logp * m).sum(-1) / m.sum(-1).clamp(min=1)
        out.append(loss.double().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out)


def in_length_order(data: EncodedSet, values: Callable[[EncodedSet], np.ndarray]
                    ) -> np.ndarray:
    """``values`` (one per record) computed on ``data``'s records sorted by length, so that
    batches carry little padding (17% fewer token positions on the demo's held-out records),
    returned in ``data``'s order. A record's loss does not depend on the batch it is in beyond
    float rounding (padding is masked)."""
    order = np.argsort([len(x) for x in data.input_ids], kind="stable")
    out = np.empty(len(data))
    out[order] = values(data.subset(order.tolist()))
    return out


def mean_loss(
    model: nn.Module, states: Sequence[AdapterState] | None, data: EncodedSet, task: str
) -> float:
    return float(per_example_loss(model, states, data, task).mean()) if len(data) else math.nan


@torch.no_grad()
def utility(
    model: nn.Module, states: Sequence[AdapterState], test: EncodedSet, task: str
) -> tuple[str, float]:
    """Accuracy or perplexity on ``test``: the pipeline's own for one adapter."""
    if len(states) == 1:
        set_adapter_state(model, states[0])
        return evaluate_utility(model, test, task)
    values, weights = per_example_utility(model, states, test, task)
    if task == "classification":
        return "accuracy", float(values.sum()) / max(len(values), 1)
    return "perplexity", math.exp(float(values.sum()) / max(float(weights.sum()), 1.0))


@torch.no_grad()
def per_example_utility(
    model: nn.Module, states: Sequence[AdapterState], test: EncodedSet, task: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per test example: (1 if predicted right else 0, 1) for classification, (summed token
    NLL, tokens) for a causal LM — the pieces :func:`utility` sums, so a paired bootstrap can
    resample them (one adapter or SISA shards averaged, as :func:`utility` predicts)."""
    was_training = model.training
    model.eval()
    values: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    device = model_device(model)
    for batch in (b.to(device) for b in test.batches(64)):
        if task == "classification":
            if batch.labels is None:
                raise ValueError("classification batch without labels")
            def classes(b: Batch = batch) -> torch.Tensor:
                return torch.log_softmax(forward(model, b, task).logits.double(), -1)

            log_p = ensemble_log_probs(model, states, classes)
            values.append((log_p.argmax(-1) == batch.labels).double().cpu().numpy())
            weights.append(np.ones(len(batch.labels)))
        else:
            logp, mask = _mean_logprob(model, states, batch, task)
            m = mask if mask is not None else torch.ones_like(logp)
            values.append((-(logp * m).sum(-1)).double().cpu().numpy())
            weights.append(m.sum(-1).double().cpu().numpy())
    model.train(was_training)
    if not values:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(values), np.concatenate(weights)
