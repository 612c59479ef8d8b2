"""The model families (#22, part 1): each one, as a tiny random model saved to a directory and
loaded back through ``model.base: <dir>`` exactly as a user's model is, gets LoRA by default
on its top layer only, its frozen prefix cached without changing the output, and DP
per-sample gradients equal to a per-example loop (Opacus with peft: GPT-2's Conv1D, tied
embeddings, frozen embeddings)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers as tf
from opacus import GradSampleModule

from privaudit.core.errors import ConfigError
from privaudit.mechanisms import prefix
from privaudit.mechanisms.model.config import ModelConfig
from privaudit.mechanisms.model.families import FAMILIES
from privaudit.mechanisms.models import apply_lora, load_base_model

V, H = 96, 32
_DECODER = dict(vocab_size=V, hidden_size=H, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=2, intermediate_size=64, pad_token_id=0, bos_token_id=1,
                eos_token_id=2)
#: family → (config, task): 2 layers, hidden 32
CONFIGS: dict[str, tuple[Any, str]] = {
    "llama": (tf.LlamaConfig(**_DECODER), "causal-lm"),
    "mistral": (tf.MistralConfig(**_DECODER), "causal-lm"),
    "qwen2": (tf.Qwen2Config(**_DECODER), "causal-lm"),
    "qwen3": (tf.Qwen3Config(**_DECODER, head_dim=16), "causal-lm"),
    "gemma": (tf.GemmaConfig(**_DECODER, head_dim=16), "causal-lm"),
    "phi3": (tf.Phi3Config(**_DECODER), "causal-lm"),
    "gpt2": (tf.GPT2Config(vocab_size=V, n_embd=H, n_layer=2, n_head=2, n_positions=64),
             "causal-lm"),
    "gpt_neox": (tf.GPTNeoXConfig(vocab_size=V, hidden_size=H, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64), "causal-lm"),
    "bert": (tf.BertConfig(vocab_size=V, hidden_size=H, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=64), "classification"),
    "roberta": (tf.RobertaConfig(vocab_size=V, hidden_size=H, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64, pad_token_id=1),
                "classification"),
    "distilbert": (tf.DistilBertConfig(vocab_size=V, dim=H, n_layers=2, n_heads=2,
                                       hidden_dim=64), "classification"),
    "deberta-v2": (tf.DebertaV2Config(vocab_size=V, hidden_size=H, num_hidden_layers=2,
                                      num_attention_heads=2, intermediate_size=64),
                   "classification"),
}


def test_every_known_family_is_covered_by_the_conformance_test() -> None:
    assert set(CONFIGS) == set(FAMILIES)


def _saved(family: str, tmp_path: Path) -> tuple[ModelConfig, torch.nn.Module]:
    """The family's tiny model saved and loaded back through ``model.base: <dir>``."""
    config, task = CONFIGS[family]
    torch.manual_seed(0)
    auto = tf.AutoModelForCausalLM if task == "causal-lm" else \
        tf.AutoModelForSequenceClassification
    if task == "classification":
        config.num_labels = 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto.from_config(config).save_pretrained(tmp_path / family)
        cfg = ModelConfig(task=task, base=str(tmp_path / family),
                          lora={"rank": 4, "alpha": 8, "top_layers": 1})
        base = load_base_model(cfg, tokenizer=None, num_labels=3, seed=0)  # type: ignore[arg-type]
    assert base.config.model_type == family
    return cfg, base


def _loss(model: torch.nn.Module, ids: torch.Tensor, task: str) -> torch.Tensor:
    """Per-example loss: next-token NLL for causal LMs, cross-entropy on label 1 otherwise."""
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    if task == "causal-lm":
        return torch.nn.functional.cross_entropy(
            out[:, :-1].reshape(-1, out.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
        ).view(ids.shape[0], -1).mean(-1)
    return torch.nn.functional.cross_entropy(out, torch.ones(len(ids), dtype=torch.long),
                                             reduction="none")


@pytest.mark.parametrize("family", list(CONFIGS))
def test_each_family_gets_lora_on_its_top_layer_and_a_cached_prefix_that_changes_nothing(
    family: str, tmp_path: Path
) -> None:
    cfg, base = _saved(family, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = apply_lora(cfg, base, seed=0)
    lora = [n for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    targets = FAMILIES[family].targets
    assert lora and all(f".{FAMILIES[family].layers}.1." in n for n in lora), lora
    assert {t for t in targets if any(f".{t}." in n for n in lora)} == set(targets)
    with torch.no_grad():  # a non-zero adapter, so the comparison sees LoRA too
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    model.eval()
    ids = torch.randint(3, V, (3, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask).logits
        features = prefix.compute_features(model, ids, mask)
        with prefix.use_features(model, features):
            cached = model(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(plain, cached, atol=1e-5)


@pytest.mark.parametrize("family", list(CONFIGS))
def test_each_family_gets_dp_per_sample_gradients_equal_to_a_per_example_loop(
    family: str, tmp_path: Path
) -> None:
    cfg, base = _saved(family, tmp_path)
    cfg = cfg.model_copy(update={"lora": cfg.lora.model_copy(update={"top_layers": None})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = apply_lora(cfg, base, seed=0)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 0.1)
        model.train()
        for m in model.modules():  # no dropout: the two computations must see the same net
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        ids = torch.randint(3, V, (3, 8), generator=torch.Generator().manual_seed(2))
        gsm = GradSampleModule(model, batch_first=True, loss_reduction="sum")
        _loss(gsm, ids, cfg.task).sum().backward()
    trainable = [(n, p) for n, p in gsm.named_parameters() if p.requires_grad]
    samples = {n: p.grad_sample.clone() for n, p in trainable}
    gsm.disable_hooks()  # the loop below is plain autograd
    assert trainable
    for i in range(len(ids)):
        model.zero_grad()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            grads = torch.autograd.grad(_loss(model, ids[i:i + 1], cfg.task).sum(),
                                        [p for _, p in trainable], allow_unused=True)
        for (name, p), g in zip(trainable, grads, strict=True):
            expected = torch.zeros_like(p) if g is None else g
            got = samples[name][i]
            assert got.shape == expected.shape, (family, name, got.shape, expected.shape)
            assert torch.allclose(got, expected, atol=1e-5), (family, name)


def test_a_model_of_no_known_family_names_the_known_ones_and_target_modules(
    tmp_path: Path
) -> None:
    config = tf.OPTConfig(vocab_size=V, hidden_size=H, num_hidden_layers=2,
                          num_attention_heads=2, ffn_dim=64, word_embed_proj_dim=H)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf.AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "opt")
    cfg = ModelConfig(task="causal-lm", base=str(tmp_path / "opt"))
    base = load_base_model(cfg, tokenizer=None, num_labels=None, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"no default for model type 'opt'; known families: "
                       r"llama, mistral.*deberta-v2\. For another family, name the modules"):
        apply_lora(cfg, base, seed=0)
