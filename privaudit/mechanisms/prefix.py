"""Cache what the frozen base model computes: the output of the layers below the LoRA layers.

With ``model.lora.top_layers: k``, LoRA goes on the top k transformer layers only. The layers
below them are frozen and carry no adapter, so their output is a fixed function of the input
tokens: it is computed once per record (eval mode, no gradients) and reused by every forward
pass — training rounds, reference models, oracles, unlearning and attack signals. Each frozen
layer is wrapped by :class:`FrozenPrefixLayer`, which runs the original layer while features
are being computed and otherwise skips it (the last one returns the cached features of the
current batch). The adapter's parameter names are unchanged (the LoRA layers are not
wrapped); a frozen layer's parameters gain the wrapper's ``.layer`` in their names, which is
why the base model's hash is taken before the wrapping.

Sound because: bidirectional attention never lets a real token attend to padding and causal
attention never looks right, so a record's features do not depend on its batch; the bottom
layers run in eval mode (no dropout) in both the cached and the uncached computation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class _PrefixState:
    features: torch.Tensor | None = None  # (B, T, H) for the batch being run


class _Captured(Exception):
    def __init__(self, hidden: torch.Tensor) -> None:
        self.hidden = hidden


class FrozenPrefixLayer(nn.Module):
    """Stands in for a frozen layer below the LoRA layers; see the module docstring."""

    def __init__(self, layer: nn.Module, *, last: bool, state: _PrefixState) -> None:
        super().__init__()
        self.layer = layer
        self.last = last
        self._state = state
        self.capture = False
        #: the length of the tuple the layer returns (0: a bare tensor), seen when it runs:
        #: a skipped layer returns the same shape of result (DeBERTa's blocks return a pair)
        self._arity = 0

    def forward(self, hidden_states: torch.Tensor, *args: object, **kwargs: object) -> object:
        features = self._state.features
        if features is None:
            out = self.layer(hidden_states, *args, **kwargs)
            self._arity = len(out) if isinstance(out, tuple) else 0
            if self.capture:
                raise _Captured(out[0] if isinstance(out, tuple) else out)
            return out
        hidden = features if self.last else hidden_states
        return (hidden, *[None] * (self._arity - 1)) if self._arity else hidden


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The ModuleList holding the transformer blocks (BERT ``encoder.layer``, Llama ``layers``)."""
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError("no ModuleList of transformer layers found in the model")


def install(model: nn.Module, n_frozen: int) -> None:
    """Wrap the bottom ``n_frozen`` layers of ``model`` (before LoRA is applied)."""
    if n_frozen <= 0:
        return
    layers = transformer_layers(model)
    state = _PrefixState()
    for i in range(n_frozen):
        layers[i] = FrozenPrefixLayer(layers[i], last=i == n_frozen - 1, state=state)


def _prefix_layers(model: nn.Module) -> list[FrozenPrefixLayer]:
    cached = getattr(model, "_privaudit_prefix_layers", None)
    if cached is None:
        cached = [m for m in model.modules() if isinstance(m, FrozenPrefixLayer)]
        object.__setattr__(model, "_privaudit_prefix_layers", cached)
    return list(cached)


def has_prefix(model: nn.Module) -> bool:
    return bool(_prefix_layers(model))


@contextmanager
def use_features(model: nn.Module, features: torch.Tensor | None) -> Iterator[None]:
    """Run ``model`` with the frozen prefix replaced by ``features`` (None: run it for real)."""
    layers = _prefix_layers(model)
    if not layers or features is None:
        yield
        return
    state = layers[0]._state
    state.features = features
    try:
        yield
    finally:
        state.features = None


@torch.no_grad()
def compute_features(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Output of the frozen prefix for one padded batch, shape (B, T, H)."""
    layers = _prefix_layers(model)
    last = next(layer for layer in layers if layer.last)
    was_training = model.training
    model.eval()
    last.capture = True
    try:
        model(input_ids=input_ids, attention_mask=attention_mask)
    except _Captured as captured:
        return captured.hidden.detach()
    finally:
        last.capture = False
        model.train(was_training)
    raise RuntimeError("the frozen prefix was never reached in the forward pass")
