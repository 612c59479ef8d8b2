"""Inputs, base class and registry of the membership-inference attacks.

Every attack is a pure function of signal arrays (STYLE 3): ``attacks/signals.py`` turns
(model, records) into a :class:`SignalSet` once, and an :class:`Attack` turns an
:class:`AttackInputs` into one score per example. Convention, fixed here and tested in
``tests/attacks``: a higher score means "more likely a member"; members are labelled 1.

The attacks follow Yeom et al. (CSF 2018, LOSS), Carlini et al. (S&P 2022, LiRA),
Zarifzadeh et al. (ICML 2024, RMIA), Shi et al. (ICLR 2024, Min-K%), Zhang et al.
(ICLR 2025, Min-K%++) and Carlini et al. (USENIX Security 2021, zlib and reference-model
calibration); each module cites its own paper.

>>> from privaudit.attacks.scores import AttackInputs, SignalSet, get_attack
>>> sig = SignalSet(loss=np.array([0.1, 2.0]))
>>> get_attack("loss").score(AttackInputs(target=sig)).tolist()
[-0.1, -2.0]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from privaudit.attacks.scores.inputs import AttackInputs, SignalSet
from privaudit.core.errors import ConfigError, DataError, EvidenceIncomplete, InternalError
from privaudit.core.registry import Registry

__all__ = [
    "Attack",
    "AttackInputs",
    "AttackParams",
    "SignalSet",
    "available_attacks",
    "get_attack",
    "missing_inputs",
    "register_attack",
    "required",
]

T = TypeVar("T")


class AttackParams(BaseModel):
    """Base of every attack's parameters: declared with their constraints, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _missing_one(inputs: AttackInputs, req: str) -> str | None:
    where, _, signal = req.partition(".")
    sets: list[SignalSet | None]
    if where == "target":
        sets = [inputs.target]
    elif where == "references":
        if not inputs.references:
            return "references (at least one reference model's signals)"
        sets = list(inputs.references)
    elif where == "keep":
        return None if inputs.keep is not None else "keep (n_refs × N membership mask)"
    elif where == "population":
        if inputs.population_target is None:
            return "population_target (target signals on non-member population points z)"
        sets = [inputs.population_target, *inputs.population_references]
    elif where == "reference_model":
        sets = [inputs.reference_model]
    else:
        raise InternalError(f"unknown requirement {req!r}")
    if not signal:
        return None if all(s is not None for s in sets) else where
    if any(s is None or getattr(s, signal) is None for s in sets):
        return f"{where}.{signal}"
    return None


def missing_inputs(inputs: AttackInputs, requires: Sequence[str]) -> list[str]:
    """Every requirement of ``requires`` that ``inputs`` does not meet (all findings, in order).

    A requirement reads ``"<where>[.<signal>]"``, e.g. ``"target.phi"``,
    ``"references.prob_true"``, ``"keep"``, ``"population.prob_true"``, ``"reference_model.loss"``.

    >>> missing_inputs(AttackInputs(target=SignalSet(loss=np.zeros(2))), ["target.phi", "keep"])
    ['target.phi', 'keep (n_refs × N membership mask)']
    """
    found = (_missing_one(inputs, r) for r in requires)
    return [m for m in found if m is not None]


class Attack(ABC):
    """A membership-inference attack: parameters at construction, scores from arrays.

    Subclasses set ``name``, ``Params`` (an :class:`AttackParams` model) and implement
    :meth:`requirements` and :meth:`compute`. :meth:`score` checks the inputs first and the
    output after: a finite float array of length N, higher = more likely member.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[AttackParams]] = AttackParams
    #: reference models the attack needs when it uses them (2: one complementary pair)
    min_references: ClassVar[int] = 2
    params: AttackParams

    def __init__(self, **params: Any) -> None:
        self.params = _validate_params(self.name, self.Params, params)

    @property
    def requires(self) -> tuple[str, ...]:
        """The inputs this attack needs with its current parameters (see :func:`missing_inputs`)."""
        return self.requirements()

    def requirements(self) -> tuple[str, ...]:
        """Override to declare the inputs needed; default: the target's loss."""
        return ("target.loss",)

    def uses_references(self, reference_model: str) -> bool:
        """Whether it scores with reference models. ``reference_model``: where the
        'reference' attack's model comes from (``auto``, ``base`` or ``references``)."""
        return any(r.startswith(("references", "keep", "population")) for r in self.requires)

    def uses_base_model(self, reference_model: str) -> bool:
        """Whether it scores with the base model's signals (the model before fine-tuning)."""
        return False

    def references_needed(self, reference_model: str) -> int:
        """How many reference models it needs (0 = none)."""
        return self.min_references if self.uses_references(reference_model) else 0

    def tune(self, inputs: AttackInputs) -> Attack:
        """The attack to score with once the inputs are known (default: itself). An attack
        with a parameter fitted on the references (RMIA offline's ``a``) returns a copy
        with it fitted, unless the user set it."""
        return self

    @abstractmethod
    def compute(self, inputs: AttackInputs) -> np.ndarray:
        """The score of every target example; inputs are already checked."""

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """Scores (N,), higher = more likely member. Raises EvidenceIncomplete on missing inputs."""
        missing = missing_inputs(inputs, self.requires)
        if missing:
            raise EvidenceIncomplete(
                f"attack {self.name!r} needs {', '.join(missing)}; not given"
            )
        out = np.asarray(self.compute(inputs), dtype=np.float64)
        if out.shape != (inputs.n,):
            raise DataError(f"attack {self.name!r} returned shape {out.shape}; want ({inputs.n},)")
        if not np.all(np.isfinite(out)):
            bad = int(np.sum(~np.isfinite(out)))
            raise DataError(f"attack {self.name!r} returned {bad} non-finite scores")
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}({args})"


def _validate_params(name: str, model: type[AttackParams], params: dict[str, Any]) -> AttackParams:
    allowed = sorted(model.model_fields)
    try:
        return model(**params)
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(
                    f"attacks.{name} has no parameter {loc!r}; allowed: {', '.join(allowed)}"
                )
            else:
                problems.append(f"attacks.{name}.{loc}: {err['msg']}; got {err.get('input')!r}")
        raise ConfigError("; ".join(problems), problems) from None


def required(value: T | None, what: str) -> T:
    """``value``, or EvidenceIncomplete naming ``what`` when it is None (narrows the type)."""
    if value is None:
        raise EvidenceIncomplete(f"{what} is required but was not given")
    return value


#: The attacks, by name (:class:`~privaudit.core.registry.Registry`).
ATTACKS: Registry[type[Attack]] = Registry(
    "attack", where="attacks", unknown="{where}: unknown attack {name}; available: {names}")


def register_attack(name: str, cls: type[Attack]) -> None:
    """Register ``cls`` under ``name``; a second registration of a name is refused."""
    if not (isinstance(cls, type) and issubclass(cls, Attack)):
        raise ConfigError(f"register_attack({name!r}, ...) needs an Attack subclass; got {cls!r}")
    if cls.name != name:
        raise ConfigError(f"register_attack: name {name!r} differs from {cls.__name__}.name "
                          f"= {cls.name!r}")
    ATTACKS.register(name, cls)


def get_attack(name: str, **params: Any) -> Attack:
    """The registered attack ``name`` built with ``params`` (ConfigError on a bad name/param)."""
    return ATTACKS.get(name)(**params)


def available_attacks() -> list[str]:
    """The registered attack names, sorted."""
    return ATTACKS.names()
