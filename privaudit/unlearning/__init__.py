"""Machine unlearning: erasure requests, the methods that serve them, and their oracle.

- :mod:`~privaudit.unlearning.requests` — :class:`ErasureRequest` (record | subject | client)
  and its validation against the run's data;
- :mod:`~privaudit.unlearning.base` — the :class:`Unlearner` base and its registry;
- one module per family: :mod:`ascent` (gradient ascent, GradDiff, NPO), :mod:`sisa`
  (sharded, exact), :mod:`incremental` (fine-tune on retained data, FedEraser) and
  :mod:`oracle` (retrain from scratch without the erased data);
- :mod:`evaluate` — loss and utility of one adapter or of SISA's averaged shards;
- :mod:`ledger` — what the run directory remembers (served requests, lineage, the DP bound).

The pipeline's erase stage is :mod:`privaudit.audit.stages.erase`, and ``privaudit erase`` on a
finished run is :mod:`privaudit.audit.erase_run`.

This package's ``__init__`` imports nothing: the config imports
:class:`~privaudit.unlearning.requests.ErasureRequest`, and the methods import the config.
"""

__all__: list[str] = []
