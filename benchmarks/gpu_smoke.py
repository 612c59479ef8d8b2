"""The demo on a GPU, as it is: a smoke run for a machine with CUDA (issue 22, device and
precision), runnable without editing.

    .venv/bin/python benchmarks/gpu_smoke.py [--out DIR] [--tiny] [--dtype DTYPE]

Loads the ``demo`` preset, sets ``model.device: cuda`` and ``model.dtype: bfloat16`` when CUDA
is available (else says "no CUDA device: running on CPU" and keeps cpu / float32), runs
``run_audit`` into ``--out`` (default: a new temporary directory) and prints one table: the
device, torch and CUDA versions, the device and dtype used, the wall time of every stage
(``report.run.seconds``), peak GPU memory (``torch.cuda.max_memory_allocated``), utility and
the attack AUCs of the federated model. Nothing else changes from the demo except the report
formats (html and md: the PDF needs headless Chromium, which has nothing to do with the GPU).

``--tiny`` swaps the demo's MiniLM and corpus for a 1-layer BERT built from the config
(hidden 32, the test suite's ``tests/conftest.py`` TINY sizes), one round, a smaller corpus
and one erasure method, keeping record-level DP, secure aggregation, references, RMIA and the
DP audit: the whole pipeline in well under a minute on two CPU cores. It is how this script
is checked without a GPU.

Not a test (pytest collects ``test_*.py`` and ``bench_*.py`` only).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from privaudit.audit.cli import load_preset
from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.audit.session import prepare_run_data
from privaudit.core.errors import ConfigError
from privaudit.core.params import merge_patch

#: ``--tiny``: the demo's pipeline on the test suite's tiny sizes (``tests/conftest.py``).
TINY_PATCH: dict[str, Any] = {
    "data": {"synthetic": {"subjects": 90, "min_records": 2, "max_records": 3},
             "test_records": 40, "audit": {"members": 40, "nonmembers": 40}},
    "model": {"base": "tiny", "max_length": 48,
              "tiny": {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64},
              "lora": {"rank": 4, "alpha": 8, "top_layers": 1}},
    "federation": {"clients": 4, "rounds": 1, "local_epochs": 1},
    "privacy": {"dp": {"batch_size": 16}},
    "unlearning": {"methods": ["gradient_ascent"], "verify": {"ulira_references": 0}},
    "attacks": {"dp_audit": {"canaries": 200}, "bootstrap": 50},
}


def _trained_subject(raw: dict[str, Any]) -> str:
    """A data subject the tiny run trains on (the demo's two are not in its smaller corpus)."""
    probe = merge_patch(raw, {"unlearning": {"requests": [], "methods": []}})
    data = prepare_run_data(config_from_dict(probe))
    return min(r.subject_id for records in data.clients.values() for r in records)


def smoke_config(*, tiny: bool, dtype: str | None) -> tuple[AuditConfig, bool]:
    """The demo preset (``--tiny``: shrunk) on CUDA in bfloat16 when there is CUDA, and
    whether there is."""
    raw: dict[str, Any] = load_preset("demo").model_dump(mode="json")
    if tiny:
        raw = merge_patch(raw, TINY_PATCH)
        raw["unlearning"]["requests"][0]["ids"] = [_trained_subject(raw)]
    cuda = torch.cuda.is_available()
    raw["model"]["device"] = "cuda" if cuda else "cpu"
    raw["model"]["dtype"] = dtype or ("bfloat16" if cuda else "float32")
    raw["report"]["formats"] = ["html", "md"]
    return config_from_dict(raw), cuda


def _rows(cfg: AuditConfig, report: Any, cuda: bool, wall: float) -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    rows = [
        ("device", torch.cuda.get_device_name() if cuda else f"cpu ({cpu})"),
        ("torch", torch.__version__),
        ("CUDA (torch build)", str(torch.version.cuda)),  # type: ignore[attr-defined]
        ("model.device / model.dtype", f"{cfg.model.device} / {cfg.model.dtype}"),
        ("model.base", cfg.model.base),
    ]
    rows += [(f"stage {name} (s)", f"{sec:.1f}") for name, sec in report.run.seconds.items()]
    rows.append(("wall time (s)", f"{wall:.1f}"))
    if cuda:
        rows.append(("peak GPU memory (MiB)", f"{torch.cuda.max_memory_allocated() / 2**20:.0f}"))
    rows.append((f"utility ({report.utility.metric})", f"{report.utility.value:.3f}"))
    models = list(dict.fromkeys(a.model for a in report.attacks))
    for a in (a for a in report.attacks if models and a.model == models[0]):
        rows.append((f"{a.attack} AUC ({a.model})", f"{a.auc:.3f}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (new or empty; default: a new temporary one)")
    parser.add_argument("--tiny", action="store_true",
                        help="a tiny model and corpus: the CPU check of this script")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None,
                        help="model.dtype (default: bfloat16 on CUDA, float32 on CPU)")
    args = parser.parse_args(argv)
    cfg, cuda = smoke_config(tiny=args.tiny, dtype=args.dtype)
    if not cuda:
        print("no CUDA device: running on CPU")
    else:
        torch.cuda.reset_peak_memory_stats()
    out = args.out or Path(tempfile.mkdtemp(prefix="privaudit-gpu-smoke-"))
    start = time.perf_counter()
    try:
        outcome = run_audit(cfg, out)
    except ConfigError as exc:
        print("error: " + "\n  ".join(exc.problems))
        return exc.exit_code
    rows = _rows(cfg, outcome.report, cuda, time.perf_counter() - start)
    width = max(len(k) for k, _ in rows)
    print(f"\ngpu smoke: {'tiny' if args.tiny else 'demo'} preset, run directory {out}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
