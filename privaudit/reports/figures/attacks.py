"""Figures of the attack results, for the report (matplotlib, Agg).

Each function takes report-schema values and returns a matplotlib ``Figure`` (the caller
embeds it, e.g. with ``privaudit.reports.figures.plots.to_data_uri``), or None when there is nothing
to draw.

- :func:`roc_figure`: ROC curves on log-log axes (Carlini et al., S&P 2022: the low-FPR
  region is what matters), each with its pointwise Clopper–Pearson band, the TPR at each
  reported FPR marked with its interval (a downward triangle at its upper bound alone where
  too few non-members make it not estimable), and the diagonal of a blind guess. Curves stop
  at the smallest FPR the non-members resolve (1/n); the region below is shaded. One panel per
  attacked model (the federated model, each unlearned model, each oracle), at most
  :data:`COLUMNS` to a row, all on the same axes so that panels compare at a glance.
- :func:`exposure_figure`: each secret canary's exposure in bits against how many training
  records carried it, with the space's maximum log₂|R| and the ≈1.44 bits a model that never
  saw the canaries gets on average.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from privaudit.reports.schema import AttackResult, Exposure

__all__ = ["exposure_figure", "roc_figure"]

_FLOOR = 1e-3
#: Panels per row of the ROC figure (two: each panel readable on an A4 page).
COLUMNS = 2
#: Expected exposure of a secret the model never saw: E[−log₂ U], U uniform = 1/ln 2 bits.
CHANCE_BITS = 1.0 / math.log(2.0)


def _clip(values: Sequence[float]) -> list[float]:
    return [max(v, _FLOOR) for v in values]


def _resolved(a: AttackResult, values: Sequence[float]) -> list[float]:
    """``values`` (one per ROC point) at the FPRs the non-members resolve: below 1/n the
    curve is not measured, only interpolated, so it is not drawn there."""
    fprs = a.roc.fpr if a.roc is not None else []
    floor = a.min_resolvable_fpr or 0.0
    return [v for f, v in zip(fprs, values, strict=True) if f >= floor]


def _roc_axes(ax: Axes, attacks: Sequence[AttackResult]) -> None:
    floors = [a.min_resolvable_fpr for a in attacks if a.min_resolvable_fpr]
    if floors and max(floors) > _FLOOR:
        ax.axvspan(_FLOOR, max(floors), color="0.93", zorder=0,
                   label=f"FPR below {max(floors):.2g}: not resolvable")
    for a in attacks:
        if a.roc is None:
            continue
        fpr = _clip(_resolved(a, a.roc.fpr))
        (line,) = ax.plot(fpr, _clip(_resolved(a, a.roc.tpr)), linewidth=1.4,
                          label=f"{a.attack} (AUC {a.auc:.2f})")
        if a.roc.tpr_ci_low is not None and a.roc.tpr_ci_high is not None:
            ax.fill_between(fpr, _clip(_resolved(a, a.roc.tpr_ci_low)),
                            _clip(_resolved(a, a.roc.tpr_ci_high)),
                            color=line.get_color(), alpha=0.12, linewidth=0)
        for key, rate in a.tpr_at_fpr.items():
            if rate.value is None:  # not estimable: only its upper bound, never a point
                ax.plot([float(key)], [max(rate.ci_high, _FLOOR)], marker="v", linestyle="",
                        color=line.get_color(), markersize=4.5)
                continue
            x, y = float(key), max(rate.value, _FLOOR)
            err = [[y - max(rate.ci_low, _FLOOR)], [max(rate.ci_high, _FLOOR) - y]]
            ax.errorbar([x], [y], yerr=err, fmt="o", color=line.get_color(), capsize=3,
                        markersize=3.5)
    ax.plot([_FLOOR, 1.0], [_FLOOR, 1.0], "k--", linewidth=0.9, label="blind guess")
    for key in sorted({k for a in attacks for k in a.tpr_at_fpr}, key=float):
        ax.axvline(float(key), color="0.8", linewidth=0.7, zorder=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(_FLOOR, 1.0)
    ax.set_ylim(_FLOOR, 1.0)
    ax.set_xlabel("false-positive rate (non-members flagged)")
    ax.set_ylabel("true-positive rate (members found)")
    ax.legend(fontsize=7, loc="lower right")


def roc_figure(attacks: Sequence[AttackResult], *, models: Sequence[str] | None = None) -> (
    Figure | None
):
    """Log-log ROC curves with confidence bands, one panel per model (in ``models`` order,
    default: as they first appear in ``attacks``), :data:`COLUMNS` panels to a row."""
    drawn = [a for a in attacks if a.roc is not None]
    if not drawn:
        return None
    names = list(models) if models is not None else list(dict.fromkeys(a.model for a in drawn))
    names = [m for m in names if any(a.model == m for a in drawn)]
    cols = min(COLUMNS, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.2 * rows), squeeze=False)
    flat = list(axes.flat)
    for ax, name in zip(flat, names, strict=False):
        _roc_axes(ax, [a for a in drawn if a.model == name])
        ax.set_title(f"{name} model", fontsize=9)
    for ax in flat[len(names):]:
        fig.delaxes(ax)
    fig.tight_layout()
    return fig


def exposure_figure(exposure: Exposure | None) -> Figure | None:
    """Exposure (bits) of every canary against its number of insertions."""
    if exposure is None or not exposure.canaries:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    xs = [c.insertions for c in exposure.canaries]
    ys = [c.bits for c in exposure.canaries]
    ax.scatter(xs, ys, s=22, zorder=3, label="one canary")
    levels = sorted(set(xs))
    means = [sum(y for x, y in zip(xs, ys, strict=True) if x == lv) / xs.count(lv)
             for lv in levels]
    ax.plot(levels, means, marker="_", markersize=16, linewidth=1.0, label="mean per frequency")
    ax.axhline(exposure.log2_space_size, color="0.5", linewidth=0.9, linestyle=":",
               label=f"maximum, log2|R| = {exposure.log2_space_size:.1f} bits")
    ax.axhline(CHANCE_BITS, color="0.5", linewidth=0.9, linestyle="--",
               label="never seen (≈1.44 bits on average)")
    if len(levels) > 1 and min(levels) > 0:
        ax.set_xscale("log", base=2)
    ax.set_xticks(levels)
    ax.set_xticklabels([str(v) for v in levels])
    ax.set_ylim(0, exposure.log2_space_size * 1.05)
    ax.set_xlabel("training records carrying the canary")
    ax.set_ylabel("exposure (bits)")
    ax.set_title(f"secret-canary exposure, {exposure.model} model (mean "
                 f"{exposure.mean_bits:.2f} bits)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
