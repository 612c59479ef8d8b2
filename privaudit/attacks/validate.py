"""Checks of the ``attacks`` section against the rest of the config, before any work starts.

Every finding is collected (STYLE 7) and named by its config path: an unknown attack or
parameter, an attack that needs a signal the task's model does not produce (Min-K% on a
classifier, RMIA's probabilities on a causal LM), reference-based attacks without enough
reference models, canaries on a classifier, and ``references.overrides`` that do not make a
valid config.
"""

from __future__ import annotations

from privaudit.attacks.config import AttacksConfig
from privaudit.attacks.reference_plan import override_problems
from privaudit.attacks.scores import get_attack
from privaudit.core.errors import ConfigError
from privaudit.mechanisms.federated.recipe import TrainingRecipe

__all__ = ["TASK_SIGNALS", "attack_problems"]

#: The per-example signals ``attacks/signals.py`` produces for each task.
TASK_SIGNALS: dict[str, frozenset[str]] = {
    "classification": frozenset({"loss", "phi", "prob_true"}),
    "causal-lm": frozenset(
        {"loss", "phi", "token_logprobs", "token_mu", "token_sigma", "nbytes_text",
         "zlib_len"}
    ),
}


def attack_problems(attacks: AttacksConfig, *, recipe: TrainingRecipe) -> list[str]:
    """Every problem of the ``attacks`` section given what the run trains (its task, and the
    recipe ``references.overrides`` patches)."""
    task = recipe.task
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
    return problems + override_problems(recipe, attacks.references)
