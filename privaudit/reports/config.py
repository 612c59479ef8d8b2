"""The ``report`` section of the config."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from privaudit.core.params import ConfigSection


class ReportConfig(ConfigSection):
    title: str = "Privacy audit of federated fine-tuning"
    formats: list[Literal["html", "pdf", "md"]] = Field(
        default_factory=lambda: ["html", "pdf", "md"],  # type: ignore[arg-type]
        description="renderings of report.json; pdf needs headless Chromium (without it the "
        "run still succeeds and the report says the PDF was not rendered)",
    )
    sign_key: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs manifest.json into manifest.sig "
        "(privaudit keygen); the CLI's --sign overrides it",
    )
