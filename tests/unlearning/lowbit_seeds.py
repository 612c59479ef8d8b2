"""The low-bit fixture of test_robustness.py on other seeds: does its method pass at fp32 and
fail at int4 on more than the suite's one seed? Not collected by pytest (a measurement, ~50 s
per seed); run from the repository root:

    PYTHONPATH=. .venv/bin/python -m tests.unlearning.lowbit_seeds 3 4 5

Prints, per seed, the fp32 PrivLeak and the paired interval of the AUC difference from the
oracle, each variant's PrivLeak and failed rules, and the flags; then the relearning probe of
the method that keeps everything (the recovery's interval, swap-test p, relearnable).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from privaudit.audit.config import config_from_dict
from privaudit.audit.erase_run import open_run_context
from privaudit.audit.pipeline import run_audit
from privaudit.audit.stages.erase import run_erase
from privaudit.core.progress import PlainReporter
from privaudit.core.rundir import RunDir
from privaudit.reports.schema import UnlearningResult
from privaudit.unlearning.base import UNLEARNERS
from privaudit.unlearning.requests import ErasureRequest
from tests.conftest import TINY, merge
from tests.unlearning.test_robustness import (
    LOWBIT,
    KeepsEverything,
    LowBitUnlearner,
    _best_fit_subjects,
)


def measure(seed: int) -> str:
    quiet = PlainReporter(quiet=True)
    run_dir = Path(tempfile.mkdtemp()) / "run"
    run_audit(config_from_dict(merge(merge(TINY, LOWBIT), {"seed": seed})), run_dir,
              reporter=quiet)
    with UNLEARNERS.scoped():
        UNLEARNERS.register(LowBitUnlearner.name, LowBitUnlearner)
        UNLEARNERS.register(KeepsEverything.name, KeepsEverything)
        ctx, _ = open_run_context(RunDir(run_dir), methods=[])
        request = ErasureRequest.model_validate({"id": "req", "kind": "subject",
                                                 "ids": _best_fit_subjects(ctx, 15)})
        results, _ = run_erase(ctx, [request], [LowBitUnlearner.name, KeepsEverything.name],
                               quiet)
    r = next(x for x in results if x.method == LowBitUnlearner.name)
    f = r.forget
    variants = [f"{v.variant} {v.privleak:+.1f} {v.failed or 'passes'}"
                for v in (r.robustness.probed() if r.robustness else [])]
    return (f"seed {seed}: fp32 PrivLeak {f.privleak:+.1f}, paired Δ AUC "
            f"{f.auc_difference_ci_low:+.3f} to {f.auc_difference_ci_high:+.3f}; "
            f"{'; '.join(variants)}; flags {[v.name for v in r.verification_flags]}\n"
            f"  {_relearning(next(x for x in results if x.method == KeepsEverything.name))}")


def _relearning(r: UnlearningResult) -> str:
    ev = r.relearning
    if ev is None or ev.recovery is None:
        return f"{r.method}: relearning not measured"
    return (f"{r.method}: relearning recovery {ev.recovery:+.3f} "
            f"[{ev.recovery_ci_low:+.3f}, {ev.recovery_ci_high:+.3f}] on {ev.eval_records} "
            f"measured records, p = {ev.recovery_pvalue:.3g}, relearnable {ev.relearnable}")


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["3"]:
        print(measure(int(arg)), flush=True)
