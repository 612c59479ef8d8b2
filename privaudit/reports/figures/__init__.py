"""The report's figures (matplotlib, embedded as data URIs): attacks, unlearning, training."""

__all__: list[str] = []
