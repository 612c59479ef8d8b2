"""An evaluation pass with the last BERT block at the first position only
(``mechanisms/model/first_token.py``) against the full block, in one run.

    .venv/bin/python -m pytest benchmarks/bench_first_token.py -q -s --benchmark-only \\
        -p no:cacheprovider

The demo's model (MiniLM, LoRA on the top 2 layers, a random non-zero adapter) on the demo's
first 200 training records over the cached frozen prefix, through the probes' own call
(``in_length_order`` over ``per_example_loss``: batches of 64 sorted by length). Prints the
seconds per pass of each block, their ratio and the largest per-example loss difference.
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
from privaudit.mechanisms.tasks import attach_features, encode_records
from privaudit.unlearning.evaluate import in_length_order, per_example_loss

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
    enc = attach_features(enc, model)
    last = transformer_layers(model)[-1]

    def losses() -> np.ndarray:
        return in_length_order(enc, lambda d: per_example_loss(model, None, d, cfg.model.task))

    seconds: dict[type, float] = {}
    out: dict[type, np.ndarray] = {}
    for cls in (BertLayer, FirstTokenBertLayer, BertLayer, FirstTokenBertLayer):
        last.__class__ = cls
        losses()
        t0 = time.perf_counter()
        for _ in range(REPEATS):
            out[cls] = losses()
        seconds[cls] = min(seconds.get(cls, np.inf), (time.perf_counter() - t0) / REPEATS)
    benchmark.pedantic(losses, rounds=1, iterations=1)
    diff = float(np.abs(out[BertLayer] - out[FirstTokenBertLayer]).max())
    ratio = seconds[FirstTokenBertLayer] / seconds[BertLayer]
    print(f"\n{len(enc)} records, {sum(len(x) for x in enc.input_ids)} token positions: "
          f"full block {seconds[BertLayer]:.3f} s/pass, first position only "
          f"{seconds[FirstTokenBertLayer]:.3f} s/pass, ratio {ratio:.2f}; "
          f"largest loss difference {diff:.1e}")
    benchmark.extra_info.update({"ratio": round(ratio, 3), "max_loss_difference": diff})
    assert diff < 1e-4
