"""The last BERT block computes only the first position in evaluation (model/first_token.py)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transformers as tf
from transformers.models.bert.modeling_bert import BertLayer

from privaudit.audit.config import config_from_dict
from privaudit.mechanisms.data import prepare_data
from privaudit.mechanisms.model import first_token
from privaudit.mechanisms.model.first_token import FirstTokenBertLayer
from privaudit.mechanisms.models import apply_lora, load_base_model, load_tokenizer
from privaudit.mechanisms.prefix import transformer_layers
from privaudit.mechanisms.tasks import attach_features, encode_records, forward


def _setup(cfg_dict: dict[str, Any], top_layers: int | None, dropout: float = 0.0
           ) -> tuple[Any, Any]:
    cfg_dict["model"]["tiny"] = {"layers": 3, "hidden": 32, "heads": 2, "intermediate": 64}
    cfg_dict["model"]["lora"]["top_layers"] = top_layers
    cfg = config_from_dict(cfg_dict)
    tok = load_tokenizer(cfg.model)
    base = load_base_model(cfg.model, tokenizer=tok, num_labels=4, seed=1)
    base.config.hidden_dropout_prob = dropout
    for m in base.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = dropout
    model, _ = apply_lora(cfg.model, base, seed=1)
    with torch.no_grad():  # non-zero LoRA B, so the adapter changes the logits
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    data = prepare_data(cfg.data, task="classification", k=2, seed=cfg.seed)
    # records of different lengths: padding must not reach the first position
    enc = encode_records(data.test[:24], tok, labels=data.labels, max_length=48)
    assert len({len(x) for x in enc.input_ids}) > 1, "the fixture needs records of several lengths"
    return model, attach_features(enc, model)


def _last(model: torch.nn.Module) -> torch.nn.Module:
    return transformer_layers(model)[-1]


def _outputs(model: torch.nn.Module, enc: Any, cls: type) -> tuple[torch.Tensor, dict[str, Any]]:
    _last(model).__class__ = cls
    model.zero_grad()
    out = forward(model, enc.batch(list(range(len(enc)))), "classification")
    out.loss.sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return out.logits.detach(), grads


def test_apply_lora_switches_the_last_bert_block_and_keeps_every_parameter_name(
    tiny_config_dict: dict[str, Any],
) -> None:
    model, _ = _setup(tiny_config_dict, top_layers=1)
    assert type(_last(model)) is FirstTokenBertLayer
    assert all(type(b) is not FirstTokenBertLayer for b in transformer_layers(model)[:-1])
    names = [n for n, _ in model.named_parameters()]
    _last(model).__class__ = BertLayer
    assert [n for n, _ in model.named_parameters()] == names


@pytest.mark.parametrize(("top_layers", "attention"), [(1, "sdpa"), (None, "sdpa"), (1, "eager")])
def test_first_token_evaluation_gives_the_full_blocks_logits_and_gradients(
    tiny_config_dict: dict[str, Any], top_layers: int | None, attention: str,
) -> None:
    model, enc = _setup(tiny_config_dict, top_layers=top_layers)
    model.base_model.model.set_attn_implementation(attention)
    assert _last(model).attention.self.config._attn_implementation == attention
    model.eval()
    full_logits, full_grads = _outputs(model, enc, BertLayer)
    fast_logits, fast_grads = _outputs(model, enc, FirstTokenBertLayer)
    assert full_logits.abs().max() > 1e-3, "the fixture's logits are all ~0"
    assert torch.allclose(full_logits, fast_logits, atol=1e-5)
    for name, g in full_grads.items():
        assert g.abs().max() > 0, f"{name}: no gradient reaches the adapter"
        assert torch.allclose(g, fast_grads[name], atol=1e-5), name


def test_training_mode_runs_the_full_block_with_the_same_dropout_draws(
    tiny_config_dict: dict[str, Any],
) -> None:
    model, enc = _setup(tiny_config_dict, top_layers=1, dropout=0.3)
    model.train()
    runs = []
    for cls in (BertLayer, FirstTokenBertLayer):
        torch.manual_seed(5)
        runs.append(_outputs(model, enc, cls)[0])
    torch.manual_seed(6)
    other = _outputs(model, enc, BertLayer)[0]
    assert not torch.equal(runs[0], other), "dropout did not change the logits"
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("family", ["roberta", "llama"])
def test_other_families_keep_their_blocks(family: str) -> None:
    small = dict(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64)
    model = (tf.RobertaForSequenceClassification(tf.RobertaConfig(**small, pad_token_id=1))
             if family == "roberta" else tf.LlamaForCausalLM(tf.LlamaConfig(**small)))
    assert not first_token.install(model)
    assert not any(isinstance(m, FirstTokenBertLayer) for m in model.modules())
