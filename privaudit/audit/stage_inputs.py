"""Which parts of the config each stage depends on, so that ``--resume`` after a config change
reuses every stage whose own inputs are unchanged and says why it recomputes the others.

A stage's inputs hash covers only its sections (dotted paths into the config): a change to
``attacks.battery`` recomputes the attacks and the report, not the training; a change to
``federation`` recomputes everything after it. The stage manifest keeps one hash per section,
so a recomputed stage can name the sections that changed.

>>> from privaudit.audit.config import config_from_dict
>>> a = config_from_dict({})
>>> b = config_from_dict({"attacks": {"battery": [{"name": "loss"}], "population": 80}})
>>> sections_sha256(a, TRAIN) == sections_sha256(b, TRAIN)
True
>>> changed_sections(section_hashes(a, ERASE), section_hashes(b, ERASE))
[]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from privaudit.audit.config import AuditConfig
from privaudit.core.rundir import RunDir

__all__ = ["DP_AUDIT", "ERASE", "TRAIN", "changed_sections", "recompute_reason",
           "section_hashes", "sections_sha256"]

#: what training depends on: the data and its canaries, the model, the federation's recipe
TRAIN = ("seed", "data", "model", "federation", "privacy", "secure_aggregation",
         "attacks.canaries", "attacks.dp_audit")
#: the DP audit's own training: the same, with its canaries
DP_AUDIT = TRAIN
#: erasure and its evidence: training's, the requests and methods, and the statistics the
#: certificates use (the references U-LiRA reuses, confidence, resamples, FPRs)
ERASE = (*TRAIN, "unlearning", "attacks.references", "attacks.confidence",
         "attacks.bootstrap", "attacks.fprs")


def _at(doc: Any, path: str) -> Any:
    for key in path.split("."):
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def section_hashes(cfg: AuditConfig, sections: Sequence[str]) -> dict[str, str]:
    """sha256 of each section of ``cfg`` (its JSON form)."""
    doc = cfg.model_dump(mode="json", exclude={"budget"})
    return {s: hashlib.sha256(json.dumps(_at(doc, s), sort_keys=True).encode()).hexdigest()
            for s in sections}


def sections_sha256(cfg: AuditConfig, sections: Sequence[str]) -> str:
    """One hash over ``sections`` of ``cfg``."""
    return hashlib.sha256(json.dumps(section_hashes(cfg, sections), sort_keys=True)
                          .encode()).hexdigest()


def changed_sections(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The sections whose hash differs (or that one side lacks)."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def recompute_reason(run: RunDir, stage: str, cfg: AuditConfig, sections: Sequence[str]
                     ) -> str | None:
    """Why a stage that completed before is run again (None: it never completed)."""
    if not run.stage_manifest(stage).is_file():
        return None
    kept = run.stage_sections(stage)
    if kept is None:
        return "its manifest predates per-section inputs"
    changed = changed_sections(kept, section_hashes(cfg, sections))
    if changed:
        return f"the config changed in {', '.join(changed)}"
    return "its other inputs (model files, trained adapter, engine) or an output changed"
