"""Every family's registry is one ``core.registry.Registry`` with one contract: a duplicate
name is refused naming both definitions, an unknown name is refused naming the caller's field,
what is available and what was given."""

from __future__ import annotations

import pytest

from privaudit.attacks.scores.base import ATTACKS
from privaudit.core.errors import ConfigError
from privaudit.core.registry import Registry
from privaudit.gate.metrics import METRICS
from privaudit.mechanisms.federated.engine import ENGINES
from privaudit.reports.sections import SECTIONS
from privaudit.reports.verdict import CONTROLS
from privaudit.unlearning.base import UNLEARNERS

REGISTRIES = {"attacks": ATTACKS, "engines": ENGINES, "unlearners": UNLEARNERS,
              "gate metrics": METRICS, "report sections": SECTIONS, "verdict controls": CONTROLS}


class _Impostor:
    """A member defined somewhere else than the registered one."""


@pytest.mark.parametrize("registry", REGISTRIES.values(), ids=REGISTRIES.keys())
def test_every_family_registry_is_the_one_core_registry_with_members(
        registry: Registry[object]) -> None:
    assert isinstance(registry, Registry)
    assert len(registry) > 0 and registry.names() == sorted(registry.names())


@pytest.mark.parametrize("registry", REGISTRIES.values(), ids=REGISTRIES.keys())
def test_a_second_member_under_a_taken_name_is_refused_naming_both_definitions(
        registry: Registry[object]) -> None:
    name = registry.names()[0]
    with registry.scoped(), pytest.raises(ConfigError, match="already registered") as err:
        registry.register(name, _Impostor)
    message = str(err.value)
    assert registry.origin_of(name) in message and "_Impostor" in message
    assert registry.get(name) is not _Impostor


@pytest.mark.parametrize("registry", REGISTRIES.values(), ids=REGISTRIES.keys())
def test_an_unknown_name_names_the_callers_field_the_available_names_and_the_given_one(
        registry: Registry[object]) -> None:
    with pytest.raises(ConfigError) as err:
        registry.get("no-such-member", where="some.field")
    message = str(err.value)
    assert message.startswith("some.field: ") and "'no-such-member'" in message
    assert all(name in message for name in registry.names())


def test_registrations_inside_scoped_are_undone_after_it() -> None:
    with ATTACKS.scoped():
        ATTACKS.register("test_scoped_member", _Impostor)  # type: ignore[arg-type]
        assert "test_scoped_member" in ATTACKS
    assert "test_scoped_member" not in ATTACKS
