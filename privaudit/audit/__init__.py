"""The composition root: ``config`` (the sections composed, cross-family checks), ``session``
(a run's data, model bundle and encoder), ``stages`` (train, dp_audit, erase, attack, report),
``pipeline`` (:func:`~privaudit.audit.pipeline.run_audit`, the stage list), ``erase_run``,
``flower_export``, ``estimate`` and ``cli``. The public API is :mod:`privaudit` itself."""

__all__: list[str] = []
