"""Figures for the report, drawn with matplotlib (Agg) and embedded as SVG data URIs.

SVG output is deterministic (fixed ``svg.hashsalt``, no date), so re-rendering a report
gives the same bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from privaudit.attacks.dp_audit import max_tpr_under_dp
from privaudit.reports.schema import AttackResult, DpAuditResult, RoundUtility

#: The false-positive rates marked on every ROC (Carlini et al. 2022: low FPR is what matters).
MARKED_FPRS = (0.001, 0.01)
_FLOOR = 1e-3


def to_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "privaudit", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def roc_figure(attacks: Sequence[AttackResult]) -> str | None:
    """ROC curves on log-log axes with the diagonal (a blind guess), the TPR at 0.1% and 1%
    FPR marked with their confidence intervals, and the pointwise band when recorded."""
    curves = [a for a in attacks if a.roc is not None]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    for a in curves:
        if a.roc is None:
            continue
        fpr = [max(x, _FLOOR) for x in a.roc.fpr]
        tpr = [max(y, _FLOOR) for y in a.roc.tpr]
        (line,) = ax.plot(fpr, tpr, label=f"{a.attack} on {a.model} (AUC {a.auc:.2f})")
        if a.roc.tpr_ci_low is not None and a.roc.tpr_ci_high is not None:
            ax.fill_between(fpr, [max(y, _FLOOR) for y in a.roc.tpr_ci_low],
                            [max(y, _FLOOR) for y in a.roc.tpr_ci_high],
                            color=line.get_color(), alpha=0.12, linewidth=0)
        for key, t in a.tpr_at_fpr.items():
            if float(key) not in MARKED_FPRS:
                continue
            y = max(t.value, _FLOOR)
            err = [[y - max(t.ci_low, _FLOOR)], [max(t.ci_high, _FLOOR) - y]]
            ax.errorbar([float(key)], [y], yerr=err, fmt="o", color=line.get_color(),
                        capsize=3, markersize=4)
    ax.plot([_FLOOR, 1], [_FLOOR, 1], "k--", linewidth=1, label="blind guess")
    for mark in MARKED_FPRS:
        ax.axvline(mark, color="0.7", linewidth=0.8)
        ax.text(mark, 1.02, f"{100 * mark:g}% FPR", transform=ax.get_xaxis_transform(),
                ha="center", fontsize=7, color="0.4")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(_FLOOR, 1)
    ax.set_ylim(_FLOOR, 1)
    ax.set_xlabel("false-positive rate (non-members wrongly flagged)")
    ax.set_ylabel("true-positive rate (members found)")
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


def privacy_region_figure(audit: DpAuditResult | None) -> str | None:
    """The (FPR, TPR) region the claimed (ε, δ) allows, with the measured canary attack points
    overlaid: a point outside the shaded region contradicts the guarantee."""
    if audit is None:
        return None
    fig, ax = plt.subplots(figsize=(5.0, 4.6))
    fpr = np.linspace(0.0, 1.0, 401)
    if audit.claimed_epsilon is not None:
        top = max_tpr_under_dp(fpr, epsilon=audit.claimed_epsilon, delta=audit.delta)
        bottom = 1.0 - max_tpr_under_dp(1.0 - fpr, epsilon=audit.claimed_epsilon,
                                        delta=audit.delta)
        ax.fill_between(fpr, np.clip(bottom, 0, 1), top, color="tab:green", alpha=0.18,
                        label=f"allowed by ε = {audit.claimed_epsilon:.3g}, δ = {audit.delta:g}")
    lb = audit.epsilon_lower_bound
    ax.plot(fpr, max_tpr_under_dp(fpr, epsilon=lb, delta=audit.delta), "r:", linewidth=1,
            label=f"edge at the measured ε ≥ {lb:.3g}")
    roc = [p for p in audit.points if p.label == "canary ROC"]
    ax.plot([p.fpr for p in roc], [p.tpr for p in roc], "o-", markersize=3,
            label=f"{audit.attack or 'attack'} on the canaries")
    for p in audit.points:
        if p.label != "canary ROC":
            ax.plot([p.fpr], [p.tpr], "k*", markersize=9, label=p.label)
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="blind guess")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false-positive rate (canaries left out, guessed in)")
    ax.set_ylabel("true-positive rate (canaries trained on, guessed in)")
    ax.legend(fontsize=7, loc="lower right")
    return to_data_uri(fig)
