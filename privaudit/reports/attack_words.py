"""The membership-inference control's judgement of one attack result, in words.

FAIL when the AUC is above :data:`AUC_FAIL` with 95% confidence (its CI's lower end), or the
TPR at a measurable FPR is above :data:`TPR_FAIL_FACTOR` × that FPR with confidence; WARN
when either is merely above chance with confidence; NOT INFORMATIVE (never PASS) when, with
nothing failing, the TPR at a configured FPR is not estimable (fewer than 10/FPR held-out
non-members); else PASS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privaudit.attacks.resolution import min_resolvable_fpr, nonmembers_needed, tpr_estimable
from privaudit.reports.schema import ControlStatus

__all__ = ["AUC_FAIL", "TPR_FAIL_FACTOR", "judge_attack", "pct"]

AUC_FAIL = 0.6
TPR_FAIL_FACTOR = 5.0


def pct(x: float) -> str:
    """``x`` as a percentage with one decimal.

    >>> pct(0.0123)
    '1.2%'
    """
    return f"{100 * x:.1f}%"


def judge_attack(a: Mapping[str, Any]) -> tuple[ControlStatus, str]:
    """One attack result judged: its status and the words for it (thresholds above)."""
    auc, low = a.get("auc"), a.get("auc_ci_low")
    name = f"the {a.get('attack')} attack on the {a.get('model')} model"
    n_non = int(a.get("n_nonmembers") or 0)
    fail, warn, unmeasurable = [], [], []
    if low is not None and low > AUC_FAIL:
        fail.append(f"its AUC is {auc:.2f} (above {AUC_FAIL} with 95% confidence)")
    elif low is not None and low > 0.5:
        warn.append(f"its AUC {auc:.2f} is above a blind guess (0.5) with 95% confidence")
    for key, t in sorted((a.get("tpr_at_fpr") or {}).items(), key=lambda kv: float(kv[0])):
        fpr = float(key)
        if not tpr_estimable(t, n_non, fpr):
            unmeasurable.append((fpr, t.get("ci_high")))
            continue
        if t["ci_low"] > TPR_FAIL_FACTOR * fpr:
            fail.append(f"at {pct(fpr)} false alarms it finds {pct(t['value'])} of members "
                        f"(at least {pct(t['ci_low'])}, over {TPR_FAIL_FACTOR:g}× chance)")
        elif t["ci_low"] > fpr:
            warn.append(f"at {pct(fpr)} false alarms it finds {pct(t['value'])} of members, "
                        "more than chance")
    if fail:
        return "FAIL", f"{name.capitalize()} succeeds: " + "; ".join(fail) + "."
    if warn:
        return "WARN", f"{name.capitalize()} does better than guessing: " + "; ".join(warn) + "."
    ci = f", 95% CI {low:.2f}–{a.get('auc_ci_high'):.2f}" if low is not None else ""
    base = f"{name.capitalize()} does no better than guessing (AUC {auc:.2f}{ci})"
    if unmeasurable:
        smallest = min(f for f, _ in unmeasurable)
        rates = ", ".join(pct(f) for f, _ in unmeasurable)
        at = len(unmeasurable) > 1
        bounds = ", ".join(f"at most {pct(h)}" + (f" at {pct(f)}" if at else "")
                           for f, h in unmeasurable if h is not None)
        return "NOT INFORMATIVE", (
            f"{base}, but it could not have shown an attack that finds members at {rates} "
            f"false alarms: the TPR there is not estimable, as {n_non} held-out records "
            f"resolve FPRs down to {pct(min_resolvable_fpr(n_non))} only ({pct(smallest)} "
            f"needs at least {nonmembers_needed(smallest)})"
            + (f"; the TPR there is {bounds}." if bounds else "."))
    return "PASS", base + "."
