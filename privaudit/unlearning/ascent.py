"""Gradient ascent, GradDiff and NPO, run at the client holding the forget set.

Notation: forget set F, retain set R (the holding client's records that stay), reference
model π_ref (the model before unlearning). Per step, on a batch of F (and of R):

- gradient ascent (GA): L = −NLL_F — minimising it raises the forget set's loss;
- GradDiff: L = γ·(−NLL_F) + α·NLL_R (keeps the retained records' loss down);
- NPO (Zhang et al. 2024, "Negative Preference Optimization"): with
  r = log π_θ(y|x) − log π_ref(y|x), L = −(2/β)·E_F[log σ(−β r)] + α·NLL_R.

Run long, ascent collapses the model, so it stops on a rule that needs no oracle: the forget
set's mean loss (eval mode) reaches ``stop_ratio`` × the held-out audit non-members' mean
loss — the loss level of records the model never saw — or on the step cap, and the result
says which. Optional ``recovery_rounds`` of ordinary federated training on the retained data
follow (through :func:`train_federation`). All three are approximate unlearners.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from privaudit.mechanisms.federated.client import make_optimizer
from privaudit.mechanisms.federated.config import FederationConfig
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.models import AdapterState, adapter_state, set_adapter_state
from privaudit.mechanisms.tasks import EncodedSet, ForwardOutput, forward
from privaudit.unlearning.base import (
    ErasureTarget,
    MethodOutcome,
    UnlearnedModel,
    Unlearner,
    UnlearningContext,
    derive_seed,
    federation_examples,
    register_unlearner,
)
from privaudit.unlearning.config import AscentConfig
from privaudit.unlearning.evaluate import per_example_loss

CHECK_RECORDS = 64  # the stopping rule is evaluated on at most this many forget records


def ga_loss(forget_nll: torch.Tensor) -> torch.Tensor:
    """Gradient ascent: −mean NLL_F.

    >>> float(ga_loss(torch.tensor([1.0, 3.0])))
    -2.0
    """
    return -forget_nll.mean()


def graddiff_loss(
    forget_nll: torch.Tensor, retain_nll: torch.Tensor | None, *, gamma: float, alpha: float
) -> torch.Tensor:
    """GradDiff: γ·(−mean NLL_F) + α·mean NLL_R (no retain term when R is empty).

    >>> float(graddiff_loss(torch.tensor([2.0]), torch.tensor([0.5, 1.5]), gamma=1.0, alpha=0.5))
    -1.5
    """
    loss = -gamma * forget_nll.mean()
    if retain_nll is not None and retain_nll.numel():
        loss = loss + alpha * retain_nll.mean()
    return loss


def npo_loss(
    logp: torch.Tensor,
    logp_ref: torch.Tensor,
    retain_nll: torch.Tensor | None,
    *,
    beta: float,
    alpha: float,
) -> torch.Tensor:
    """NPO: −(2/β)·mean log σ(−β(log π_θ − log π_ref)) + α·mean NLL_R.

    At π_θ = π_ref the forget term is (2/β)·ln 2 (= 13.8629 for β = 0.1):

    >>> round(float(npo_loss(torch.zeros(3), torch.zeros(3), None, beta=0.1, alpha=1.0)), 4)
    13.8629
    """
    r = logp - logp_ref
    loss = -(2.0 / beta) * F.logsigmoid(-beta * r).mean()
    if retain_nll is not None and retain_nll.numel():
        loss = loss + alpha * retain_nll.mean()
    return loss


def sequence_logprob(out: ForwardOutput, task: str) -> torch.Tensor:
    """log π(y|x): the label's log-probability, or the sum of the tokens' log-probabilities."""
    if task == "classification" or out.token_logprobs is None or out.token_mask is None:
        return -out.loss
    return (out.token_logprobs * out.token_mask).sum(-1)


class AscentUnlearner(Unlearner):
    """The shared loop; subclasses give the objective and whether it uses retained data."""

    exactness = "approximate"
    uses_retain = False

    def estimate_steps(self, fed: FederationConfig, *, clients: int, per_round: int,
                       retraining: int) -> int:
        """Each client's ascent steps, then the recovery rounds."""
        return self.cfg.ascent.max_steps * clients + self.cfg.ascent.recovery_rounds * per_round

    @abstractmethod
    def objective(
        self,
        out_f: ForwardOutput,
        logp_ref: torch.Tensor,
        out_r: ForwardOutput | None,
        task: str,
    ) -> torch.Tensor:
        """The loss to minimise on a forget batch (and a retain batch when it uses one)."""

    def unlearn(
        self, ctx: UnlearningContext, target: ErasureTarget, ledger: Mapping[str, Any]
    ) -> MethodOutcome:
        a: AscentConfig = self.cfg.ascent
        if target.start.is_ensemble:
            raise ValueError(f"{self.name} unlearns one adapter, not a SISA ensemble")
        state = target.start.states[0]
        threshold = a.stop_ratio * target.reference_loss
        retain = ctx.retain_clients(target.erased)
        outcome = MethodOutcome(model=UnlearnedModel(states=[state]), examples_processed=0)
        reasons = []
        for index, (client, forget) in enumerate(ctx.forget_by_client(target.forget).items()):
            retain_here = retain.get(client) if self.uses_retain else None
            if self.uses_retain and retain_here is None:
                outcome.flags.append(
                    f"{client} keeps no records after the erasure: the retain term is empty"
                )
            state, reason = self._at_client(
                ctx, state, forget, retain_here, threshold,
                seed=derive_seed(target.seed, client, index), outcome=outcome,
            )
            reasons.append(f"{client}: {reason}")
        recovers = bool(a.recovery_rounds and retain)
        if reasons and not recovers and all(": stopping rule after 0 step(s)" in r
                                            for r in reasons):
            outcome.flags.append(
                f"{self.name} took no step: before any ascent the forget set's mean loss "
                f"already reached the stopping target ({a.stop_ratio:g} x the mean loss of "
                f"the held-out records matched to the forget set, {threshold:.3f}), so the "
                "model is the trained one unchanged; the forget evidence says whether it "
                "remembered these records")
        if recovers:
            rcfg = ctx.recipe.with_federation(rounds=a.recovery_rounds)
            result = train_federation(  # round utility unread: no per-round test evaluation
                rcfg, ctx.bundle, retain, ctx.test.subset([]),
                initial_state=state, seed=target.seed, engine=ctx.engine,
                noise=ctx.run_noise(retain), resume=ctx.continued_privacy(),
            )
            state = result.final_state
            outcome.retained_epsilon = result.privacy.epsilon() if result.privacy else None
            outcome.trained_ids |= result.seen_ids
            outcome.examples_processed += federation_examples(rcfg, retain)
            reasons.append(f"then {a.recovery_rounds} recovery round(s) on retained data")
        outcome.model = UnlearnedModel(states=[state])
        outcome.stopping_reason = "; ".join(reasons)
        if ctx.dp_guarantee is not None and self.uses_retain:
            outcome.flags.append(
                f"{self.name}'s retain-loss steps run without DP noise: the run's DP guarantee "
                "no longer covers the retained records in this model")
        elif ctx.dp_guarantee is not None and outcome.retained_epsilon is None:
            # ascent touched only the erased records: the retained records' ε is the run's
            outcome.retained_epsilon = ctx.dp_guarantee[0]
        return outcome

    def _at_client(
        self,
        ctx: UnlearningContext,
        state: AdapterState,
        forget: EncodedSet,
        retain: EncodedSet | None,
        threshold: float,
        *,
        seed: int,
        outcome: MethodOutcome,
    ) -> tuple[AdapterState, str]:
        """Ascent on ``forget`` (this client's share of F) from ``state``; the stop reason."""
        a: AscentConfig = self.cfg.ascent
        model, task = ctx.bundle.model, ctx.recipe.task
        set_adapter_state(model, state)
        generator = torch.Generator().manual_seed(seed)
        check = forget
        if len(forget) > CHECK_RECORDS:
            pick = torch.randperm(len(forget), generator=generator)[:CHECK_RECORDS]
            check = forget.subset(sorted(pick.tolist()))
        logp_ref = -torch.as_tensor(per_example_loss(model, None, forget, task))
        if task != "classification":  # sequence log-prob = −mean token NLL × tokens
            lengths = torch.tensor([max(len(x) - 1, 1) for x in forget.input_ids])
            logp_ref = logp_ref * lengths
        model.train()
        torch.manual_seed(seed)  # dropout
        params = [p for p in model.parameters() if p.requires_grad]
        lr = a.learning_rate or ctx.recipe.federation.learning_rate
        optimizer = make_optimizer(params, ctx.recipe.federation.model_copy(
            update={"learning_rate": lr}))
        for step in range(a.max_steps + 1):
            current = float(per_example_loss(model, None, check, task).mean())
            if current >= threshold:
                return adapter_state(model), (
                    f"stopping rule after {step} step(s): forget-set mean loss {current:.3f} "
                    f">= {a.stop_ratio:g} x non-member mean loss ({threshold:.3f})"
                )
            if step == a.max_steps:
                break
            f_idx = torch.randperm(len(forget), generator=generator)[: a.batch_size].tolist()
            out_f = forward(model, forget.batch(f_idx), task)
            out_r = None
            if retain is not None:
                r_idx = torch.randperm(len(retain), generator=generator)[: a.batch_size].tolist()
                out_r = forward(model, retain.batch(r_idx), task)
                outcome.trained_ids.update(retain.record_ids[i] for i in r_idx)
                outcome.examples_processed += len(r_idx)
            loss = self.objective(out_f, logp_ref[f_idx], out_r, task)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            outcome.ascended_ids.update(forget.record_ids[i] for i in f_idx)
            outcome.examples_processed += len(f_idx)
        return adapter_state(model), (
            f"step cap ({a.max_steps} steps): forget-set mean loss {current:.3f} "
            f"< target {threshold:.3f}"
        )


class GradientAscent(AscentUnlearner):
    name = "gradient_ascent"

    def objective(
        self, out_f: ForwardOutput, logp_ref: torch.Tensor, out_r: ForwardOutput | None, task: str
    ) -> torch.Tensor:
        return ga_loss(out_f.loss)


class GradDiff(AscentUnlearner):
    name = "graddiff"
    uses_retain = True

    def objective(
        self, out_f: ForwardOutput, logp_ref: torch.Tensor, out_r: ForwardOutput | None, task: str
    ) -> torch.Tensor:
        a = self.cfg.ascent
        retain = out_r.loss if out_r is not None else None
        return graddiff_loss(out_f.loss, retain, gamma=a.gamma, alpha=a.alpha)


class NPO(AscentUnlearner):
    name = "npo"
    uses_retain = True

    def objective(
        self, out_f: ForwardOutput, logp_ref: torch.Tensor, out_r: ForwardOutput | None, task: str
    ) -> torch.Tensor:
        a = self.cfg.ascent
        retain = out_r.loss if out_r is not None else None
        logp = sequence_logprob(out_f, task)
        return npo_loss(logp, logp_ref.to(logp.device, logp.dtype), retain, beta=a.beta,
                        alpha=a.alpha)


register_unlearner(GradientAscent.name, GradientAscent)
register_unlearner(GradDiff.name, GradDiff)
register_unlearner(NPO.name, NPO)
