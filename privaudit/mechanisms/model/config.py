"""The ``model`` section of the config: base model, task, LoRA, the tiny model's shape."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from privaudit.core.params import ConfigSection


class LoraConfig(ConfigSection):
    rank: int = Field(default=8, ge=1)
    alpha: float = Field(default=16.0, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: list[str] | None = Field(
        default=None,
        min_length=1,
        description="modules that get LoRA; default: attention query and value projections",
    )
    top_layers: int | None = Field(
        default=None,
        ge=1,
        description="LoRA on the top k transformer layers only; the frozen layers below are "
        "computed once per record and cached (default: LoRA on every layer)",
    )


class TinyModelConfig(ConfigSection):
    """Architecture of a model built from a config (``base: tiny``): small, for tests."""

    layers: int = Field(default=2, ge=1, le=12)
    hidden: int = Field(default=64, ge=8, le=1024)
    heads: int = Field(default=2, ge=1)
    intermediate: int = Field(default=128, ge=8)

    @model_validator(mode="after")
    def _heads_divide(self) -> TinyModelConfig:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        return self


class PretrainConfig(ConfigSection):
    """Brief pretraining of a tiny causal LM on the public split (cached by config hash)."""

    epochs: int = Field(default=2, ge=0)
    learning_rate: float = Field(default=3e-3, gt=0)


class ModelConfig(ConfigSection):
    task: Literal["classification", "causal-lm"] = "classification"
    base: str = Field(
        default="minilm",
        description="'minilm' (the bundled MiniLM), 'tiny' (built from model.tiny), "
        "or a local Hugging Face model directory",
    )
    tiny: TinyModelConfig = Field(default_factory=TinyModelConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    max_length: int = Field(default=64, ge=8, le=512)
    lora: LoraConfig = Field(default_factory=LoraConfig)
