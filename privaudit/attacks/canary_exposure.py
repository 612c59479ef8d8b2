"""Exposure of the secret canaries under one causal LM (Carlini et al., "The Secret Sharer",
USENIX Security 2019, §4).

Each canary's log-perplexity −log Pr(canary sentence) is ranked among the sampled candidate
sentences (same template, other random secrets) and extrapolated to the whole secret space
by :func:`privaudit.attacks.exposure.estimate_exposure`. A model that never saw the canaries
ranks them like any other secret: expected exposure ≈ 1/ln 2 ≈ 1.44 bits (E[−log₂ U]).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from torch import nn

from privaudit.attacks.exposure import estimate_exposure
from privaudit.attacks.results import CanaryExposure, Exposure
from privaudit.attacks.signals import sequence_nll
from privaudit.mechanisms.data.canaries import Canary, secret_space_size
from privaudit.mechanisms.data.config import CanaryConfig
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.models import AdapterState
from privaudit.mechanisms.tasks import EncodedSet

__all__ = ["exposure_of", "measure_exposure"]


def exposure_of(
    canary_nll: Sequence[float],
    candidate_nll: Sequence[float],
    canaries: Sequence[Canary],
    cfg: CanaryConfig,
    *,
    model_name: str,
) -> Exposure:
    """The report's exposure section from log-perplexities (pure; see :func:`measure_exposure`).

    >>> from privaudit.mechanisms.data.config import CanaryConfig
    >>> c = Canary(id="canary-000", secret="1 2 3", text="pin 1 2 3.", insertions=4)
    >>> e = exposure_of([0.5], np.arange(1.0, 100.0), [c],
    ...                 CanaryConfig(count=1, digits=3, method="empirical"), model_name="m")
    >>> round(e.mean_bits, 3), round(e.canaries[0].rank, 6)  # first of 100 sampled: rank 10
    (6.644, 10.0)
    """
    space = secret_space_size(cfg)
    cand = np.asarray(candidate_nll, dtype=np.float64)
    per = []
    for canary, nll in zip(canaries, canary_nll, strict=True):
        est = estimate_exposure(float(nll), cand, space, method=cfg.method)
        per.append(CanaryExposure(canary_id=canary.id, insertions=canary.insertions,
                                  bits=est.bits, rank=est.rank))
    bits = [p.bits for p in per]
    return Exposure(
        model=model_name,
        mean_bits=float(np.mean(bits)),
        max_bits=float(np.max(bits)),
        log2_space_size=math.log2(space),
        secret_format=f"{cfg.digits} random digits in {cfg.template!r}",
        method=cfg.method,
        n_candidates=int(cand.size),
        canaries=per,
        per_model={model_name: float(np.mean(bits))},
    )


def measure_exposure(
    model: nn.Module,
    canaries: Sequence[Canary],
    candidates: Sequence[str],
    cfg: CanaryConfig,
    encode: Callable[[list[Record]], EncodedSet],
    *,
    model_name: str,
    states: Sequence[AdapterState] | None = None,
) -> Exposure:
    """Score the canaries and the candidate sentences with ``model`` (or the ensemble of
    ``states``, probabilities averaged) and estimate exposure."""

    def as_records(texts: Sequence[str], prefix: str) -> list[Record]:
        return [Record(id=f"{prefix}-{i}", subject_id=prefix, text=t) for i, t in enumerate(texts)]

    canary_nll = sequence_nll(model, encode(as_records([c.text for c in canaries], "canary")),
                              states=states)
    candidate_nll = sequence_nll(model, encode(as_records(candidates, "candidate")),
                                 states=states)
    return exposure_of(canary_nll.tolist(), candidate_nll.tolist(), canaries, cfg,
                       model_name=model_name)
