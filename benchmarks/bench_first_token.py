"""An evaluation pass with the last BERT block at the first position only
(``mechanisms/model/first_token.py``) against the full block, in one run.

    .venv/bin/python -m pytest benchmarks/bench_first_token.py -q -s --benchmark-only \\
        -p no:cacheprovider

The demo's model (MiniLM, LoRA on the top 2 layers, a random non-zero adapter) on the demo's
first 200 training records over the cached frozen prefix, batches of 64 in length order as the
probes run them. Prints the seconds per pass of each block, their ratio and the largest logit
difference.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from transformers.models.bert.modeling_bert import BertLayer

from privaudit.audit.cli import load_preset
from privaudit.audit.session import prepare_run_data
from privaudit.mechanisms.model.first_token import FirstTokenBertLayer
from privaudit.mechanisms.models import apply_lora, load_base_model, load_tokenizer
from privaudit.mechanisms.prefix import transformer_layers
from privaudit.mechanisms.tasks import attach_features, encode_records, forward

REPEATS = 5


def test_bench_first_token_evaluation(benchmark: Any) -> None:
    cfg = load_preset("demo")
    data = prepare_run_data(cfg)
    records = [r for recs in data.clients.values() for r in recs][:200]
    tok = load_tokenizer(cfg.model)
    base = load_base_model(cfg.model, tokenizer=tok, num_labels=len(data.labels or []), seed=0)
    model, _ = apply_lora(cfg.model, base, seed=0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    model.eval()
    enc = encode_records(records, tok, labels=data.labels, max_length=cfg.model.max_length)
    order = np.argsort([len(x) for x in enc.input_ids], kind="stable").tolist()
    enc = attach_features(enc.subset(order), model)
    last = transformer_layers(model)[-1]

    def logits() -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([forward(model, b, "classification").logits
                              for b in enc.batches(64)])

    seconds: dict[type, float] = {}
    out: dict[type, torch.Tensor] = {}
    for cls in (BertLayer, FirstTokenBertLayer, BertLayer, FirstTokenBertLayer):
        last.__class__ = cls
        logits()
        t0 = time.perf_counter()
        for _ in range(REPEATS):
            out[cls] = logits()
        seconds[cls] = min(seconds.get(cls, np.inf), (time.perf_counter() - t0) / REPEATS)
    benchmark.pedantic(logits, rounds=1, iterations=1)
    diff = float((out[BertLayer] - out[FirstTokenBertLayer]).abs().max())
    ratio = seconds[FirstTokenBertLayer] / seconds[BertLayer]
    print(f"\n{len(enc)} records, {sum(len(x) for x in enc.input_ids)} token positions: "
          f"full block {seconds[BertLayer]:.3f} s/pass, first position only "
          f"{seconds[FirstTokenBertLayer]:.3f} s/pass, ratio {ratio:.2f}; "
          f"largest logit difference {diff:.1e}")
    benchmark.extra_info.update({"ratio": round(ratio, 3), "max_logit_difference": diff})
    assert diff < 1e-4
