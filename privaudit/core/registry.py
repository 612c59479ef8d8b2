"""One registry for every family of pluggable members: engines, attacks, unlearners, gate
metrics, report sections and verdict controls.

A :class:`Registry` maps a name to a member. Registering a name twice is an error naming both
places (unless it is the same definition imported again under a second module name, as test
runners do); an unknown name is a :class:`~privaudit.core.errors.ConfigError` that names the
caller's field (``where``: a config path or a CLI option), lists what is available and quotes
what was given.

>>> shapes = Registry[str]("shape", where="shapes")
>>> _ = shapes.register("circle", "round")
>>> @shapes.register("square")
... def _square() -> str:
...     return "four corners"
>>> shapes.names(), shapes.get("circle")
(['circle', 'square'], 'round')
>>> shapes.get("hexagon", where="model.shape")
Traceback (most recent call last):
...
privaudit.core.errors.ConfigError: model.shape: must be one of circle, square (got 'hexagon')
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar, overload

from privaudit.core.errors import ConfigError

T = TypeVar("T")

#: The default message for an unknown name; ``{where}``, ``{name}`` (repr'd) and ``{names}``
#: (comma-separated, sorted) are filled in.
UNKNOWN = "{where}: must be one of {names} (got {name})"


def origin(member: Any) -> str:
    """Where ``member`` is defined: ``module.QualName`` for a class or function, else the
    module and type of the instance."""
    module = getattr(member, "__module__", None) or type(member).__module__
    qualname = getattr(member, "__qualname__", None) or type(member).__qualname__
    return f"{module}.{qualname}"


def _source_file(member: Any) -> str | None:
    module = getattr(member, "__module__", None) or type(member).__module__
    return getattr(sys.modules.get(module), "__file__", None)


def same_definition(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are the same definition: one object, or the same qualified
    name in the same source file (a module imported twice under two names)."""
    if a is b:
        return True
    qual_a = getattr(a, "__qualname__", None)
    file_a = _source_file(a)
    return (qual_a is not None and qual_a == getattr(b, "__qualname__", None)
            and file_a is not None and file_a == _source_file(b))


class Registry(Generic[T]):
    """Names to members of one family, in registration order.

    ``kind`` names the family in messages; ``where`` is the default field an unknown name is
    reported against; ``unknown`` is the message template for an unknown name (see
    :data:`UNKNOWN`); ``load`` is called before every lookup (to import built-in members
    lazily).
    """

    def __init__(self, kind: str, *, where: str, unknown: str = UNKNOWN,
                 load: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self.where = where
        self._unknown = unknown
        self._load = load
        self._members: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, member: T) -> T: ...

    def register(self, name: str, member: Any = None) -> Any:
        """Register ``member`` as ``name`` (or, without ``member``, a decorator that does)."""
        if member is None:
            return lambda m: self.register(name, m)
        if name in self._members:
            if same_definition(self._members[name], member):
                return member
            raise ConfigError(
                f"{self.kind} {name!r} is already registered (by {self._origins[name]}); "
                f"registered again by {origin(member)}")
        self._members[name] = member
        self._origins[name] = origin(member)
        return member

    def _loaded(self) -> dict[str, T]:
        if self._load is not None:
            self._load()
        return self._members

    def get(self, name: str, *, where: str | None = None) -> T:
        """The member registered as ``name``; ConfigError naming ``where`` when none is."""
        members = self._loaded()
        if name not in members:
            raise ConfigError(self._unknown.format(
                where=where or self.where, name=repr(name), names=", ".join(sorted(members))))
        return members[name]

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._loaded())

    def values(self) -> list[T]:
        """The members, in registration order."""
        return list(self._loaded().values())

    def origin_of(self, name: str) -> str:
        """Where the member registered as ``name`` is defined."""
        self.get(name)
        return self._origins[name]

    @contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """Registrations made inside the block are undone when it ends (a test's own
        members, a plugin tried out)."""
        members, origins = dict(self._members), dict(self._origins)
        try:
            yield self
        finally:
            self._members, self._origins = members, origins

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._loaded()))

    def __len__(self) -> int:
        return len(self._loaded())
