"""Figures of the unlearning evidence, for the report's certificates (matplotlib, Agg).

:func:`vulnerability_figure`: one point per forget record, its vulnerability (the share of
held-out records with a higher loss: 0.5 looks never-seen, 1 = memorised) under the trained
model, the unlearned model and the oracle, records sorted by their vulnerability before.
Unlearning worked when "after" sits on "oracle", not on "before" — and not below it. The
title carries the request's U-LiRA AUC when it was evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from privaudit.reports.figures.plots import to_data_uri

__all__ = ["unlearning_figures", "vulnerability_figure"]

_SERIES = (("vulnerability_before", "before (trained)", "tab:red", "v"),
           ("vulnerability_after", "after (unlearned)", "tab:blue", "o"),
           ("vulnerability_oracle", "oracle (retrained)", "tab:green", "s"))


def vulnerability_figure(result: Mapping[str, Any]) -> str | None:
    """The per-example vulnerability of one result's forget set (an ``unlearning[]`` entry of
    report.json) as an SVG data URI; None when the result has no per-example evidence."""
    forget = result.get("forget") or {}
    before = forget.get("vulnerability_before") or []
    if not before:
        return None
    order = np.argsort(-np.asarray(before, float), kind="stable")
    x = np.arange(1, len(order) + 1)
    fig, ax = plt.subplots(figsize=(6.0, 3.0))
    for key, label, color, marker in _SERIES:
        values = forget.get(key) or []
        if len(values) == len(order):
            ax.plot(x, np.asarray(values, float)[order], marker, color=color, label=label,
                    markersize=3, alpha=0.8, linestyle="none")
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle="--", label="a never-seen record")
    ax.set_ylim(-0.02, 1.02)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # records are counted, never halved
    ax.set_xlabel("forget record (sorted by vulnerability before)")
    ax.set_ylabel("vulnerability")
    title = f"{result.get('request_id')} — {result.get('method')}"
    if result.get("ulira_auc") is not None:
        title += f" (U-LiRA AUC {float(result['ulira_auc']):.2f})"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return to_data_uri(fig)


def unlearning_figures(results: Sequence[Mapping[str, Any]] | None) -> list[str | None]:
    """One :func:`vulnerability_figure` per result, in order (oracle results get none)."""
    return [None if r.get("method") == "oracle" else vulnerability_figure(r)
            for r in results or []]
