"""A BERT classifier reads one position of its last layer: in evaluation, compute only that one.

``BertForSequenceClassification`` predicts from the last layer's first token (the pooler takes
``hidden[:, 0]``). In that layer every position's keys and values are still needed, since the
first token attends to all of them. Its query, attention output and feed-forward are needed at
the first position only. :func:`install` switches the model's last block to
:class:`FirstTokenBertLayer`. In eval mode the block computes just that and returns the first
position, shape (B, 1, H). In training mode it runs the full block, with the same dropout draws
as before, so training is unchanged.

The logits equal the full block's up to float rounding (tests check ≤ 1e-5 on the tiny model
and on MiniLM). On the demo's MiniLM, with LoRA on the top 2 layers over the cached prefix, an
evaluation pass takes ~40% less time. Every evaluation goes through it: attack signals, utility,
the unlearning verifier, the shipped-artifact probes.

The block's class is swapped, not wrapped, so parameter names, state dicts and hashes stay the
same. Other families, and BERT models that decode or cross-attend, keep their block.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bert.modeling_bert import (
    BertForSequenceClassification,
    BertLayer,
    eager_attention_forward,
)

__all__ = ["FirstTokenBertLayer", "install"]


class FirstTokenBertLayer(BertLayer):
    """A BERT block that, in eval mode, computes its output at the first position only."""

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.training or any(v is not None and v is not False
                                for v in (*args, *kwargs.values())):
            return super().forward(hidden_states, attention_mask, *args, **kwargs)  # type: ignore[no-any-return]
        attn = self.attention.self
        first = hidden_states[:, :1]
        heads = (hidden_states.shape[0], -1, attn.num_attention_heads, attn.attention_head_size)
        query = attn.query(first).view(*heads).transpose(1, 2)
        key = attn.key(hidden_states).view(*heads).transpose(1, 2)
        value = attn.value(hidden_states).view(*heads).transpose(1, 2)
        if attention_mask is not None and attention_mask.dim() == 4:
            attention_mask = attention_mask[:, :, :1]  # the first query's row
        interface = ALL_ATTENTION_FUNCTIONS.get_interface(
            attn.config._attn_implementation, eager_attention_forward
        )
        context, _ = interface(attn, query, key, value, attention_mask, dropout=0.0,
                               scaling=attn.scaling)
        context = context.reshape(hidden_states.shape[0], 1, -1)
        return self.feed_forward_chunk(self.attention.output(context, first))  # type: ignore[no-any-return]


def install(model: nn.Module) -> bool:
    """Switch the last block of a BERT sequence classifier (before LoRA is applied) to
    :class:`FirstTokenBertLayer`; returns whether it did."""
    if not isinstance(model, BertForSequenceClassification):
        return False
    config = model.config
    last = model.bert.encoder.layer[-1]
    if type(last) is not BertLayer or config.is_decoder or config.add_cross_attention:
        return False
    last.__class__ = FirstTokenBertLayer
    return True
