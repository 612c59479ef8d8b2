"""Shared fixtures: one key holder and four MiniLM-LoRA-sized client deltas per session."""

from __future__ import annotations

import numpy as np
import pytest

from privaudit.mechanisms.secagg import (
    EncryptedUpdate,
    ExpectedRound,
    KeyHolder,
    SecureAggregationConfig,
    encrypt_update,
)

HIDDEN, RANK, LAYERS = 384, 8, 6  # all-MiniLM-L6-v2 with LoRA r=8 on query and value
CONFIG_HASH = "sha256:adapter-config-under-test"
ROUND = 3
WEIGHTS = {"client-a": 120.0, "client-b": 80.0, "client-c": 100.0, "client-d": 95.0}


def minilm_lora_shapes(with_head: bool = True) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of a LoRA adapter on MiniLM-L6 (73,728 values; 74,498 with the head)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(LAYERS):
        for proj in ("query", "value"):
            prefix = f"base_model.model.bert.encoder.layer.{layer}.attention.self.{proj}"
            shapes[f"{prefix}.lora_A.weight"] = (RANK, HIDDEN)
            shapes[f"{prefix}.lora_B.weight"] = (HIDDEN, RANK)
    if with_head:
        shapes["base_model.model.classifier.weight"] = (2, HIDDEN)
        shapes["base_model.model.classifier.bias"] = (2,)
    return shapes


def random_delta(seed: int, with_head: bool = True) -> dict[str, np.ndarray]:
    """A delta whose tensors have different scales (1e-4 to 1e-2), like a trained adapter's."""
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(0.0, 10.0 ** rng.uniform(-4, -2), size=shape).astype(np.float32)
        for name, shape in minilm_lora_shapes(with_head).items()
    }


@pytest.fixture(scope="session")
def cfg() -> SecureAggregationConfig:
    return SecureAggregationConfig(enabled=True)  # N=8192, [60, 40], 2^40, min_clients=3


@pytest.fixture(scope="session")
def holder(cfg: SecureAggregationConfig) -> KeyHolder:
    return KeyHolder.generate(cfg)


@pytest.fixture(scope="session")
def deltas() -> dict[str, dict[str, np.ndarray]]:
    return {cid: random_delta(seed) for seed, cid in enumerate(WEIGHTS)}


@pytest.fixture(scope="session")
def updates(
    holder: KeyHolder, deltas: dict[str, dict[str, np.ndarray]]
) -> dict[str, EncryptedUpdate]:
    ctx = holder.client_context()
    return {
        cid: encrypt_update(
            deltas[cid], weight=WEIGHTS[cid], round=ROUND, client_id=cid,
            adapter_config_hash=CONFIG_HASH, context_bytes=ctx,
        )
        for cid in WEIGHTS
    }


@pytest.fixture(scope="session")
def expected(deltas: dict[str, dict[str, np.ndarray]]) -> ExpectedRound:
    return ExpectedRound.from_state(
        deltas["client-a"], adapter_config_hash=CONFIG_HASH, round=ROUND
    )


@pytest.fixture(scope="session")
def weights() -> dict[str, float]:
    return dict(WEIGHTS)


@pytest.fixture(scope="session")
def config_hash() -> str:
    return CONFIG_HASH


@pytest.fixture(scope="session")
def round_number() -> int:
    return ROUND


@pytest.fixture(scope="session")
def make_delta():  # type: ignore[no-untyped-def]
    """``make_delta(seed, with_head=True)``: another MiniLM-LoRA-shaped delta."""
    return random_delta
