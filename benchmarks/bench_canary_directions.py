"""Which gradient canaries audit better (#20): Dirac coordinates or seeded random directions?

    .venv/bin/python -m pytest benchmarks/bench_canary_directions.py -q -s --benchmark-only \
        -p no:cacheprovider          (or: .venv/bin/python benchmarks/bench_canary_directions.py)

The same experiment twice per seed, on the tests' tiny memorising fixture (1-layer BERT,
hidden 128, LoRA rank 16: D = 8708 trainable coordinates), record-level DP-SGD at a claimed
ε = 8, 6000 canaries, 20% IN / 1% OUT guesses: the same canaries (clients, sealed inclusion,
Poisson rate q), once as the Dirac coordinates privaudit uses, once as seeded random unit
directions u_i in R^D (a record whose clipped gradient is C·u_i; score = <u_i, released noisy
gradient sum>). Only the direction differs. Random directions are injected here by wrapping
``make_private`` (measurement code: privaudit itself only has Dirac canaries); they need the
m × D matrix in memory (4·D bytes per canary against 8 for a Dirac index) and interfere with
each other when m is not ≪ D.
Reported per direction: the f-DP and ε-DP lower bounds, the Gaussian estimate, and whether
noise scaled to 0.25 (accountant still claims σ) is caught.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from privaudit.audit.session import RunSession, prepare_run_data
from privaudit.audit.stages.dp_audit import dp_audit_result, plant_dp_audit
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.dp.gradient_canaries import CanaryObserver, GradientCanaryPlan
from privaudit.mechanisms.federated import record_dp
from privaudit.mechanisms.federated.train import train_federation
from privaudit.unlearning.ledger import dp_guarantee
from tests.attacks.test_gradient_canaries import _config

ESTIMATES = ("fdp_epsilon_lower_bound", "one_run_epsilon_lower_bound",
             "gaussian_epsilon_estimate")


class _Random:
    """Seeded random unit directions for the plan's canaries, injected and observed in place
    of the Dirac coordinates; ``scores`` collects <u_i, noisy sum> over every step."""

    def __init__(self, plan: GradientCanaryPlan, like: dict[str, torch.Tensor], seed: int):
        self.plan, self.names = plan, sorted(like)
        self.sizes = [like[n].numel() for n in self.names]
        g = torch.Generator().manual_seed(seed ^ 0x52414E44)
        u = torch.randn(len(plan.ids), sum(self.sizes), generator=g)
        self.u = u / u.norm(dim=1, keepdim=True)
        self.scores = np.zeros(len(plan.ids))
        self.included = plan.sealed.reveal(scores=np.zeros(len(plan.ids))).astype(bool)

    @property
    def memory_bytes(self) -> int:
        return self.u.numel() * self.u.element_size()

    def client_of(self, observe: Any) -> str:
        return next(c for c, o in self.plan.observed.items() if o is observe)

    def attach(self, run: Any, model: torch.nn.Module, client: str, seed: int) -> None:
        named = dict(model.named_parameters())
        params = [named[n] for n in self.names]
        mine = np.sort(np.concatenate(list(self.plan.positions[client].values())))
        inc = torch.as_tensor(mine[self.included[mine]], dtype=torch.long)
        gen = torch.Generator().manual_seed(seed)
        add_noise, hook, c = run.optimizer.add_noise, run.optimizer.step_hook, run.max_grad_norm

        def inject() -> None:
            hit = inc[torch.rand(inc.numel(), generator=gen) < run.sample_rate]
            if hit.numel():
                flat = c * self.u[hit].sum(0)
                for p, part in zip(params, flat.split(self.sizes), strict=True):
                    p.summed_grad.add_(part.view_as(p))
            add_noise()

        def observe(optimizer: Any) -> None:
            flat = torch.cat([p.grad.detach().reshape(-1) for p in params])
            self.scores[mine] += (self.u[mine] @ flat).double().numpy()
            hook(optimizer)

        run.optimizer.add_noise = inject
        run.optimizer.step_hook = observe


def _one(seed: int, *, random: bool, noise: float = 1.0) -> tuple[Any, int]:
    cfg = _config(seed)
    real = record_dp.make_private
    with tempfile.TemporaryDirectory() as d:
        data = prepare_run_data(cfg)
        session = RunSession.build(cfg, RunDir(Path(d) / "run").create(), data)
        plan = plant_dp_audit(cfg, data, like=session.initial_state)
        assert isinstance(plan, GradientCanaryPlan)
        dense = _Random(plan, dict(session.initial_state), seed) if random else None
        dirac = None if random else CanaryObserver(plan)

        def patched(*args: Any, **kwargs: Any) -> Any:
            observe = kwargs.get("observe")
            if dense is not None:
                kwargs["canaries"] = kwargs["observe"] = None
            run = real(*args, **kwargs)
            run.optimizer.noise_multiplier *= noise
            if dense is not None and observe is not None:
                dense.attach(run, args[0], dense.client_of(observe), kwargs["canary_seed"])
            return run

        record_dp.make_private = patched
        try:
            clients = {c: session.encode(r) for c, r in data.clients.items()}
            trained = train_federation(cfg.recipe, session.bundle, clients,
                                       session.encode(data.test),
                                       initial_state=session.initial_state, seed=cfg.seed,
                                       gradient_canaries=dirac if dirac else CanaryObserver(plan))
        finally:
            record_dp.make_private = real
        if dense is not None:
            scores, memory = dense.scores, dense.memory_bytes
        else:
            scores = np.zeros(len(plan.ids))
            for r in range(1, cfg.federation.rounds + 1):
                scores += dirac.pop_round(r)
            memory = plan.memory_bytes
        eps, delta = dp_guarantee(trained.privacy)
        return dp_audit_result(cfg, plan, scores, claimed_epsilon=eps, delta=delta), memory


def measure() -> dict[str, Any]:
    seeds = range(int(os.environ.get("PRIVAUDIT_BENCH_SEEDS", "3")))
    out: dict[str, Any] = {}
    for name, random in (("dirac", False), ("random", True)):
        honest = [_one(s, random=random) for s in seeds]
        out[name] = {k: [getattr(a, k) for a, _ in honest] for k in ESTIMATES}
        out[name]["memory_bytes"] = honest[0][1]
        out[name]["claimed"] = honest[0][0].claimed_epsilon
        out[name]["false_violations"] = sum(a.violation for a, _ in honest)
        weak = _one(0, random=random, noise=0.25)[0]
        out[name]["noise x0.25"] = (weak.violation, weak.epsilon_lower_bound)
    return out


def _print(m: dict[str, Any]) -> None:
    for name, r in m.items():
        cells = "; ".join(f"{k} " + ", ".join(f"{v:.2f}" for v in r[k]) for k in ESTIMATES)
        print(f"\n{name}: claimed ε {r['claimed']:.2f}; {cells}; honest violations "
              f"{r['false_violations']}; noise ×0.25 caught {r['noise x0.25'][0]} "
              f"(ε_LB {r['noise x0.25'][1]:.2f}); "
              f"canary memory {r['memory_bytes'] / 2**20:.2f} MiB")


def test_dirac_and_random_direction_canaries_compared_on_the_same_experiment(benchmark: Any
                                                                             ) -> None:
    m = measure()
    _print(m)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    assert m["dirac"]["false_violations"] == 0 and m["random"]["false_violations"] == 0


if __name__ == "__main__":
    _print(measure())
