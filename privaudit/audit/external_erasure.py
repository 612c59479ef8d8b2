"""``audit-model --unlearned DIR --forget F [--oracle DIR]``: judge an unlearned model that
privaudit did not produce, as the run's erase stage judges its own.

The audited adapter (``--adapter``) is the model before the erasure; ``--unlearned`` and
``--oracle`` are peft LoRA adapters of the same shape on the same ``--base``: the model after
unlearning, and one retrained without the forget records (the yardstick). The forget records
must be among the members. The evidence is the run's (:func:`~privaudit.unlearning.verify.
compare_forget`): each model's forget-set LOSS AUC against the non-members with its interval,
PrivLeak against the oracle with its floor, the KS test of the forget losses, and the
under-/over-unlearned flags (:func:`~privaudit.unlearning.evidence.flags_for`); without an
oracle there is nothing to compare with and the erasure line is NOT INFORMATIVE. privaudit
did not run the unlearning, so its time, steps and exactness are not known: the result says
so (``stopping_reason``) and is judged as an approximate method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from safetensors.torch import load_file
from torch import nn

from privaudit.attacks.config import AttacksConfig
from privaudit.attacks.metrics import AttackMetrics, evaluate_scores
from privaudit.attacks.references import preserved_adapter
from privaudit.core.errors import ConfigError
from privaudit.core.hashing import ordered_ids_sha256
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.models import (
    AdapterState,
    adapter_state,
    set_adapter_state,
    state_sha256,
)
from privaudit.mechanisms.tasks import EncodedSet, evaluate_utility
from privaudit.unlearning.config import VerifyConfig
from privaudit.unlearning.evaluate import per_example_loss
from privaudit.unlearning.evidence import flags_for, utility_drop, verdict_line
from privaudit.unlearning.paired import match_nonmembers
from privaudit.unlearning.results import ForgetEvidence, RetainEvidence, UnlearningResult
from privaudit.unlearning.verify import compare_forget

__all__ = ["SUPPLIED", "SuppliedErasure", "adapter_weights", "judge_supplied"]

#: The method name of a supplied unlearned model in ``unlearning[]`` and ``attacks[].model``.
SUPPLIED = "supplied"


@dataclass
class SuppliedErasure:
    request_id: str
    forget: list[Record]
    unlearned: AdapterState
    unlearned_path: Path
    oracle: AdapterState | None = None
    oracle_path: Path | None = None


def adapter_weights(model: nn.Module, directory: Path, *, option: str) -> AdapterState:
    """The trainable tensors of ``model`` (a peft model) with the adapter saved in
    ``directory`` loaded in place of its own (peft maps the saved names); ``model``'s adapter
    is unchanged on return."""
    from privaudit.mechanisms.model.lora_backend import set_peft_model_state_dict

    path = directory / "adapter_model.safetensors"
    if not path.is_file():
        raise ConfigError(f"{option}: no adapter_model.safetensors in {directory} (a peft "
                          "adapter directory, saved with save_pretrained, on the same --base)")
    with preserved_adapter(model):
        try:
            loaded = set_peft_model_state_dict(model, load_file(str(path)))
        except RuntimeError as exc:  # a tensor of another shape
            reason = " ".join(str(exc).split())[:200]
            raise ConfigError(f"{option}: {directory} is not an adapter of the --adapter's "
                              f"shape ({reason})") from None
        unexpected = list(getattr(loaded, "unexpected_keys", []) or [])
        if unexpected:
            raise ConfigError(f"{option}: {directory} is not an adapter of the --adapter's "
                              f"shape ({len(unexpected)} tensor(s) it does not have, e.g. "
                              f"{unexpected[0]!r})")
        return adapter_state(model)


def _auc_fn(cfg: AttacksConfig, seed: int) -> Callable[[np.ndarray, np.ndarray], AttackMetrics]:
    def auc(members: np.ndarray, nonmembers: np.ndarray) -> AttackMetrics:
        scores = -np.r_[members, nonmembers]  # lower loss = member
        is_member = np.r_[np.ones(members.size), np.zeros(nonmembers.size)]
        return evaluate_scores(scores, is_member, fprs=tuple(cfg.fprs),
                               confidence=cfg.confidence, n_bootstrap=cfg.bootstrap, seed=seed)
    return auc


def judge_supplied(model: nn.Module, erasure: SuppliedErasure, *, original: AdapterState,
                   utility_before: float, encode: Callable[[list[Record]], EncodedSet],
                   nonmembers: list[Record], task: str, cfg: AttacksConfig,
                   seed: int) -> UnlearningResult:
    """The supplied unlearned model's certificate (module docstring); ``utility_before``:
    the ``original`` adapter's on the non-members. ``model``'s adapter is unchanged on
    return."""
    forget, held_out = encode(erasure.forget), encode(nonmembers)

    def losses(state: AdapterState) -> tuple[np.ndarray, np.ndarray]:
        set_adapter_state(model, state)
        return (per_example_loss(model, None, forget, task),
                per_example_loss(model, None, held_out, task))

    with preserved_adapter(model):
        before, after = losses(original), losses(erasure.unlearned)
        oracle = losses(erasure.oracle) if erasure.oracle is not None else None
        set_adapter_state(model, erasure.unlearned)
        metric, value_after = evaluate_utility(model, held_out, task)
    value_before = utility_before
    f = ForgetEvidence(n_records=len(erasure.forget), mean_loss_before=float(before[0].mean()),
                       mean_loss_after=float(after[0].mean()),
                       mean_loss_oracle=None if oracle is None else float(oracle[0].mean()),
                       nonmember_mean_loss=float(before[1].mean()))
    verify = VerifyConfig()
    f.privleak_band = verify.privleak_band
    cmp = compare_forget(f, before=before, after=after, oracle=oracle,
                         auc=_auc_fn(cfg, seed), confidence=cfg.confidence,
                         matching=match_nonmembers(forget, held_out),
                         n_resamples=cfg.bootstrap, seed=seed)
    result = UnlearningResult(
        request_id=erasure.request_id, kind="record", method=SUPPLIED, exactness="approximate",
        seconds=0.0, examples_processed=0, executed_at=datetime.now(UTC).isoformat(),
        request_ids_sha256=ordered_ids_sha256([r.id for r in erasure.forget]),
        model_sha256_before=state_sha256(original),
        model_sha256_after=state_sha256(erasure.unlearned),
        model_path=str(erasure.unlearned_path), forget=f,
        retain=RetainEvidence(utility_metric=metric, utility=value_after,  # type: ignore[arg-type]
                              utility_before=value_before),
        stopping_reason="supplied by the user: privaudit did not run this unlearning, so its "
        "time, steps and exactness are not known; utility is measured on the non-members",
    )
    result.utility_drop = utility_drop(value_before, value_after, metric)
    confidence = cfg.confidence
    result.verification_flags = flags_for(
        privleak_value=f.privleak, auc_unlearned=cmp.auc.auc if cmp.auc else None,
        difference=cmp.difference, spread=cmp.spread, drop=result.utility_drop, drop_ci=None,
        cfg=verify, confidence=confidence)
    result.flags += [v.message for v in result.verification_flags]
    result.verdict = verdict_line(result, alpha=1 - confidence)
    return result
