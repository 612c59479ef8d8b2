"""Brief pretraining of a built causal LM on the public split, cached by config hash.

The public split is made of data subjects that share nothing with the private data, so the
pretrained base knows the corpus' language but none of the audited people. The weights are
cached under ``RUN/models/base/<hash>/`` (safetensors via ``save_pretrained``, their sha256 in
``sha256.json``); a second run with the same model config, public data and seed loads them,
once checked, instead of training again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from privaudit.core.rundir import sha256_file, verify_outputs, write_json_atomic
from privaudit.mechanisms.model.config import ModelConfig
from privaudit.mechanisms.tasks import EncodedSet, forward


def pretrain_key(cfg: ModelConfig, public_sha256: str, seed: int) -> str:
    blob = json.dumps(
        {
            "tiny": cfg.tiny.model_dump(),
            "pretrain": cfg.pretrain.model_dump(),
            "max_length": cfg.max_length,
            "public": public_sha256,
            "seed": seed,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def pretrain_causal_lm(
    model: nn.Module, public: EncodedSet, cfg: ModelConfig, *, seed: int, batch_size: int = 16
) -> None:
    """Full-parameter training of ``model`` on ``public`` for ``cfg.pretrain.epochs``."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(cfg.pretrain.epochs):
        order = torch.randperm(len(public), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            batch = public.batch(order[start : start + batch_size])
            loss = forward(model, batch, "causal-lm").loss.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()


def load_or_pretrain(
    model: nn.Module,
    public: EncodedSet,
    cfg: ModelConfig,
    *,
    seed: int,
    cache_root: Path,
    public_sha256: str,
) -> nn.Module:
    """Return the pretrained model, from ``cache_root/<hash>`` when it is there.

    The cache's ``sha256.json`` records the weights' sha256; a cached file that differs from
    it raises VerificationError naming it (a cache without it is pretrained again)."""
    cache = cache_root / pretrain_key(cfg, public_sha256, seed)
    weights = cache / "model.safetensors"
    digests = cache / "sha256.json"
    if weights.is_file() and digests.is_file():
        recorded = json.loads(digests.read_text(encoding="utf-8"))
        manifest = f"{cache_root.name}/{cache.name}/sha256.json"
        if verify_outputs(cache, recorded, manifest=manifest):
            model.load_state_dict(load_file(str(weights)), strict=False)
            return model
    if cfg.pretrain.epochs > 0 and len(public):
        pretrain_causal_lm(model, public, cfg, seed=seed)
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp")
    model.save_pretrained(str(tmp), safe_serialization=True)  # type: ignore[operator]
    write_json_atomic(tmp / "sha256.json",
                      {"model.safetensors": sha256_file(tmp / "model.safetensors")})
    if cache.exists():
        shutil.rmtree(cache)
    tmp.replace(cache)
    return model
