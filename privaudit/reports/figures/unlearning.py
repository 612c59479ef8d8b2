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

__all__ = ["timeline_figure", "unlearning_figures", "vulnerability_figure"]

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


_PANELS = (("utility", "utility (test split)"),
           ("earlier_privleak", "earlier erasures: PrivLeak %"),
           ("retained_epsilon", "retained records' ε"),
           ("cumulative_seconds", "cumulative seconds"))


def _panel_value(r: Mapping[str, Any], key: str) -> float | None:
    seq = r.get("sequence") or {}
    value = {"utility": (r.get("retain") or {}).get("utility"),
             "retained_epsilon": r.get("retained_epsilon")}.get(key, seq.get(key))
    return None if value is None else float(value)


def timeline_figure(results: Sequence[Mapping[str, Any]] | None) -> str | None:
    """The sequence of requests, one line per method (``unlearning[].sequence``): utility,
    the earlier erasures' PrivLeak, the retained ε and the cumulative cost after each
    request; None unless some method served two requests or more."""
    by_method: dict[str, list[Mapping[str, Any]]] = {}
    for r in results or []:
        if r.get("sequence"):
            by_method.setdefault(str(r.get("method")), []).append(r)
    if not any(len(rows) >= 2 for rows in by_method.values()):
        return None
    fig, axes = plt.subplots(2, 2, figsize=(8.0, 5.0), sharex=True)
    for ax, (key, label) in zip(axes.flat, _PANELS, strict=True):
        for method, rows in sorted(by_method.items()):
            points = [(int(r["sequence"]["position"]), _panel_value(r, key)) for r in rows]
            points = [(x, y) for x, y in points if y is not None]
            if points:
                xs, ys = zip(*sorted(points), strict=True)
                ax.plot(xs, ys, marker="o", markersize=2.5, linewidth=1.0, label=method)
        if key == "earlier_privleak":
            ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(label, fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[1]:
        ax.set_xlabel("request served")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=min(len(labels), 6))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return to_data_uri(fig)
