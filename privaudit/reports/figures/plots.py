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
from privaudit.reports.figures import attacks as attack_figures
from privaudit.reports.schema import AttackResult, DpAuditResult, Exposure, RoundUtility


def to_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "privaudit", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def roc_figure(attacks: Sequence[AttackResult]) -> str | None:
    """ROC curves on log-log axes, one panel per attacked model, with the diagonal (a blind
    guess), the TPR at each reported FPR marked with its confidence interval, and the
    pointwise band when recorded (:func:`privaudit.reports.figures.attacks.roc_figure`)."""
    fig = attack_figures.roc_figure(attacks)
    return to_data_uri(fig) if fig is not None else None


def exposure_figure(exposure: Exposure | None) -> str | None:
    """Each secret canary's exposure against its insertions
    (:func:`privaudit.reports.figures.attacks.exposure_figure`)."""
    fig = attack_figures.exposure_figure(exposure)
    return to_data_uri(fig) if fig is not None else None


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
