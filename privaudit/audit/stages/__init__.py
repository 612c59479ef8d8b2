"""The run's stages, each handing a typed output to the next: train, dp_audit, references,
erase, attack, report. :func:`privaudit.audit.pipeline.run_audit` runs them in order."""

__all__: list[str] = []
