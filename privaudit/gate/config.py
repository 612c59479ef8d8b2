"""The ``gate`` section of the config."""

from __future__ import annotations

from pathlib import Path

from privaudit.core.params import ConfigSection


class GateConfig(ConfigSection):
    """Where the CI policy lives (the gate reads a separate policy file)."""

    policy: Path | None = None
