"""Synthetic worlds of signals for the attack tests: no model, exact control of membership.
They are the public conformance kit's worlds (``privaudit.testing.worlds``, whose docstring
describes them): members have higher φ / lower loss."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from privaudit.testing.worlds import World, attack_world
from privaudit.testing.worlds import null_world as make_null_world


@pytest.fixture
def world_factory() -> Callable[..., World]:
    return attack_world


@pytest.fixture(scope="session")
def world() -> World:
    return attack_world()


@pytest.fixture(scope="session")
def null_world() -> World:
    """Members and non-members from the same distribution: the target never saw the data."""
    return make_null_world()
