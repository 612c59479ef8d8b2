"""The ``data`` section of the config, and the secret canaries planted in its records
(``attacks.canaries``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from privaudit.core.params import ConfigSection
from privaudit.mechanisms.data.columnar import COLUMN_KEYS, mapping_problems


class SyntheticCorpusConfig(ConfigSection):
    """A seeded Faker corpus of data subjects with personal details (see ``data/corpus.py``)."""

    subjects: int = Field(default=240, ge=10, le=1_000_000, description="number of data subjects")
    min_records: int = Field(default=2, ge=1, le=1000, description="fewest records per subject")
    max_records: int = Field(default=4, ge=1, le=1000, description="most records per subject")
    locale: str = "en_US"
    label_noise: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="fraction of messages routed to the subject's usual department "
        "whatever their topic (only memorisation learns these)",
    )

    @model_validator(mode="after")
    def _records_range(self) -> SyntheticCorpusConfig:
        if self.max_records < self.min_records:
            raise ValueError(
                f"max_records must be >= min_records (= {self.min_records}); "
                f"got {self.max_records}"
            )
        return self


class PartitionConfig(ConfigSection):
    """How training records are spread over the clients."""

    scheme: Literal["iid", "dirichlet", "by_field"] = "iid"
    alpha: float = Field(default=0.5, gt=0, description="Dirichlet concentration over labels")
    field: str | None = Field(default=None, description="record field naming the client")
    keep_subjects_together: bool = Field(
        default=True, description="all records of one subject stay on one client"
    )

    @model_validator(mode="after")
    def _field_needed(self) -> PartitionConfig:
        if self.scheme == "by_field" and not self.field:
            raise ValueError("scheme 'by_field' needs 'field' (the record field naming the client)")
        return self


class AuditSplitConfig(ConfigSection):
    """Members sampled from training records; non-members held out from the same distribution."""

    members: int = Field(default=200, ge=1)
    nonmembers: int = Field(default=200, ge=1)


class DataConfig(ConfigSection):
    source: Literal["synthetic", "file"] = "synthetic"
    synthetic: SyntheticCorpusConfig = Field(default_factory=SyntheticCorpusConfig)
    path: Path | None = Field(
        default=None,
        description="source: file: a .jsonl, .csv or .parquet file, or a directory written by "
        "datasets' save_to_disk (one split)",
    )
    columns: dict[str, str] | None = Field(
        default=None,
        description="privaudit's field -> the file's column, e.g. {text: body, subject_id: "
        f"author}}; keys: {', '.join(COLUMN_KEYS)}; unmapped columns stay record fields",
    )
    test_records: int = Field(default=200, ge=1, description="held-out records for utility")
    public_records: int = Field(
        default=0, ge=0, description="held-out public records (pretraining a causal LM)"
    )
    partition: PartitionConfig = Field(default_factory=PartitionConfig)
    audit: AuditSplitConfig = Field(default_factory=AuditSplitConfig)
    exclude_subjects: list[str] = Field(default_factory=list)
    exclude_records: list[str] = Field(default_factory=list)

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: dict[str, str] | None) -> dict[str, str] | None:
        problems = mapping_problems(columns or {})
        if problems:
            raise ValueError("; ".join(problems))
        return columns

    @model_validator(mode="after")
    def _path_for_file(self) -> DataConfig:
        if self.source == "file" and self.path is None:
            raise ValueError("source 'file' needs 'path' (a .jsonl, .csv or .parquet file, or "
                             "a datasets.save_to_disk directory)")
        return self


class CanaryConfig(ConfigSection):
    """Secret canaries for causal LMs (Carlini et al., "The Secret Sharer", 2019).

    ``count`` secrets of ``digits`` random digits, each written into the text of
    ``insertions[i % len(insertions)]`` training records; exposure ranks each secret among
    ``candidates`` random secrets of the same format.
    """

    count: int = Field(default=0, ge=0, description="secret canaries; 0 = none")
    insertions: list[int] = Field(
        default_factory=lambda: [1, 4, 16],
        min_length=1,
        description="training records that carry each canary, cycled over the canaries",
    )
    template: str = Field(
        default="my account pin is {secret}", description="the canary sentence; has {secret}"
    )
    digits: int = Field(default=6, ge=3, le=12, description="the secret: this many digits")
    candidates: int = Field(
        default=2000, ge=10, description="random secrets sampled to estimate each rank"
    )
    method: Literal["skewnorm", "normal", "empirical"] = Field(
        default="skewnorm", description="rank extrapolation (skewnorm: the paper's)"
    )

    @model_validator(mode="after")
    def _template_and_insertions(self) -> CanaryConfig:
        if self.template.count("{secret}") != 1:
            raise ValueError(f"template must contain '{{secret}}' once; got {self.template!r}")
        if any(i < 1 for i in self.insertions):
            raise ValueError(f"insertions must all be >= 1; got {self.insertions}")
        return self
