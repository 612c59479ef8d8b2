"""The model: base model and LoRA per family (``config.py``: the ``model`` section)."""

__all__: list[str] = []
