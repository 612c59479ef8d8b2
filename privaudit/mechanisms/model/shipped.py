"""The artifacts a company ships from a LoRA fine-tune: the adapter merged into the base
weights, then the weights quantized.

:func:`shipped` puts the model's *current* adapter through one variant, in place, for the
duration of a ``with`` block, and restores every tensor it touched byte for byte:

- ``merged`` — each LoRA layer's base weight becomes W + ΔW (peft's own ``get_delta_weight``,
  the matrix ``merge_and_unload`` adds) and the adapter's contribution is switched off
  (``lora_B`` zeroed): the float32 model a merge ships;
- ``int8`` / ``int4`` — merged, then every linear weight (attention, feed-forward, pooler, the
  classification head; not the embeddings nor a causal LM's output embedding, which weight-only
  quantizers such as GPTQ and bitsandbytes leave alone) rounded to nearest on a symmetric
  per-output-channel grid: scale = max |w| of the channel / (2^(b−1) − 1), w ↦ round(w/scale)
  · scale (:func:`quantize_rtn`);
- ``nf4`` — merged, then the same weights through bitsandbytes' NormalFloat-4 (Dettmers et al.
  2023, QLoRA): blocks of 64 weights, each scaled by its absmax onto the 16 NF4 levels
  (``bitsandbytes.functional.quantize_4bit`` / ``dequantize_4bit``, on the CPU).

The weights are dequantized back to float32 (fake quantization): a weight-only quantized model
computes with exactly these values.

>>> w = torch.tensor([[0.6, -1.0, 0.26]])
>>> quantize_rtn(w, 2).tolist()        # one level each side of 0: ±1.0
[[1.0, -1.0, 0.0]]
>>> bool((quantize_rtn(w, 8) - w).abs().max() <= 1.0 / 127 / 2 + 1e-7)
True
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import nn

__all__ = ["VARIANTS", "Variant", "describe", "quantize_nf4", "quantize_rtn", "shipped"]

Variant = Literal["merged", "int8", "int4", "nf4"]
#: every variant, in the order reports list them
VARIANTS: tuple[Variant, ...] = ("merged", "int8", "int4", "nf4")

_WORDS: dict[str, str] = {
    "merged": "LoRA merged into the base weights, float32",
    "int8": "merged, then int8 round-to-nearest, symmetric per output channel",
    "int4": "merged, then int4 round-to-nearest, symmetric per output channel",
    "nf4": "merged, then NF4 (bitsandbytes quantize_4bit, blocks of 64)",
}
_BITS = {"int8": 8, "int4": 4}
#: output embeddings: weight-only quantizers keep them in full precision
_KEEP = ("lm_head", "embed_out")


def describe(variant: str) -> str:
    """The variant in words, for the report."""
    return _WORDS[variant]


def quantize_rtn(weight: torch.Tensor, bits: int, *, channel_dim: int = 0) -> torch.Tensor:
    """Symmetric round-to-nearest on ``bits`` bits, one scale per slice along
    ``channel_dim`` (the output channel: 0 for ``nn.Linear``, 1 for GPT-2's ``Conv1D``);
    returned dequantized, in ``weight``'s dtype. A channel of zeros stays zero."""
    levels = 2 ** (bits - 1) - 1
    w = weight.float()
    reduce = tuple(d for d in range(w.dim()) if d != channel_dim)
    scale = w.abs().amax(dim=reduce, keepdim=True) / levels
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (torch.clamp(torch.round(w / scale), -levels, levels) * scale).to(weight.dtype)


def quantize_nf4(weight: torch.Tensor) -> torch.Tensor:
    """NF4 through bitsandbytes (blocks of 64 weights), dequantized to ``weight``'s dtype."""
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    import bitsandbytes.functional as bnbf  # its CPU kernels, loaded when first needed

    w = weight.detach().float().cpu().contiguous()
    packed, state = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4")
    return bnbf.dequantize_4bit(packed, state).reshape(w.shape).to(weight.device, weight.dtype)


def _quantize(weight: torch.Tensor, variant: str, channel_dim: int) -> torch.Tensor:
    if variant == "nf4":
        return quantize_nf4(weight)
    return quantize_rtn(weight, _BITS[variant], channel_dim=channel_dim)


def _lora_layers(model: nn.Module) -> list[Any]:
    from privaudit.mechanisms.model.lora_backend import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def _weight(module: Any) -> torch.Tensor:
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no weight tensor")
    return weight


def _quantized_linears(model: nn.Module) -> list[tuple[nn.Module, int]]:
    """Every linear weight a weight-only quantizer converts, with its output-channel dim."""
    from transformers.pytorch_utils import Conv1D

    out: list[tuple[nn.Module, int]] = []
    for name, module in model.named_modules():
        parts = name.split(".")
        if any(p.startswith("lora_") for p in parts) or any(k in parts for k in _KEEP):
            continue
        if isinstance(module, nn.Linear):
            out.append((module, 0))
        elif isinstance(module, Conv1D):
            out.append((module, 1))
    return out


#: quantized frozen weights, by (weight tensor id, variant): the same for every adapter
FrozenCache = dict[tuple[int, str], torch.Tensor]


@contextmanager
def shipped(model: nn.Module, variant: str, *, cache: FrozenCache | None = None
            ) -> Iterator[None]:
    """``model`` (its current adapter) as the shipped ``variant`` inside the block; every
    weight it changed is restored on exit. Prefix features cached for the float32 model
    (``mechanisms/prefix.py``) do not hold for a quantized one: evaluate on records without
    them (or features computed inside the block). ``cache``: where the quantized frozen
    weights (no adapter, not trainable: the same for every adapter of the model) are kept
    between calls, so that only the merged and trainable ones are quantized again."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {list(VARIANTS)}; got {variant!r}")
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    merged: set[int] = set()

    def overwrite(tensor: torch.Tensor, value: torch.Tensor) -> None:
        saved.append((tensor, tensor.detach().clone()))
        tensor.copy_(value)

    def quantized(weight: torch.Tensor, channel_dim: int) -> torch.Tensor:
        if cache is None or id(weight) in merged or weight.requires_grad:
            return _quantize(weight, variant, channel_dim)
        key = (id(weight), variant)
        if key not in cache:
            cache[key] = _quantize(weight, variant, channel_dim)
        return cache[key]

    try:
        with torch.no_grad():
            for layer in _lora_layers(model):
                weight = _weight(layer.get_base_layer())
                delta = sum((layer.get_delta_weight(a) for a in layer.active_adapters
                             if a in layer.lora_A), torch.zeros_like(weight))
                overwrite(weight, weight + delta.to(weight.dtype))
                merged.add(id(weight))
                for a in layer.active_adapters:
                    if a in layer.lora_B:
                        b = _weight(layer.lora_B[a])
                        overwrite(b, torch.zeros_like(b))
            if variant != "merged":
                for module, channel_dim in _quantized_linears(model):
                    weight = _weight(module)
                    overwrite(weight, quantized(weight, channel_dim))
        yield
    finally:
        with torch.no_grad():
            for tensor, original in reversed(saved):
                tensor.copy_(original)
