"""Load a model that privaudit did not train: a local Hugging Face directory, optionally with a
peft LoRA adapter directory (``save_pretrained``'s ``adapter_config.json`` and weights).

The loaded model is a :class:`~privaudit.mechanisms.models.ModelBundle` like a run's, so the
attack battery reads it the same way: its "adapter state" is every tensor the adapter trained
(LoRA matrices and ``modules_to_save`` copies such as a classification head). The *base
state* — the same model with the adapter switched off — is that state with every LoRA B
matrix set to zero (B·A = 0: the base function exactly) and every ``modules_to_save`` copy
replaced by peft's original module; it is what the reference-to-base attack compares with.
Without an adapter the audited model is the base directory itself and there is no base state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from privaudit.core.errors import ConfigError
from privaudit.core.rundir import sha256_file
from privaudit.mechanisms.models import AdapterState, ModelBundle, adapter_state, state_sha256

__all__ = ["ExternalModel", "adapter_problems", "load_external", "model_labels"]


@dataclass
class ExternalModel:
    bundle: ModelBundle
    state: AdapterState  # what the adapter trained ({} without an adapter)
    base_state: AdapterState | None  # the adapter switched off; None without an adapter
    labels: list[str] | None  # classification: label names in the head's order


def adapter_problems(adapter: Path) -> list[str]:
    """What stops ``--adapter`` from loading, found before any work."""
    if not (adapter / "adapter_config.json").is_file():
        return [f"--adapter: must be a peft adapter directory with an adapter_config.json "
                f"(got {str(adapter)!r})"]
    return []


def _tokenizer(base: Path) -> PreTrainedTokenizerBase:
    tok = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    if tok.pad_token is None:  # causal LMs often ship without one; the mask hides it
        tok.pad_token = tok.eos_token or tok.unk_token
    if tok.pad_token is None:
        raise ConfigError(f"--base: the tokenizer in {base} has no pad, eos or unk token to pad "
                          "batches with")
    return tok  # type: ignore[no-any-return]


def model_labels(config: object, found: Sequence[str], *, option: str) -> list[str]:
    """The head's label names in index order, matched to the labels ``found`` in the files:
    by ``config.label2id``, else integer labels 0..K−1."""
    label2id = dict(getattr(config, "label2id", None) or {})
    k = int(getattr(config, "num_labels", len(label2id)) or len(label2id))
    if label2id and set(found) <= set(label2id):
        return [name for name, _ in sorted(label2id.items(), key=lambda kv: int(kv[1]))]
    numbers = [str(i) for i in range(k)]
    if set(found) <= set(numbers):
        return numbers
    raise ConfigError(
        f"{option}: labels {sorted(set(found))[:8]} are not the model's (config.label2id: "
        f"{sorted(label2id)[:8]}; integer labels 0..{k - 1} are accepted too)")


def _base_state(model: nn.Module, state: AdapterState) -> AdapterState:
    full = model.state_dict()
    out: AdapterState = {}
    for name, tensor in state.items():
        if ".modules_to_save." in name:
            original = name.replace(".modules_to_save.default.", ".original_module.")
            out[name] = full[original].detach().clone() if original in full else tensor
        else:
            out[name] = torch.zeros_like(tensor) if "lora_" in name else tensor
    return out


def load_external(base: Path, *, task: str, adapter: Path | None,
                  labels_found: Sequence[str] = ()) -> ExternalModel:
    """Tokenizer, base model and (optionally) adapter, from local directories only."""
    hf_logging.set_verbosity_error()
    tokenizer = _tokenizer(base)
    auto = AutoModelForSequenceClassification if task == "classification" else \
        AutoModelForCausalLM
    model: nn.Module = auto.from_pretrained(str(base), local_files_only=True)
    config: Any = model.config
    labels = (model_labels(config, labels_found, option="--members/--nonmembers")
              if task == "classification" else None)
    if getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = tokenizer.pad_token_id
    for p in model.parameters():
        p.requires_grad_(False)
    base_sha = state_sha256(model.state_dict())
    adapter_sha = "none"
    if adapter is not None:
        from privaudit.mechanisms.model.lora_backend import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ConfigError(f"--adapter: {adapter} does not load onto --base {base} "
                              f"({reason})") from None
        adapter_sha = sha256_file(adapter / "adapter_config.json")
        peft_type = str(getattr(model.peft_config["default"], "peft_type", ""))
        if not peft_type.endswith("LORA"):
            raise ConfigError(f"--adapter: only LoRA adapters are supported (got {peft_type})")
    model.eval()
    state = adapter_state(model)
    bundle = ModelBundle(model=model, tokenizer=tokenizer, task=task, base_sha256=base_sha,
                         adapter_config_sha256=adapter_sha)
    return ExternalModel(bundle=bundle, state=state,
                         base_state=_base_state(model, state) if adapter is not None else None,
                         labels=labels)

