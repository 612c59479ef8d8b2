"""Figures for the report, drawn with matplotlib (Agg) and embedded as SVG data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from privaudit.reports.schema import AttackResult, RoundUtility


def to_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def roc_figure(attacks: Sequence[AttackResult]) -> str | None:
    """ROC curves on log-log axes, with the diagonal (a blind guess) for comparison."""
    curves = [a for a in attacks if a.roc is not None]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    floor = 1e-3
    for a in curves:
        if a.roc is None:
            continue
        fpr = [max(x, floor) for x in a.roc.fpr]
        tpr = [max(y, floor) for y in a.roc.tpr]
        ax.plot(fpr, tpr, label=f"{a.attack} on {a.model} (AUC {a.auc:.2f})")
    ax.plot([floor, 1], [floor, 1], "k--", linewidth=1, label="blind guess")
    for mark in (0.001, 0.01):
        ax.axvline(mark, color="0.7", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor, 1)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.legend(fontsize=7, loc="lower right")
    return to_data_uri(fig)


def utility_figure(rounds: Sequence[RoundUtility], metric: str) -> str | None:
    if not rounds:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    ax.plot([r.round for r in rounds], [r.value for r in rounds], marker="o")
    ax.set_xlabel("round")
    ax.set_ylabel(metric)
    ax.set_xticks([r.round for r in rounds])
    return to_data_uri(fig)
