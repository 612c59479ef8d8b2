"""SISA's shard recipe under DP (issue 8): the ensemble's accuracy for several recipes,
trained on a finished run's data and model, against the run's federated model.

    .venv/bin/python benchmarks/sisa_dp_recipes.py RUN_DIR [PATCH.json ...]

RUN_DIR is a finished run (e.g. ``privaudit demo --out /tmp/demo``). Each PATCH is a JSON
object merged into the run's config (``{}`` = the run's own recipe), for example
``'{"unlearning": {"sisa": {"slices": 2, "epochs_per_slice": 4}}}'``; without patches, the
recipes of the README's table ("DP in the trainings an erasure adds") are trained. Prints
the ensemble accuracy, the shards' σ and the training time of each. Nothing is written to
RUN_DIR (the shards are trained in memory).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from privaudit.audit.config import config_from_dict
from privaudit.audit.erase_run import open_run_context
from privaudit.core.params import merge_patch
from privaudit.core.rundir import RunDir
from privaudit.core.safe_yaml import load_yaml_file
from privaudit.unlearning import sisa
from privaudit.unlearning.evaluate import utility

README_RECIPES = [
    {"unlearning": {"sisa": {"slices": 2, "epochs_per_slice": 1, "learning_rate": 0.05}}},
    *({"unlearning": {"sisa": {"slices": 2, "epochs_per_slice": 4, "learning_rate": lr}}}
      for lr in (0.02, 0.03)),
    *({"unlearning": {"sisa": {"slices": 1, "epochs_per_slice": 8, "learning_rate": lr}}}
      for lr in (0.05, 0.02, 0.025, 0.03)),
]


def main(run_dir: str, patches: list[dict[str, Any]]) -> None:
    ctx, report = open_run_context(RunDir(Path(run_dir)))
    print(f"federated model: {report.utility.metric} {report.utility.value:.3f}")
    base = load_yaml_file(RunDir(Path(run_dir)).config, what="RUN config.yaml")
    for patch in patches:
        cfg = config_from_dict(merge_patch(base, patch))
        shard_ctx = dataclasses.replace(ctx, recipe=cfg.recipe, ucfg=cfg.unlearning)
        layout = sisa.build_layout(shard_ctx)
        started = time.perf_counter()
        states = [sisa.train_shard(shard_ctx, layout, k, excluded=frozenset()).checkpoints[-1]
                  for k in range(layout.shards)]
        seconds = time.perf_counter() - started
        metric, value = utility(ctx.bundle.model, states, ctx.test, cfg.model.task)
        sigmas = {sisa.shard_noise_multiplier(sisa.shard_recipe(shard_ctx), layout, k)
                  for k in range(layout.shards)}
        shown = ", ".join("none" if s is None else f"{s:.3f}" for s in sorted(
            sigmas, key=lambda s: -1.0 if s is None else s))
        print(f"{json.dumps(patch)}: ensemble {metric} {value:.3f}; shard σ {shown}; "
              f"{seconds:.1f} s", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], [json.loads(p) for p in sys.argv[2:]] or README_RECIPES)
