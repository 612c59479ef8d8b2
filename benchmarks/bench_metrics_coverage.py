"""Coverage of the TPR-at-FPR interval by simulation (two Gaussians, members N(d, 1),
non-members N(0, 1)): the reported distribution-free interval vs a Clopper–Pearson interval
at the measured threshold alone (what the report used before), nominal 95%.

    .venv/bin/python -m pytest benchmarks/bench_metrics_coverage.py -q -s --benchmark-only \\
        -p no:cacheprovider
"""

from __future__ import annotations

from typing import Any

from tests.attacks.coverage_sim import simulate

RUNS = 500


def test_tpr_interval_coverage_table(benchmark: Any) -> None:
    def table() -> list[Any]:
        return [simulate(n, d, fpr, RUNS, seed=11) for n in (40, 200, 1000)
                for d in (1.0, 2.0) for fpr in (0.01, 0.001)]

    rows = benchmark.pedantic(table, rounds=1, iterations=1)
    print(f"\n{'n/class':>8}{'d':>5}{'FPR':>7}{'true TPR':>10}{'covered':>9}"
          f"{'fixed-threshold CP':>20}{'mean estimate':>15}{'estimable':>11}")
    for c in rows:
        print(f"{c.n:>8}{c.d:>5.1f}{c.fpr:>7}{c.true_tpr:>10.3f}{c.covered:>9.3f}"
              f"{c.covered_fixed:>20.3f}{c.mean_estimate:>15.3f}"
              f"{'yes' if c.estimable else 'no':>11}")
    assert all(c.covered >= 0.93 for c in rows)
