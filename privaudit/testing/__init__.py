"""The public conformance kit: run it against your own attack, unlearner or engine.

Each check exercises a member the way the pipeline does and raises one ``AssertionError``
naming the member and every contract property it fails (plain ``raise``: it works outside
pytest and under ``python -O``). A member registered in privaudit's registries is checked by
``tests/test_common.py``; a plugin author calls the same functions::

    from privaudit.testing import check_attack, check_engine, check_unlearner

    check_attack(MyAttack, {"threshold": 0.5})       # synthetic worlds, numpy only
    check_engine(MyEngine, name="my-engine")          # a toy job vs the in-process engine
    check_unlearner(MyMethod, ctx)                    # ctx: open_run_context(RunDir(run))[0]

- :func:`check_attack` — one finite score per example, members above chance on a memorising
  world, chance on a null world, scores follow their examples, missing inputs named first.
- :func:`check_unlearner` — never trains on erased records, a model of the trained adapter's
  shape that changed, complete lineage, examples processed and a stopping reason.
- :func:`check_engine` — returns what the in-process engine returns for the same job, from
  the start and resumed.

:func:`attack_world` / :func:`null_world` build the synthetic worlds (:class:`World`);
:func:`toy_job` the toy training job.
"""

from privaudit.testing.attacks import check_attack
from privaudit.testing.engines import check_engine
from privaudit.testing.toyjob import toy_job
from privaudit.testing.unlearners import check_unlearner
from privaudit.testing.worlds import World, attack_world, null_world

__all__ = [
    "World",
    "attack_world",
    "check_attack",
    "check_engine",
    "check_unlearner",
    "null_world",
    "toy_job",
]
