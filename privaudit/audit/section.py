"""The strict pydantic base of every config section.

Unknown keys are errors (``extra="forbid"``) and every float must be finite
(``allow_inf_nan=False``): ``.inf`` or ``.nan`` in a noise multiplier, a clip norm or a
learning rate would otherwise validate and fail later, far from the field (an accountant that
never returns, a DP claim with unbounded sensitivity). A section where infinity means
something declares that field itself and says so in its description.

The families' own sections (``privacy.dp``, ``secure_aggregation``) derive from it too, so
this module imports nothing from privaudit.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigSection(BaseModel):
    """A config section: unknown keys refused, every float finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
