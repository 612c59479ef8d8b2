"""The transformer families privaudit knows: where LoRA goes and where the blocks are.

A family is a Hugging Face ``config.model_type``. Its entry names the attention projections
that get LoRA by default (the query and value projections, or the fused QKV projection where
the family has one: Phi-3's ``qkv_proj``, GPT-2's ``c_attn`` (a Conv1D), GPT-NeoX's
``query_key_value``) and the attribute holding its blocks (peft's ``layers_pattern``, for
``model.lora.top_layers``). A model of another family needs ``model.lora.target_modules``.

>>> FAMILIES["gpt2"].targets, FAMILIES["gpt2"].layers
(('c_attn',), 'h')
>>> "bert" in known_families() and "qwen2" in known_families()
True
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAMILIES", "Family", "known_families", "unknown_family_message"]


@dataclass(frozen=True)
class Family:
    model_type: str
    targets: tuple[str, ...]
    layers: str


def _families(*rows: tuple[str, tuple[str, ...], str]) -> dict[str, Family]:
    return {kind: Family(kind, targets, layers) for kind, targets, layers in rows}


_QV = ("q_proj", "v_proj")

#: model_type → its LoRA defaults (causal LMs first, then encoders)
FAMILIES: dict[str, Family] = _families(
    ("llama", _QV, "layers"),
    ("mistral", _QV, "layers"),
    ("qwen2", _QV, "layers"),
    ("qwen3", _QV, "layers"),
    ("gemma", _QV, "layers"),
    ("phi3", ("qkv_proj",), "layers"),
    ("gpt2", ("c_attn",), "h"),
    ("gpt_neox", ("query_key_value",), "layers"),
    ("bert", ("query", "value"), "layer"),
    ("roberta", ("query", "value"), "layer"),
    ("distilbert", ("q_lin", "v_lin"), "layer"),
    ("deberta-v2", ("query_proj", "value_proj"), "layer"),
)


def known_families() -> list[str]:
    return list(FAMILIES)


def unknown_family_message(kind: str) -> str:
    """The error for a model of no known family: the known ones and what to set instead."""
    return (f"model.lora.target_modules: no default for model type {kind!r}; known families: "
            f"{', '.join(FAMILIES)}. For another family, name the modules that get LoRA, e.g. "
            "model.lora.target_modules: [q_proj, v_proj] (the attention projections' names in "
            "the model's named_modules())")
