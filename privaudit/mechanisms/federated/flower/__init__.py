"""Run federations on Flower: privaudit's client update and strategy as a Flower app.

Flower only moves values; every privacy mechanism is privaudit's own (DESIGN.md):

- :mod:`.engine` — :class:`FlowerEngine` (``--engine flower``): Flower's simulation runtime
  on Ray, on this machine or a Ray cluster;
- :mod:`.client_app` / :mod:`.server_app` — the ClientApp and the ServerApp loop, the same in
  both runtimes;
- :mod:`.secure` — secure aggregation split across the parties (the server holds the public
  CKKS context only);
- :mod:`.codec` — privaudit values as Flower records;
- :mod:`.workload` — what each side holds;
- :mod:`.deploy` — the deployment runtime: one SuperLink, one SuperNode per silo, TLS;
  :mod:`.local` runs it on 127.0.0.1 (smoke test, first try);
- :mod:`.runinfo` — the Flower version and nodes, for the report.

Importing this package does not import Flower (the ``flower`` extra is optional).
"""

from privaudit.mechanisms.federated.flower.engine import FlowerEngine, FlowerOptions
from privaudit.mechanisms.federated.flower.runinfo import FlowerNode, FlowerRun, run_for

__all__ = ["FlowerEngine", "FlowerNode", "FlowerOptions", "FlowerRun", "run_for"]
