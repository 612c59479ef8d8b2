"""What DP costs: one local epoch of LoRA fine-tuning with DP-SGD against the same epoch
without DP, per ``grad_sample_mode``; goal ≤ 1.3× (issue 5).

    .venv/bin/python -m pytest benchmarks/bench_dp.py -q -s --benchmark-only -p no:cacheprovider

``bench_model_factory`` builds a tiny BERT classifier with LoRA from a config; override that
fixture (and ``bench_loader``) to measure the MiniLM demo task. Every epoch starts from a
fresh copy of the same weights; a DP epoch includes wrapping and unwrapping the model, as
every round of a federation pays for them.
"""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import BertConfig, BertForSequenceClassification

from privaudit.mechanisms.dp import GRAD_SAMPLE_MODES, ClientAccountant, make_private

Batch = tuple[torch.Tensor, ...]
MODES = ("none", *GRAD_SAMPLE_MODES)
REPEATS = 5

pytestmark = [
    pytest.mark.filterwarnings("ignore:DP noise comes from torch's PRNG"),
    pytest.mark.filterwarnings("ignore:Full backward hook is firing"),
]


@pytest.fixture(scope="module")
def bench_model_factory() -> Callable[[], nn.Module]:
    """A fresh LoRA model per call, identical weights (tiny BERT: 2 layers, hidden 64)."""
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=1000,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
        num_labels=2,
    )
    lora = LoraConfig(
        r=8, lora_alpha=16, target_modules=["query", "value"], modules_to_save=["classifier"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = get_peft_model(BertForSequenceClassification(cfg), lora)
    return lambda: copy.deepcopy(base)


@pytest.fixture(scope="module")
def bench_loader() -> DataLoader[Batch]:
    g = torch.Generator().manual_seed(0)
    n, seq = 512, 64
    ids = torch.randint(0, 1000, (n, seq), generator=g)
    data = TensorDataset(ids, torch.ones_like(ids), torch.randint(0, 2, (n,), generator=g))
    return DataLoader(data, batch_size=32, shuffle=True, generator=g)


def _loss(model: nn.Module, batch: Batch, criterion: Any) -> Any:
    ids, mask, labels = batch
    return criterion(model(input_ids=ids, attention_mask=mask).logits, labels)


def run_epoch(model: nn.Module, loader: DataLoader[Batch], mode: str) -> None:
    """One local epoch; ``mode`` "none" is plain SGD on the batch-mean loss."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.05)
    if mode == "none":
        model.train()
        criterion = nn.CrossEntropyLoss()
        for batch in loader:
            optimizer.zero_grad()
            _loss(model, batch, criterion).backward()
            optimizer.step()
        return
    with make_private(
        model,
        optimizer,
        loader,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        accountant=ClientAccountant("rdp"),
        grad_sample_mode=mode,
        generator=torch.Generator().manual_seed(0),
    ) as run:
        for batch in run.data_loader:
            run.optimizer.zero_grad()
            _loss(run.model, batch, run.criterion).backward()
            run.optimizer.step()


@pytest.mark.parametrize("mode", MODES)
def test_one_local_epoch(
    benchmark: Any,
    mode: str,
    bench_model_factory: Callable[[], nn.Module],
    bench_loader: DataLoader[Batch],
) -> None:
    benchmark.pedantic(
        run_epoch,
        setup=lambda: ((bench_model_factory(), bench_loader, mode), {}),
        rounds=REPEATS,
        iterations=1,
        warmup_rounds=1,
    )


def test_dp_over_non_dp_epoch_time_per_grad_sample_mode(
    benchmark: Any,
    bench_model_factory: Callable[[], nn.Module],
    bench_loader: DataLoader[Batch],
) -> None:
    """All modes side by side, interleaved so that load from elsewhere hits them alike."""
    times: dict[str, list[float]] = {m: [] for m in MODES}
    for rep in range(REPEATS + 1):
        for mode in MODES:
            model = bench_model_factory()
            start = time.perf_counter()
            run_epoch(model, bench_loader, mode)
            if rep:  # the first pass warms up
                times[mode].append(time.perf_counter() - start)
    median = {m: statistics.median(t) for m, t in times.items()}
    ratios = {m: median[m] / median["none"] for m in GRAD_SAMPLE_MODES}
    print("\nDP / non-DP time of one local epoch (goal ≤ 1.3):")
    base_ms = median["none"] * 1e3
    for mode, ratio in ratios.items():
        print(f"  {mode:<10} {ratio:5.2f}×   ({median[mode] * 1e3:.0f} ms vs {base_ms:.0f} ms)")
    print(f"  fastest: {min(ratios, key=lambda m: ratios[m])}")
    benchmark.extra_info.update({f"ratio_{m}": r for m, r in ratios.items()})
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    assert all(r > 0 for r in ratios.values())
