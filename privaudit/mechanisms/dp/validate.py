"""Checks run before any training: they collect every problem and return them as a list.

Each problem reads ``privacy.dp.<field>: reason (got VALUE)``; the caller raises one
:class:`~privaudit.core.errors.PrivacyBudgetError` with all of them (exit 2). Whether a
``target_epsilon`` is reachable is checked by calibration
(:func:`~privaudit.mechanisms.dp.calibration.record_noise_multipliers`), which raises.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn
from opacus.utils.module_utils import trainable_modules
from opacus.validators import ModuleValidator

from privaudit.mechanisms.dp.config import DPConfig
from privaudit.mechanisms.model.lora_backend import BaseTunerLayer, ModulesToSaveWrapper


def _noise_problems(cfg: DPConfig) -> list[str]:
    sigma, target = cfg.noise_multiplier, cfg.target_epsilon
    if sigma is None and target is None:
        return [
            f"privacy.dp.noise_multiplier: give noise_multiplier or target_epsilon with "
            f"mode={cfg.mode} (got neither)"
        ]
    if sigma is not None and target is not None:
        return [
            "privacy.dp.target_epsilon: give noise_multiplier or target_epsilon, not both "
            f"(got noise_multiplier={sigma}, target_epsilon={target})"
        ]
    if sigma is not None and not sigma > 0:
        return [f"privacy.dp.noise_multiplier: must be > 0 with DP on (got {sigma})"]
    return []


def _delta_problems(cfg: DPConfig, n: int, unit: str) -> list[str]:
    if cfg.delta is None:
        return [f"privacy.dp.delta: required with mode={cfg.mode} (got None)"]
    if n >= 1 and cfg.delta >= 1 / n:
        return [f"privacy.dp.delta: must be < 1/({unit}) = 1/{n} = {1 / n:.3g} (got {cfg.delta})"]
    return []


def check_dp_config(
    cfg: DPConfig,
    *,
    client_sizes: Sequence[int],
    rounds: int,
    local_epochs: int,
    batch_size: int,
) -> list[str]:
    """Every problem of ``cfg`` for this federation (empty when DP is off or all is well)."""
    if cfg.mode == "none":
        return []
    problems = _noise_problems(cfg)
    sizes = list(client_sizes)
    if not sizes:
        problems.append("privacy.dp: needs at least one client (got no clients)")
    if rounds < 1:
        problems.append(f"privacy.dp: rounds must be >= 1 (got {rounds})")
    if cfg.mode == "record":
        if local_epochs < 1:
            problems.append(f"privacy.dp: local_epochs must be >= 1 (got {local_epochs})")
        smallest = min(sizes, default=0)
        problems += _delta_problems(cfg, smallest, "smallest client size")
        if not cfg.max_grad_norm > 0:
            problems.append(f"privacy.dp.max_grad_norm: must be > 0 (got {cfg.max_grad_norm})")
        bad = [
            f"client {i}: {batch_size}/{n}"
            for i, n in enumerate(sizes)
            if n < 1 or not 0 < batch_size / n <= 1
        ]
        if bad:
            problems.append(
                "privacy.dp.sample_rate: batch_size / client size must be in (0, 1] "
                f"(got {', '.join(bad)})"
            )
    else:
        problems += _delta_problems(cfg, len(sizes), "number of clients")
        if not cfg.clip_norm > 0:
            problems.append(f"privacy.dp.clip_norm: must be > 0 (got {cfg.clip_norm})")
        q = cfg.client_sample_rate
        if not 0 < q <= 1:
            problems.append(f"privacy.dp.client_sample_rate: must be in (0, 1] (got {q})")
        elif sizes and q * len(sizes) < 1:
            problems.append(
                "privacy.dp.client_sample_rate: expected clients per round q·n must be >= 1 "
                f"(got {q}·{len(sizes)} = {q * len(sizes):.3g})"
            )
    return problems


def _adapter_parameters(model: nn.Module) -> set[int]:
    """ids of the parameters peft adds (adapters, modules_to_save copies)."""
    ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, ModulesToSaveWrapper):
            ids |= {id(p) for p in module.modules_to_save.parameters()}
        elif isinstance(module, BaseTunerLayer):
            base = {id(p) for p in module.get_base_layer().parameters()}
            ids |= {id(p) for p in module.parameters() if id(p) not in base}
    return ids


def check_model_for_opacus(model: nn.Module, *, grad_sample_mode: str = "hooks") -> list[str]:
    """Every trainable layer Opacus cannot compute per-example gradients for, by name.

    Runs Opacus' module validators (``ModuleValidator.VALIDATORS``, what
    ``ModuleValidator.validate`` applies) on trainable layers only, so a frozen base with
    BatchNorm or LSTM passes; adds the per-sample-gradient checks (buffers in a trainable
    layer, EmbeddingBag under functorch) and, for a peft model, any trainable base parameter.
    The training-mode check is left out: :func:`make_private` puts the model in train mode.
    """
    problems = []
    layers = list(trainable_modules(model))
    if not layers:
        problems.append("privacy.dp.model: no trainable parameters (got a fully frozen model)")
    for name, layer in layers:
        kind = type(layer).__name__
        validator = ModuleValidator.VALIDATORS.get(type(layer))
        reasons = [str(e).split(". ")[0] for e in validator(layer)] if validator else []
        if any(True for _ in layer.buffers(recurse=False)):
            reasons.append("a trainable layer with buffers (its statistics are not private)")
        if grad_sample_mode == "functorch" and isinstance(layer, nn.EmbeddingBag):
            reasons.append("functorch has no per-sample gradient for EmbeddingBag")
        problems += [
            f"privacy.dp.model: layer '{name}' cannot be trained with Opacus: {r} (got {kind})"
            for r in reasons
        ]
    if any(isinstance(m, BaseTunerLayer) for m in model.modules()):
        adapter = _adapter_parameters(model)
        base = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in adapter]
        if base:
            problems.append(
                "privacy.dp.model: the base model must be frozen, only the adapter (and a "
                f"modules_to_save head) may train (got trainable {', '.join(base[:5])}"
                f"{' …' if len(base) > 5 else ''})"
            )
    return problems
