"""How a model is trained privately, one sub-package per concern (each owns its config
section): ``data``, ``model`` (with ``models``, ``tasks``, ``prefix``, ``pretrain``), ``dp``,
``secagg`` and ``federated``."""

__all__: list[str] = []
