"""Where the model runs (``model.device``) and the precision of its frozen base (``model.dtype``).

The model is put on its device once, when it is built (:func:`place_model`, called by
:func:`~privaudit.mechanisms.models.apply_lora`); everything else follows it:

- batches are built on the CPU and moved to the model's device where they are consumed
  (:func:`~privaudit.mechanisms.tasks.forward`, ``Batch.to``);
- the adapter state that travels between client and server, is hashed, encrypted and saved
  is always on the CPU (``adapter_state`` copies off the device, ``set_adapter_state`` copies
  onto it), so aggregation, secure aggregation and the files never see the device;
- results leave the device as CPU tensors or numpy arrays (``.cpu()`` before ``.numpy()``).

``model.dtype`` casts the FROZEN parameters only (the base's weights, after LoRA is applied,
so the adapters start from the same float32 initialisation whatever the dtype). The LoRA
matrices and the classification head stay float32: peft casts a LoRA layer's input to its
weights' dtype, and the head gets a forward pre-hook that casts its input to float32, so the
head's output (the logits), the trainable activations Opacus records and every per-sample
gradient are float32. Losses and signals cast logits to float32 (or float64) before any
log-softmax. Buffers (rotary frequencies) keep their dtype.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from privaudit.core.errors import ConfigError
from privaudit.mechanisms.model.config import ModelConfig

__all__ = ["DTYPES", "device_problems", "model_device", "place_model", "resolve_device"]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def _cuda_missing(setting: str) -> str:
    built = torch.version.cuda or "none"  # type: ignore[attr-defined]
    return (f"model.device: CUDA is not available on this machine (torch {torch.__version__}, "
            f"CUDA build {built}); use 'auto' or 'cpu' (got {setting!r})")


def device_problems(cfg: ModelConfig) -> list[str]:
    """What stops ``model.device`` / ``model.dtype`` on this machine (checked before a run):
    CUDA asked for but not available, a CUDA index past the devices there, float16 on the CPU
    (half-precision matmuls there are unsupported or slow)."""
    setting = cfg.device
    if setting.startswith("cuda"):
        if not torch.cuda.is_available():
            return [_cuda_missing(setting)]
        index = int(setting.split(":", 1)[1]) if ":" in setting else 0
        count = torch.cuda.device_count()
        if index >= count:
            return [f"model.device: no CUDA device {index} on this machine (it has {count}: "
                    f"cuda:0 to cuda:{count - 1}) (got {setting!r})"]
    if cfg.dtype == "float16" and resolve_device(setting).type == "cpu":
        return ["model.dtype: float16 is not supported on the CPU (half-precision matmuls "
                "there are unsupported or slow); use bfloat16 or float32, or run on CUDA "
                "(got 'float16')"]
    return []


def resolve_device(setting: str) -> torch.device:
    """``model.device`` on this machine: ``auto`` is cuda when CUDA is available, else cpu.
    Raises ConfigError for cuda on a machine without CUDA.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(_cuda_missing(setting), [_cuda_missing(setting)])
    return torch.device(setting)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters (the CPU for a model without any)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _to_float32(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
                ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Forward pre-hook of a float32 trainable module under a lower-precision base."""

    def cast(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.is_floating_point() \
                and value.dtype != torch.float32:
            return value.float()
        return value

    return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}


def place_model(cfg: ModelConfig, model: nn.Module) -> nn.Module:
    """``model`` (a peft model: only the adapter and head require grad) with its frozen
    parameters in ``model.dtype`` and its trainable ones in float32, on ``model.device``.
    Idempotent; a float32 model gets no hook."""
    dtype = DTYPES[cfg.dtype]
    if dtype != torch.float32:
        for p in model.parameters():
            if p.is_floating_point():
                p.data = p.data.to(torch.float32 if p.requires_grad else dtype)
        for name, module in model.named_modules():
            own = any(p.requires_grad for p in module.parameters(recurse=False))
            hooked = getattr(module, "_privaudit_float32_input", False)
            if own and "lora_" not in name and not hooked:  # peft casts LoRA inputs itself
                module.register_forward_pre_hook(_to_float32, with_kwargs=True)
                object.__setattr__(module, "_privaudit_float32_input", True)
    return model.to(resolve_device(cfg.device))
