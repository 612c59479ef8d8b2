"""What the robustness probes covered (``unlearning.robustness``), in words for the erasure
control's PASS line: the shipped variants tested, and how far the relearning probes reach."""

from __future__ import annotations

from typing import Any

__all__ = ["probes_said", "relearning_reach", "variant_reach"]


def probes_said(judged: list[Any]) -> str:
    """What the robustness probes covered, for the PASS line (or what they did not)."""
    variants = sorted({name for u in judged for name, v in (u.get("robustness") or {}).items()
                       if v}, key=("merged", "int8", "int4", "nf4").index)
    relearned = [u for u in judged if (u.get("relearning") or {}).get("recovery") is not None]
    said = (f" The same test passes on the shipped variants ({', '.join(variants)})"
            f"{variant_reach(judged)}." if variants else " Only the fp32 adapter was tested, "
            "not a merged or quantized artifact (unlearning.robustness.variants).")
    if relearned:
        said += (f" {len(relearned)} model(s) relearn the erased records no faster than the "
                 f"oracle after the same fine-tuning{relearning_reach(relearned)}.")
    return said


def variant_reach(judged: list[Any]) -> str:
    """What the variants' tests could show: each is judged at 1 − α/V, so its floor is
    higher than the fp32 test's."""
    floors = [v.get("privleak_floor") for u in judged
              for v in (u.get("robustness") or {}).values()
              if v and not v.get("identical_to_oracle")]
    shown = [f for f in floors if f is not None]
    if not shown:
        return ""
    if max(shown) >= 100:
        return (" — NOT INFORMATIVE for some: at the stricter confidence each variant is "
                f"tested at, their records show PrivLeak beyond ±{max(shown):.0f}% only, so "
                "even total memorisation could pass")
    return (f" (each at the stricter confidence of V variants: departures beyond "
            f"±{max(shown):.0f}% only)")


def relearning_reach(relearned: list[Any]) -> str:
    """What the relearning probes could show: the smallest recovery their records reveal."""
    floors = [u["relearning"].get("recovery_floor") for u in relearned]
    shown = [f for f in floors if f is not None]
    able = [f for f in shown if f < 0.5]
    if not shown:
        return ""
    if not able:
        return " (NOT INFORMATIVE: too few erased records were measured to show any recovery)"
    some = "; the others too few records to show any" if len(able) < len(shown) else ""
    return f" (a recovery shows on their records only beyond {max(able):.2f} in forget AUC{some})"
