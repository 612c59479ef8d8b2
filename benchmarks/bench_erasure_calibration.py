"""How often the erasure certificate flags retraining itself, and how often it catches a model
that still remembers (issue #25), over many seeds of a tiny memorising run.

    .venv/bin/python -m pytest benchmarks/bench_erasure_calibration.py -q -s \\
        --benchmark-only -p no:cacheprovider

Per seed: a tiny federation that memorises (label noise 0.5) is trained, one subject request
(the best-fit third of the data subjects) is served by the oracle, and two models are judged
against that oracle exactly as an unlearning method is (``Verifier.verify``):

- an **exact retrain with another seed** (``retrain_replicates``): any flag is a false flag;
- the **untouched trained model** (a no-op unlearning): a flag is a detection.

Each is judged with the oracle's variability not estimated (``oracle_replicates: 0``) and
estimated from 2 extra retrainings (``oracle_replicates: 2``). ``PRIVAUDIT_CALIBRATION_SEEDS``
sets the number of seeds (default 20).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from privaudit.audit.config import config_from_dict
from privaudit.audit.erase_run import open_run_context
from privaudit.audit.pipeline import run_audit
from privaudit.core.progress import PlainReporter
from privaudit.core.rundir import RunDir
from privaudit.unlearning.base import UnlearnedModel, UnlearningContext
from privaudit.unlearning.oracle import retrain_replicates
from privaudit.unlearning.verify import Verifier
from tests.conftest import OVERFIT_PATCH, TINY, merge
from tests.unlearning.conftest import best_fit_subjects

REPLICATES = 2


@dataclass
class Outcome:
    """One seed: (flagged?) for the exact retrain and the no-op, without and with the
    oracle's variability estimated."""

    retrain: tuple[bool, bool]
    noop: tuple[bool, bool]


def _judge(ctx: UnlearningContext, model: UnlearnedModel, oracle: UnlearnedModel,
           forget: frozenset[str], spare: list[UnlearnedModel], replicates: int) -> bool:
    """Whether ``model`` is flagged under_ or over_unlearned against ``oracle``."""
    from privaudit.reports.schema import ForgetEvidence, RetainEvidence, UnlearningResult

    verify = ctx.ucfg.verify.model_copy(update={"oracle_replicates": replicates})
    judged = replace(ctx, ucfg=ctx.ucfg.model_copy(update={"verify": verify}))
    verifier = Verifier(judged)
    verifier._replicates[forget] = spare[:replicates]
    blank = UnlearningResult(
        request_id="calibration", kind="record", method="judged", exactness="approximate",
        seconds=0.0, examples_processed=0, executed_at="-", request_ids_sha256="-",
        model_sha256_before="-", model_sha256_after=model.sha256, model_path="-",
        forget=ForgetEvidence(n_records=len(forget), mean_loss_before=0.0, mean_loss_after=0.0),
        retain=RetainEvidence(utility_metric="accuracy", utility=0.0))
    result = verifier.verify(blank, model=model, oracle=oracle, forget=ctx.records(forget),
                             erased=forget)
    return any(v.name != "utility_collapse" for v in result.verification_flags)


def calibrate_seed(seed: int, root: Path) -> Outcome:
    cfg = merge(TINY, merge(OVERFIT_PATCH, {"seed": seed, "attacks": {"bootstrap": 300}}))
    run_audit(config_from_dict(cfg), root, reporter=PlainReporter(quiet=True))
    ctx, _ = open_run_context(RunDir(root))
    forget = frozenset(best_fit_subjects(ctx))
    (oracle,) = retrain_replicates(ctx, forget, 1, first=0)  # the run's own seed
    retrain, *spare = retrain_replicates(ctx, forget, 1 + REPLICATES)
    trained = UnlearnedModel(states=[ctx.trained_state])
    return Outcome(
        retrain=(_judge(ctx, retrain, oracle, forget, spare, 0),
                 _judge(ctx, retrain, oracle, forget, spare, REPLICATES)),
        noop=(_judge(ctx, trained, oracle, forget, spare, 0),
              _judge(ctx, trained, oracle, forget, spare, REPLICATES)))


def test_bench_erasure_calibration_over_seeds(benchmark: Any, tmp_path: Path) -> None:
    seeds = int(os.environ.get("PRIVAUDIT_CALIBRATION_SEEDS", "20"))
    started = time.perf_counter()
    outcomes = benchmark.pedantic(
        lambda: [calibrate_seed(s, tmp_path / f"seed-{s}") for s in range(seeds)],
        rounds=1, iterations=1)
    n = len(outcomes)
    print(f"\nerasure calibration over {n} seeds ({time.perf_counter() - started:.0f} s; tiny "
          "memorising run, best-fit third of the subjects erased)")
    for i, label in enumerate(("oracle variability not estimated",
                               f"estimated from {REPLICATES} extra retrainings")):
        false = sum(o.retrain[i] for o in outcomes)
        found = sum(o.noop[i] for o in outcomes)
        print(f"  {label:<44}: exact retrain flagged {false}/{n} ({false / n:.0%}), "
              f"memorised no-op flagged {found}/{n} ({found / n:.0%})")
