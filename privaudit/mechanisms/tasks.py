"""Encoded data sets and per-example forward passes for the two tasks.

One convention everywhere (training, utility, attack signals): the loss of an example is the
cross-entropy of its label (classification) or the mean negative log-likelihood of its tokens
after the first (causal LM). Training minimises the mean of these over a batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from privaudit.mechanisms import prefix
from privaudit.mechanisms.model.device import model_device
from privaudit.mechanisms.models import encode_texts, pad_batch


class TextRecord(Protocol):
    """What encoding reads of a record (:class:`~privaudit.mechanisms.data.records.Record`
    has it): its id, its text and, for classification, its label."""

    @property
    def id(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def label(self) -> str | None: ...


@dataclass(frozen=True)
class EncodedSet:
    """Token ids (unpadded) of records in a fixed order, with labels for classification."""

    record_ids: tuple[str, ...]
    input_ids: tuple[tuple[int, ...], ...]
    labels: tuple[int, ...] | None
    pad_id: int
    features: tuple[torch.Tensor, ...] | None = None  # frozen-prefix output per record (T, H)

    def __len__(self) -> int:
        return len(self.record_ids)

    def subset(self, indices: Sequence[int]) -> EncodedSet:
        return EncodedSet(
            record_ids=tuple(self.record_ids[i] for i in indices),
            input_ids=tuple(self.input_ids[i] for i in indices),
            labels=None if self.labels is None else tuple(self.labels[i] for i in indices),
            pad_id=self.pad_id,
            features=None if self.features is None else tuple(self.features[i] for i in indices),
        )

    def batch(self, indices: Sequence[int]) -> Batch:
        ids, mask = pad_batch([self.input_ids[i] for i in indices], self.pad_id)
        labels = None
        if self.labels is not None:
            labels = torch.tensor([self.labels[i] for i in indices], dtype=torch.long)
        prefix = None
        if self.features is not None:
            feats = [self.features[i] for i in indices]
            prefix = torch.zeros(len(feats), ids.shape[1], feats[0].shape[-1],
                                 dtype=feats[0].dtype)  # the frozen base's dtype
            for row, f in enumerate(feats):
                prefix[row, : f.shape[0]] = f
        return Batch(input_ids=ids, attention_mask=mask, labels=labels, prefix=prefix)

    def batches(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(self), batch_size):
            yield self.batch(range(start, min(start + batch_size, len(self))))


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor | None
    prefix: torch.Tensor | None = None  # cached frozen-prefix output (B, T, H)

    def to(self, device: torch.device) -> Batch:
        """This batch on ``device`` (itself when it is there already). Batches are built on
        the CPU; whoever runs a model on one moves it to the model's device first."""
        if self.input_ids.device == device:
            return self
        return Batch(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            labels=None if self.labels is None else self.labels.to(device),
            prefix=None if self.prefix is None else self.prefix.to(device),
        )


def encode_records(
    records: Sequence[TextRecord],
    tokenizer: PreTrainedTokenizerBase,
    *,
    labels: Sequence[str] | None,
    max_length: int,
) -> EncodedSet:
    ids = encode_texts(tokenizer, [r.text for r in records], max_length)
    label_ids = None
    if labels is not None:
        index = {lab: i for i, lab in enumerate(labels)}
        label_ids = tuple(index[r.label or ""] for r in records)
    pad = tokenizer.pad_token_id
    return EncodedSet(
        record_ids=tuple(r.id for r in records),
        input_ids=tuple(tuple(x) for x in ids),
        labels=label_ids,
        pad_id=int(pad if pad is not None else 0),
    )


@dataclass
class ForwardOutput:
    loss: torch.Tensor  # (B,) per-example loss
    logits: torch.Tensor  # (B, C) classification, (B, T, V) causal LM
    token_logprobs: torch.Tensor | None = None  # (B, T-1) log p(x_t | x_<t), causal LM
    token_mask: torch.Tensor | None = None  # (B, T-1) 1 where a real token is predicted


#: frozen-prefix features by (record id, token ids), shared by the encodings of one model
FeatureCache = dict[tuple[str, tuple[int, ...]], torch.Tensor]


def attach_features(data: EncodedSet, model: nn.Module, batch_size: int = 64,
                    cache: FeatureCache | None = None) -> EncodedSet:
    """``data`` with the frozen prefix's output per record (see ``prefix.py``); a no-op for a
    model without a frozen prefix. With ``cache`` (one per model: the prefix is frozen),
    records already seen are not run again; a record's features do not depend on the batch
    it is computed in (masked padding), so cached and fresh ones are the same tensors.
    Features are kept on the CPU, in the frozen base's dtype."""
    if not prefix.has_prefix(model) or data.features is not None or not len(data):
        return data
    cache = {} if cache is None else cache
    keys = list(zip(data.record_ids, data.input_ids, strict=True))
    todo = [i for i, k in enumerate(keys) if k not in cache]
    for start in range(0, len(todo), batch_size):
        indices = todo[start:start + batch_size]
        batch = data.batch(indices).to(model_device(model))
        hidden = prefix.compute_features(model, batch.input_ids, batch.attention_mask).cpu()
        for row, i in enumerate(indices):
            cache[keys[i]] = hidden[row, : len(data.input_ids[i])].clone()
    return replace(data, features=tuple(cache[k] for k in keys))


def token_nll(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The causal LM's per-example loss: the mean negative log-likelihood of the tokens after
    the first (``targets`` shifted by one, ``mask`` 1 where a token counts), with the
    per-token log-probabilities and the shifted mask. The one implementation, for training
    (DP-SGD's per-example loss) and for evaluation and attacks alike."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    token_logprobs = logp.gather(-1, targets[:, 1:].clamp(min=0).unsqueeze(-1)).squeeze(-1)
    shifted = mask[:, 1:].to(token_logprobs.dtype)
    loss = -(token_logprobs * shifted).sum(-1) / shifted.sum(-1).clamp(min=1)
    return loss, token_logprobs, shifted


def forward(model: nn.Module, batch: Batch, task: str) -> ForwardOutput:
    """The model on ``batch`` (moved to the model's device): per-example losses in float32
    (logits cast before the log-softmax), on the model's device."""
    batch = batch.to(model_device(model))
    with prefix.use_features(model, batch.prefix):
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    logits = out.logits
    if task == "classification":
        if batch.labels is None:
            raise ValueError("classification batch without labels")
        logits = logits.float()
        loss = F.cross_entropy(logits, batch.labels, reduction="none")
        return ForwardOutput(loss=loss, logits=logits)
    loss, token_logprobs, mask = token_nll(logits, batch.input_ids, batch.attention_mask)
    return ForwardOutput(loss=loss, logits=logits, token_logprobs=token_logprobs, token_mask=mask)


@torch.no_grad()
def evaluate_utility(
    model: nn.Module, data: EncodedSet, task: str, batch_size: int = 64
) -> tuple[str, float]:
    """Accuracy (classification) or perplexity (causal LM) on ``data``."""
    was_training = model.training
    model.eval()
    correct, total, nll, tokens = 0, 0, 0.0, 0.0
    device = model_device(model)
    for batch in data.batches(batch_size):
        batch = batch.to(device)
        out = forward(model, batch, task)
        if task == "classification" and batch.labels is not None:
            correct += int((out.logits.argmax(-1) == batch.labels).sum())
            total += len(batch.labels)
        elif out.token_logprobs is not None and out.token_mask is not None:
            nll -= float((out.token_logprobs * out.token_mask).sum())
            tokens += float(out.token_mask.sum())
    model.train(was_training)
    if task == "classification":
        return "accuracy", correct / max(total, 1)
    return "perplexity", math.exp(nll / max(tokens, 1.0))
