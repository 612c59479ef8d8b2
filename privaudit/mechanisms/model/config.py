"""The ``model`` section of the config: base model, task, LoRA, the tiny model's shape,
where the model runs and the precision of its frozen base."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from privaudit.core.params import ConfigSection

#: ``model.device``: auto, cpu, cuda or cuda:N
DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]+)?)$"
DEVICE_CHOICES = "'auto', 'cpu', 'cuda' or 'cuda:N' (N a CUDA device index)"


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
    device: str = Field(
        default="auto",
        pattern=DEVICE_PATTERN,
        description="where the model runs: 'auto' (cuda when torch.cuda.is_available(), else "
        "cpu), 'cpu', 'cuda' or 'cuda:N'; kept as given here (resolved when the model is "
        "built), and checked against the machine before a run starts",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        default="float32",
        description="precision of the FROZEN base model's weights; the LoRA adapters, the "
        "classification head and DP-SGD stay float32. float16 needs CUDA",
    )

    @field_validator("device", mode="before")
    @classmethod
    def _device_choice(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(DEVICE_PATTERN, value):
            raise ValueError(f"must be {DEVICE_CHOICES}")
        return value
