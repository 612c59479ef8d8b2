"""Tiny models built from a config (nothing downloaded): a 2-layer BERT classifier and a
2-layer Llama causal LM, each with LoRA (dropout off) and a frozen base."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import BertConfig, BertForSequenceClassification, LlamaConfig, LlamaForCausalLM

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)  # two cores shared with other test runs: no oversubscription

VOCAB, SEQ = 50, 8


def _randomise_lora_b(model: nn.Module, seed: int) -> None:
    """peft starts lora_B at zero, which makes every lora_A gradient zero: a per-example
    check would pass vacuously."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def make_bert_lora(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=SEQ,
        num_labels=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    lora = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=["query", "value"],
        modules_to_save=["classifier"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(BertForSequenceClassification(cfg), lora)
    _randomise_lora_b(model, seed)
    return model


def make_llama_lora(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=SEQ,
        attention_dropout=0.0,
    )
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(LlamaForCausalLM(cfg), lora)
    _randomise_lora_b(model, seed)
    return model


def classification_data(n: int, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n, SEQ), generator=g)
    mask = torch.ones(n, SEQ, dtype=torch.long)
    mask[::3, SEQ - 3 :] = 0  # some padding, so examples differ in length
    labels = torch.randint(0, 2, (n,), generator=g)
    return TensorDataset(ids, mask, labels)


@pytest.fixture
def bert_lora() -> nn.Module:
    return make_bert_lora()


@pytest.fixture
def llama_lora() -> nn.Module:
    return make_llama_lora()


@pytest.fixture
def loader_of() -> Callable[[int, int], DataLoader[tuple[torch.Tensor, ...]]]:
    def build(n: int, batch_size: int) -> DataLoader[tuple[torch.Tensor, ...]]:
        return DataLoader(classification_data(n), batch_size=batch_size)

    return build
