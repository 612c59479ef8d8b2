"""``check_attack``: the contract every membership-inference attack keeps.

An attack is a pure function of signal arrays (``privaudit.attacks.scores.base``): it declares
the inputs it needs, and turns :class:`~privaudit.attacks.scores.AttackInputs` into one score
per example, higher = more likely a member. The check runs the attack as the attack stage does
(built from its parameters, :meth:`~privaudit.attacks.scores.Attack.tune`\\ d on the inputs,
then scored) on synthetic worlds (:mod:`privaudit.testing.worlds`), so it needs no model.

>>> from privaudit.attacks.scores import LossAttack
>>> check_attack(LossAttack)  # returns None when every property holds
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from privaudit.attacks.metrics import evaluate_scores
from privaudit.attacks.scores import Attack, AttackInputs, AttackParams, SignalSet, missing_inputs
from privaudit.core.errors import EvidenceIncomplete
from privaudit.testing.findings import Findings
from privaudit.testing.worlds import World, attack_world, null_world, reordered

__all__ = ["check_attack"]


def check_attack(
    attack_cls: type[Attack],
    params: Mapping[str, Any] | None = None,
    *,
    world: World | None = None,
    null: World | None = None,
) -> None:
    """Check that ``attack_cls(**params)`` keeps the attack contract; AssertionError naming the
    attack and every property it fails.

    The properties, each a claim a broken attack would fail:

    1. it is an :class:`Attack` subclass with a ``name`` and an :class:`AttackParams` model,
       and builds from ``params``;
    2. it returns one finite float64 score per example;
    3. members score higher on a memorising ``world`` (default :func:`attack_world`): the
       95% bootstrap interval of the AUC lies above 0.5;
    4. on a ``null`` world whose target never saw the data (default :func:`null_world`), the
       99% interval of the AUC contains 0.5 (one fixed draw: an attack right at chance fails
       this with a probability near 1%, the same draw every run);
    5. scores follow their examples when the examples are reordered;
    6. given only the target's loss, an attack needing more raises
       :class:`~privaudit.core.errors.EvidenceIncomplete` naming the attack and every missing
       input, before any work (``compute`` is never called); one needing only the loss scores.
    """
    found = Findings(_describe(attack_cls, params))
    attack = _build(attack_cls, dict(params or {}), found)
    if attack is None:
        found.done()
        return
    world = world if world is not None else attack_world()
    null = null if null is not None else null_world()
    scores = _scores(attack, world, "the memorising world", found)
    if scores is not None:
        _check_members_score_higher(scores, world, found)
        _check_scores_follow_examples(attack, world, scores, found)
    null_scores = _scores(attack, null, "the null world", found)
    if null_scores is not None:
        _check_chance_on_null_world(null_scores, null, found)
    _check_missing_inputs_named_first(attack, found)
    found.done()


def _describe(attack_cls: type[Attack], params: Mapping[str, Any] | None) -> str:
    name = getattr(attack_cls, "name", "")
    qual = getattr(attack_cls, "__qualname__", repr(attack_cls))
    given = f", params {dict(params)}" if params else ""
    return f"attack {name!r} ({qual}{given})"


def _build(attack_cls: type[Attack], params: dict[str, Any], found: Findings) -> Attack | None:
    if not found.check(isinstance(attack_cls, type) and issubclass(attack_cls, Attack),
                       "is a subclass of privaudit.attacks.scores.Attack",
                       f"got {attack_cls!r}"):
        return None
    found.check(isinstance(attack_cls.name, str) and bool(attack_cls.name),
                "has a non-empty class attribute `name` (its registry name)",
                f"got {attack_cls.name!r}")
    params_cls = attack_cls.Params
    found.check(isinstance(params_cls, type) and issubclass(params_cls, AttackParams),
                "declares its parameters as `Params`, a subclass of AttackParams",
                f"got {params_cls!r}")
    with found.step(f"builds from its parameters {params}"):
        return attack_cls(**params)
    return None


def _scores(attack: Attack, world: World, which: str, found: Findings) -> np.ndarray | None:
    """The attack's scores on ``world``, tuned first as the attack stage does; None (and a
    finding) when it cannot score it."""
    lacking = missing_inputs(world.inputs, attack.requires)
    if not found.check(not lacking, f"can be scored on {which}",
                       f"the world lacks {', '.join(lacking)} (give one with these signals)"):
        return None
    out: np.ndarray | None = None
    with found.step(f"scores {which} (tune, then score)"):
        out = np.asarray(attack.tune(world.inputs).score(world.inputs))
    if out is None:
        return None
    ok = (out.shape == (world.inputs.n,) and out.dtype == np.float64
          and bool(np.all(np.isfinite(out))))
    found.check(ok, "returns one finite float64 score per example",
                f"on {which} got shape {out.shape}, dtype {out.dtype}, "
                f"{int(np.sum(~np.isfinite(out))) if out.dtype.kind == 'f' else '?'} non-finite"
                f" (want shape ({world.inputs.n},))")
    return out if ok else None


def _check_members_score_higher(scores: np.ndarray, world: World, found: Findings) -> None:
    m = evaluate_scores(scores, world.is_member, fprs=(0.01,), n_bootstrap=50)
    found.check(m.auc_ci_low > 0.5,
                "members score higher than non-members on a memorising world (95% AUC "
                "interval above 0.5; convention: higher score = more likely member)",
                f"AUC {m.auc:.3f} [{m.auc_ci_low:.3f}, {m.auc_ci_high:.3f}]")


def _check_chance_on_null_world(scores: np.ndarray, null: World, found: Findings) -> None:
    m = evaluate_scores(scores, null.is_member, fprs=(0.01,), confidence=0.99, n_bootstrap=100)
    found.check(m.auc_ci_low <= 0.5 <= m.auc_ci_high,
                "is at chance on a world whose target never saw the data (99% AUC interval "
                "contains 0.5)",
                f"AUC {m.auc:.3f} [{m.auc_ci_low:.3f}, {m.auc_ci_high:.3f}]")


def _check_scores_follow_examples(
    attack: Attack, world: World, scores: np.ndarray, found: Findings
) -> None:
    perm = np.random.default_rng(3).permutation(world.inputs.n)
    with found.step("scores follow their examples when the examples are reordered"):
        shuffled = attack.tune(world.inputs).score(reordered(world.inputs, perm))
        worst = float(np.max(np.abs(np.asarray(shuffled) - scores[perm])))
        found.check(bool(np.allclose(shuffled, scores[perm])),
                    "scores follow their examples when the examples are reordered",
                    f"the score of an example changed by up to {worst:.3g} when only the "
                    "order of the examples changed")


def _check_missing_inputs_named_first(attack: Attack, found: Findings) -> None:
    bare = AttackInputs(target=SignalSet(loss=[0.1, 0.2]))
    lacking = missing_inputs(bare, attack.requires)
    if not lacking:
        with found.step("scores inputs holding only the target's loss (all it requires)"):
            out = np.asarray(attack.score(bare))
            found.check(out.shape == (2,), "returns one score per example",
                        f"got shape {out.shape} for 2 examples")
        return
    calls: list[int] = []
    compute = attack.compute

    def spy(inputs: AttackInputs) -> np.ndarray:
        calls.append(1)
        return compute(inputs)

    setattr(attack, "compute", spy)  # noqa: B010  (an instance attribute shadows the method)
    claim = ("reports missing inputs by name before any work (EvidenceIncomplete naming the "
             "attack and each missing input; compute never called)")
    try:
        attack.score(bare)
    except EvidenceIncomplete as exc:
        message = str(exc)
        unnamed = [m for m in lacking if m.split(" ")[0] not in message]
        problems = [f"it does not name {', '.join(unnamed)}"] if unnamed else []
        problems += [] if repr(attack.name) in message else [f"it does not name {attack.name!r}"]
        problems += ["compute was called first"] if calls else []
        found.check(not problems, claim, f"got {message!r}: {'; '.join(problems)}")
    except Exception as exc:
        found.check(False, claim, f"raised {type(exc).__name__}: {exc}")
    else:
        found.check(False, claim, f"scored inputs lacking {', '.join(lacking)} without error")
    finally:
        delattr(attack, "compute")
