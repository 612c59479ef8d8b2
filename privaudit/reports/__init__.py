"""The report: ``schema`` (the versioned model composing the families' result types),
``verdict``, ``crosswalk``, ``sections``, ``render`` (JSON, HTML, PDF, Markdown, manifest and
signature) and ``figures``."""

__all__: list[str] = []
