"""A training job small enough to run through any engine in a second: no transformer, no files.

:func:`toy_job` builds a :class:`~privaudit.mechanisms.federated.engine.TrainingJob` the way
the pipeline does (privaudit's plain client update and federated averaging), on a toy
classifier whose trainable tensors play the adapter's part: token embeddings (frozen, the
"base model") averaged, a trainable linear map and a trainable head; labels follow the first
token. Everything derives from ``seed``: two calls give the same job. The strategy drops the
last client from every round after the first, so an engine that ignores
:meth:`~privaudit.mechanisms.federated.strategy.Strategy.select` is caught.

>>> job = toy_job(seed=0)
>>> sorted(job.clients), job.federation.rounds, sorted(job.initial_state)
(['client-0', 'client-1', 'client-2'], 2, ['head.bias', 'head.weight', 'mix.weight'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.federated.engine import TrainingJob
from privaudit.mechanisms.federated.strategy import FedAvg
from privaudit.mechanisms.models import adapter_state
from privaudit.mechanisms.tasks import EncodedSet

__all__ = ["ToyClassifier", "toy_job"]

VOCAB = 24


@dataclass
class ToyOutput:
    """What ``privaudit.mechanisms.tasks.forward`` reads from a model's output."""

    logits: torch.Tensor


class ToyClassifier(nn.Module):
    """Mean of frozen token embeddings → trainable ``mix`` (residual) → trainable ``head``."""

    def __init__(self, *, vocab: int = VOCAB, hidden: int = 8, labels: int = 2,
                 seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embed = nn.Embedding(vocab, hidden)
            self.mix = nn.Linear(hidden, hidden, bias=False)
            self.head = nn.Linear(hidden, labels)
        self.embed.weight.requires_grad_(False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> ToyOutput:
        mask = attention_mask.unsqueeze(-1).to(torch.float32)
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return ToyOutput(logits=self.head(pooled + self.mix(pooled)))


class SkipLastAfterFirst(FedAvg):
    """Federated averaging where rounds after the first leave the last client out."""

    name = "fedavg-skip-last"

    def select(self, round_index: int, client_ids: Sequence[str]) -> list[str]:
        ids = list(client_ids)
        return ids if round_index == 1 else ids[:-1]


def _records(rng: np.random.Generator, prefix: str, n: int) -> EncodedSet:
    ids, labels = [], []
    for _ in range(n):
        tokens = rng.integers(1, VOCAB, int(rng.integers(3, 9)))
        ids.append(tuple(int(t) for t in tokens))
        labels.append(int(tokens[0] < VOCAB // 2))
    return EncodedSet(record_ids=tuple(f"{prefix}-r{i:02d}" for i in range(n)),
                      input_ids=tuple(ids), labels=tuple(labels), pad_id=0)


def toy_job(*, seed: int = 0, clients: int = 3, rounds: int = 2, records: int = 12) -> TrainingJob:
    """A classification job: ``clients`` clients of ``records`` records, ``rounds`` rounds
    of one local epoch (AdamW, batches of 4), a fresh :class:`ToyClassifier` (module docstring)."""
    rng = np.random.default_rng(seed)
    data = {f"client-{k}": _records(rng, f"client-{k}", records) for k in range(clients)}
    model = ToyClassifier(seed=seed)
    fed = FederationConfig(clients=clients, rounds=rounds, local_epochs=1, batch_size=4,
                           learning_rate=0.05)
    return TrainingJob(
        model=model, task="classification", initial_state=adapter_state(model), clients=data,
        test=_records(rng, "test", 16), federation=fed, seed=seed,
        strategy=SkipLastAfterFirst(),
    )
