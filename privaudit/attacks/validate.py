"""Checks of the ``attacks`` section against the rest of the config, before any work starts.

Every finding is collected (STYLE 7) and named by its config path: an unknown attack or
parameter, an attack that needs a signal the task's model does not produce (Min-K% on a
classifier, LiRA's φ on a causal LM), reference-based attacks without enough reference models,
canaries on a classifier, and ``references.overrides`` that do not make a valid config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from privaudit.attacks.scores import get_attack
from privaudit.core.errors import ConfigError
from privaudit.core.params import merge_patch

if TYPE_CHECKING:
    from privaudit.audit.config import AuditConfig

__all__ = ["TASK_SIGNALS", "attack_problems", "reference_recipe_dict"]

#: The per-example signals ``attacks/signals.py`` produces for each task.
TASK_SIGNALS: dict[str, frozenset[str]] = {
    "classification": frozenset({"loss", "phi", "prob_true"}),
    "causal-lm": frozenset(
        {"loss", "token_logprobs", "token_mu", "token_sigma", "nbytes_text", "zlib_len"}
    ),
}


def reference_recipe_dict(
    cfg: AuditConfig, *, noise_multiplier: float | None = None
) -> dict[str, Any]:
    """The run's config with ``attacks.references.overrides`` merged in and secure
    aggregation off unless ``references.secure_aggregation`` (a plain dict, not validated).

    ``noise_multiplier``: the target's calibrated DP noise. When the run calibrates its noise
    to ``privacy.dp.target_epsilon`` and the overrides leave ``privacy.dp`` alone, the
    references train with this σ instead: the same noise and clipping as the target (a client
    of a reference holds fewer records, so recalibrating to ε would give it another σ — and
    cost one accountant search per reference).
    """
    refs = cfg.attacks.references
    raw = merge_patch(cfg.model_dump(mode="json"), refs.overrides)
    if not refs.secure_aggregation:
        raw["secure_aggregation"]["enabled"] = False
    dp = raw["privacy"]["dp"]
    overridden = "dp" in refs.overrides.get("privacy", {})
    if (noise_multiplier is not None and dp["mode"] != "none"
            and dp.get("target_epsilon") is not None and not overridden):
        dp["noise_multiplier"], dp["target_epsilon"] = float(noise_multiplier), None
    return raw


def _override_problems(cfg: AuditConfig) -> list[str]:
    from privaudit.audit.config import AuditConfig
    from privaudit.core.params import format_validation_error

    if not cfg.attacks.references.overrides:
        return []
    try:
        AuditConfig.model_validate(reference_recipe_dict(cfg))
    except ValidationError as exc:
        return [f"attacks.references.overrides: {p}" for p in format_validation_error(exc)]
    return []


def attack_problems(cfg: AuditConfig) -> list[str]:
    """Every problem of ``cfg.attacks`` given the task and the other sections."""
    attacks, task = cfg.attacks, cfg.model.task
    have = TASK_SIGNALS[task]
    count = attacks.references.count
    problems: list[str] = []
    for i, spec in enumerate(attacks.battery):
        where = f"attacks.battery[{i}] ({spec.key})"
        try:
            attack = get_attack(spec.name, **spec.params)
        except ConfigError as exc:
            problems += [f"{where}: {p}" for p in exc.problems]
            continue
        needs = attack.requires
        lacking = sorted({r.split(".", 1)[1] for r in needs if "." in r} - have)
        if lacking:
            problems.append(
                f"{where}: needs {', '.join(lacking)}, which a {task} model does not produce"
            )
        need_refs = attack.references_needed(attacks.reference_model)
        if need_refs > count:
            problems.append(
                f"attacks.references.count: attack {spec.key!r} needs at least {need_refs} "
                f"reference models; got {count}"
            )
    if attacks.canaries.count and task != "causal-lm":
        problems.append(
            "attacks.canaries.count: secret canaries measure a causal LM's exposure; the task is "
            f"{task} (got {attacks.canaries.count})"
        )
    return problems + _override_problems(cfg)
