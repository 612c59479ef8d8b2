"""Noise calibrated to a target ε over the WHOLE schedule (all rounds × local steps).

Calibrating per round, or per local epoch, and then training R rounds spends about R times
the budget; the schedule given here must be every noisy step the client will take.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence

import numpy as np
from opacus.accountants.utils import get_noise_multiplier

from privaudit.core.errors import PrivacyBudgetError
from privaudit.mechanisms.dp.accounting import ACCOUNTANTS, ClientAccountant
from privaudit.mechanisms.dp.config import DPConfig

#: calibrated ε must lie in [(1 - CALIBRATION_SLACK) · target, target]
CALIBRATION_SLACK = 0.05


def poisson_schedule(
    *, n_records: int, batch_size: int, local_epochs: int, rounds: int = 1
) -> tuple[float, int]:
    """(sample rate q, total steps) of DP-SGD with Poisson sampling, as Opacus'
    ``DPDataLoader.from_data_loader`` runs it on ``DataLoader(batch_size=B)``: an epoch is
    ⌈N/B⌉ steps at q = 1/⌈N/B⌉ (expected batch N·q ≤ B). Opacus' sampler takes int(1/q)
    steps, one fewer for some N/B (1/(1/93) < 93 in floating point), so the step count here
    is an upper bound: calibrating with it is conservative, and the accountant records the
    steps actually taken.

    >>> poisson_schedule(n_records=100, batch_size=32, local_epochs=2, rounds=5)
    (0.25, 40)
    """
    if n_records < 1 or batch_size < 1 or local_epochs < 1 or rounds < 1:
        raise PrivacyBudgetError(
            "privacy.dp.sample_rate: needs n_records, batch_size, local_epochs, rounds >= 1 "
            f"(got {n_records}, {batch_size}, {local_epochs}, {rounds})"
        )
    steps_per_epoch = math.ceil(n_records / batch_size)
    return 1.0 / steps_per_epoch, steps_per_epoch * local_epochs * rounds


def calibrate_noise(
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = "prv",
) -> float:
    """The smallest noise multiplier σ (to within the search tolerance) such that ``steps``
    Poisson-sampled Gaussian steps at rate ``sample_rate`` spend at most ``target_epsilon``;
    the result is re-checked with a fresh accountant to lie within 5% below the target.

    >>> sigma = calibrate_noise(target_epsilon=2.0, delta=1e-5, sample_rate=0.1, steps=100,
    ...                         accountant="rdp")
    >>> acc = ClientAccountant("rdp")
    >>> acc.step(noise_multiplier=sigma, sample_rate=0.1, num_steps=100)
    >>> 1.9 <= acc.epsilon(1e-5) <= 2.0
    True
    """
    problems = []
    if not target_epsilon > 0:
        problems.append(f"privacy.dp.target_epsilon: must be > 0 (got {target_epsilon})")
    if not 0 < delta < 1:
        problems.append(f"privacy.dp.delta: must be in (0, 1) (got {delta})")
    if not 0 < sample_rate <= 1:
        problems.append(f"privacy.dp.sample_rate: must be in (0, 1] (got {sample_rate})")
    if steps < 1:
        problems.append(f"privacy.dp.steps: the schedule must have >= 1 step (got {steps})")
    if accountant not in ACCOUNTANTS:
        problems.append(
            f"privacy.dp.accountant: must be one of {', '.join(ACCOUNTANTS)} (got {accountant!r})"
        )
    if problems:
        raise PrivacyBudgetError("; ".join(problems), problems)

    check = ClientAccountant(accountant)  # warns for gdp
    try:
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
            warnings.filterwarnings("ignore", message="GDP accounting is experimental")
            sigma = get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=accountant,
                epsilon_tolerance=CALIBRATION_SLACK * target_epsilon / 4,
            )
        check.step(noise_multiplier=sigma, sample_rate=sample_rate, num_steps=steps)
        achieved = check.epsilon(delta)
    except (ValueError, ArithmeticError) as exc:
        raise PrivacyBudgetError(
            f"privacy.dp.target_epsilon: unreachable with {steps} steps at sample rate "
            f"{sample_rate:.4g} and δ = {delta:.3g} ({exc}) (got {target_epsilon})"
        ) from exc
    if not (1 - CALIBRATION_SLACK) * target_epsilon <= achieved <= target_epsilon:
        raise PrivacyBudgetError(
            f"privacy.dp.target_epsilon: calibration found σ = {sigma:.4g} giving ε = "
            f"{achieved:.4g}, not within {CALIBRATION_SLACK:.0%} below the target "
            f"(got {target_epsilon})"
        )
    return float(sigma)


def record_noise_multipliers(
    cfg: DPConfig,
    *,
    client_sizes: Sequence[int],
    rounds: int,
    local_epochs: int,
    batch_size: int,
) -> list[float]:
    """σ of each client in record mode, before training: ``cfg.noise_multiplier`` for all,
    or each client's own σ calibrated to ``cfg.target_epsilon`` over its whole schedule
    (``rounds`` × ``local_epochs`` epochs of ⌈N/B⌉ steps), so that every client — and thus
    the federation, the max over clients — spends at most the target. Raises one
    PrivacyBudgetError naming every client whose target is unreachable.
    Call after :func:`~privaudit.mechanisms.dp.validate.check_dp_config` found no problem.
    """
    if cfg.target_epsilon is None:
        if cfg.noise_multiplier is None:
            raise PrivacyBudgetError(
                "privacy.dp.noise_multiplier: give noise_multiplier or target_epsilon (got neither)"
            )
        return [float(cfg.noise_multiplier)] * len(client_sizes)
    if cfg.delta is None:
        raise PrivacyBudgetError("privacy.dp.delta: required with target_epsilon (got None)")
    sigmas, problems, memo = [], [], {}
    for i, n in enumerate(client_sizes):
        q, steps = poisson_schedule(
            n_records=n, batch_size=batch_size, local_epochs=local_epochs, rounds=rounds
        )
        try:
            if (q, steps) not in memo:
                memo[q, steps] = calibrate_noise(
                    target_epsilon=cfg.target_epsilon,
                    delta=cfg.delta,
                    sample_rate=q,
                    steps=steps,
                    accountant=cfg.accountant,
                )
            sigmas.append(memo[q, steps])
        except PrivacyBudgetError as exc:
            problems.append(f"client {i}: {exc}")
    if problems:
        raise PrivacyBudgetError("; ".join(problems), problems)
    return sigmas


def client_noise_multiplier(cfg: DPConfig, *, rounds: int) -> float:
    """z of DP-FedAvg (client mode): ``cfg.noise_multiplier``, or calibrated so that
    ``rounds`` rounds at client sample rate q spend at most ``cfg.target_epsilon``."""
    if cfg.target_epsilon is None:
        if cfg.noise_multiplier is None:
            raise PrivacyBudgetError(
                "privacy.dp.noise_multiplier: give noise_multiplier or target_epsilon (got neither)"
            )
        return float(cfg.noise_multiplier)
    if cfg.delta is None:
        raise PrivacyBudgetError("privacy.dp.delta: required with target_epsilon (got None)")
    return calibrate_noise(
        target_epsilon=cfg.target_epsilon,
        delta=cfg.delta,
        sample_rate=cfg.client_sample_rate,
        steps=rounds,
        accountant=cfg.accountant,
    )


def calibrate_schedule(
    *,
    target_epsilon: float,
    delta: float,
    schedule: Sequence[tuple[float, int]],
    accountant: str = "prv",
) -> float:
    """The smallest σ (to within 5% of the target ε) such that the composition of every
    (sample rate, steps) phase of ``schedule`` at that σ spends at most ``target_epsilon``.

    For schedules whose sample rate changes between phases — a SISA shard, whose first
    slice's records are trained again with every later slice at a lower rate — where
    :func:`calibrate_noise` covers one rate. Bisection on σ with the run's accountant.

    >>> sigma = calibrate_schedule(target_epsilon=2.0, delta=1e-5,
    ...                            schedule=[(1.0, 2), (0.5, 4)], accountant="rdp")
    >>> acc = ClientAccountant("rdp")
    >>> acc.step(noise_multiplier=sigma, sample_rate=1.0, num_steps=2)
    >>> acc.step(noise_multiplier=sigma, sample_rate=0.5, num_steps=4)
    >>> 1.9 <= acc.epsilon(1e-5) <= 2.0
    True
    """
    return _calibrate_schedule(float(target_epsilon), float(delta),
                               tuple((float(q), int(s)) for q, s in schedule if s > 0),
                               accountant)


@functools.lru_cache(maxsize=256)
def _calibrate_schedule(
    target_epsilon: float, delta: float, phases: tuple[tuple[float, int], ...], accountant: str
) -> float:
    """:func:`calibrate_schedule` on a normalised, hashable schedule (cached: a SISA shard's σ
    is asked for at training, at every erasure and for the ensemble's ε)."""
    if not phases or any(not 0 < q <= 1 for q, _ in phases):
        raise PrivacyBudgetError(
            f"privacy.dp.sample_rate: a schedule of (rate in (0, 1], steps >= 1) phases is "
            f"needed (got {list(phases)})"
        )
    if len({q for q, _ in phases}) == 1:
        return calibrate_noise(target_epsilon=target_epsilon, delta=delta,
                               sample_rate=phases[0][0], steps=sum(s for _, s in phases),
                               accountant=accountant)

    def spent(sigma: float) -> float:
        return schedule_epsilon(sigma, phases, delta=delta, accountant=accountant)

    lo, hi = 0.1, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while spent(hi) > target_epsilon:
            lo, hi = hi, hi * 2
            if hi > 1e4:
                raise PrivacyBudgetError(
                    f"privacy.dp.target_epsilon: unreachable for the schedule {phases} "
                    f"at δ = {delta:.3g} (got {target_epsilon})"
                )
        for _ in range(60):
            mid = (lo + hi) / 2
            eps = spent(mid)
            if eps > target_epsilon:
                lo = mid
            else:
                hi = mid
                if eps >= (1 - CALIBRATION_SLACK / 2) * target_epsilon:
                    break
    return float(hi)


def schedule_epsilon(
    sigma: float, schedule: Sequence[tuple[float, int]], *, delta: float, accountant: str
) -> float:
    """ε spent by the (sample rate, steps) phases of ``schedule`` at noise σ, composed."""
    acc = ClientAccountant(accountant)
    for q, steps in schedule:
        if steps > 0:
            acc.step(noise_multiplier=sigma, sample_rate=q, num_steps=steps)
    return acc.epsilon(delta)
