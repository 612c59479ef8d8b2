"""The attack maths alone: seconds to score 10,000 examples from cached signals, and TPR at
1% FPR on a synthetic world with per-example difficulty (issue 7's LiRA-16 / LiRA-4 / RMIA-4 /
LOSS comparison, minus the models).

    .venv/bin/python -m pytest benchmarks/bench_attacks_math.py -q -s --benchmark-only \
        -p no:cacheprovider

The issue's wall-time goal (RMIA-4 at ≤ 1/3 of LiRA-16's time) is dominated by training and
evaluating reference models; this file shows the scoring itself is negligible next to that
(milliseconds), so the reference count is what decides the cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from privaudit.attacks.metrics import evaluate_scores
from privaudit.attacks.scores import AttackInputs, SignalSet, get_attack

N, Z = 10_000, 5_000
CASES = [("loss", 0, {}), ("lira", 16, {}), ("lira", 4, {}), ("rmia", 4, {}),
         ("rmia", 4, {"mode": "offline"})]


def _world(n_refs: int, seed: int = 0) -> tuple[AttackInputs, np.ndarray]:
    rng = np.random.default_rng(seed)
    total = N + Z
    d = rng.normal(0.0, 2.0, total)
    member = np.zeros(total, dtype=bool)
    member[rng.permutation(N)[: N // 2]] = True
    keep = np.argsort(rng.random((max(n_refs, 2), total)), axis=0) < max(n_refs, 2) // 2
    keep = keep[:n_refs]

    def signals(inside: np.ndarray) -> SignalSet:
        phi = d + 1.0 * inside + 0.3 * rng.standard_normal(total)
        return SignalSet(loss=np.logaddexp(0.0, -phi), phi=phi, prob_true=1 / (1 + np.exp(-phi)))

    target = signals(member)
    refs = [signals(keep[j]) for j in range(n_refs)]
    aud, pop = np.arange(N), np.arange(N, total)
    inputs = AttackInputs(
        target=target.take(aud), references=[r.take(aud) for r in refs], keep=keep[:, aud],
        population_target=target.take(pop), population_references=[r.take(pop) for r in refs],
        population_keep=keep[:, pop],
    )
    return inputs, member[aud]


@pytest.mark.parametrize(("name", "n_refs", "params"), CASES,
                         ids=[f"{c[0]}-{c[1]}refs{'-' + '-'.join(c[2].values()) if c[2] else ''}"
                              for c in CASES])
def test_bench_attack_scoring(benchmark: Any, name: str, n_refs: int, params: dict) -> None:
    inputs, is_member = _world(n_refs)
    attack = get_attack(name, **params)
    scores = benchmark(attack.score, inputs)
    m = evaluate_scores(scores, is_member, fprs=(0.01,), n_bootstrap=20)
    benchmark.extra_info.update(auc=round(m.auc, 4), tpr_at_1pct_fpr=m.tpr_at_fpr["0.01"].value)
    print(f"\n{name}-{n_refs} {params}: AUC {m.auc:.3f}, "
          f"TPR@1%FPR {m.tpr_at_fpr['0.01'].value:.3f}")
