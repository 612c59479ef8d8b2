"""The privacy of a training run: checks before training, the wrappers the config asks for,
and what the run spent (accountants, secure-aggregation logs).

:func:`privacy_problems` collects every problem of ``privacy.dp`` and ``secure_aggregation``
for this federation (client sizes, schedule, model) before any training, including whether a
target ε is reachable; :func:`build_recipe` composes the client update and the strategy:

=================  ===============================  =========================================
``privacy.dp``     client update                    strategy
=================  ===============================  =========================================
none               client_update                    FedAvg [→ SecureAggregation]
record             RecordLevelDP (DP-SGD)           FedAvg [→ SecureAggregation]
client             ClippedClient(client_update)     FedAvg [→ SecureAggregation] → DPFedAvg
=================  ===============================  =========================================

(an arrow reads "wrapped by"). :class:`PrivacyOutcome` is what the report and a resumed run
need: the accountants with their whole history, and every round's secure-aggregation log.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sized
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from privaudit.core.errors import ConfigError, PrivacyBudgetError, SecureAggregationError
from privaudit.mechanisms.dp.accounting import ClientAccountant
from privaudit.mechanisms.dp.calibration import client_noise_multiplier, record_noise_multipliers
from privaudit.mechanisms.dp.card import DPCard, build_dp_card
from privaudit.mechanisms.dp.gradient_canaries import CanaryObserver
from privaudit.mechanisms.dp.record_level import PRNG_NOTE
from privaudit.mechanisms.dp.validate import check_dp_config, check_model_for_opacus
from privaudit.mechanisms.federated.canary_client import CanaryClient
from privaudit.mechanisms.federated.client import ClientFn, client_update
from privaudit.mechanisms.federated.client_dp import ClippedClient, DPFedAvg
from privaudit.mechanisms.federated.recipe import TrainingRecipe
from privaudit.mechanisms.federated.record_dp import RecordLevelDP
from privaudit.mechanisms.federated.secure import Channel, SecureAggregation, SecureRoundLog
from privaudit.mechanisms.federated.strategy import FedAvg, Strategy
from privaudit.mechanisms.secagg import (
    KeyHolder,
    SecureAggregationReport,
    check_params,
    validate_params,
)
from privaudit.mechanisms.secagg import build_report as build_secagg_report

#: the accountant of the whole federation in client mode (DP-FedAvg)
FEDERATION = "federation"
_SIGMA_CACHE: dict[str, dict[str, float]] = {}
#: said once per run by the train stage (record-level DP-SGD's ``make_private`` also warns)
PRNG_WARNING = f"privacy.dp: {PRNG_NOTE}"


def noise_multipliers(recipe: TrainingRecipe, client_sizes: Mapping[str, int]) -> dict[str, float]:
    """σ per client (record mode) or z under the key ``federation`` (client mode), for the
    WHOLE schedule; calibrated to ``target_epsilon`` when given. Raises PrivacyBudgetError
    naming the field when the target cannot be reached."""
    dp, fed = recipe.dp, recipe.training_federation()
    if dp.mode == "none":
        return {}
    key = json.dumps(
        [dp.model_dump(mode="json"), fed.model_dump(mode="json"), sorted(client_sizes.items())]
    )
    if key not in _SIGMA_CACHE:
        if dp.mode == "record":
            ids = list(client_sizes)
            sigmas = record_noise_multipliers(
                dp,
                client_sizes=[client_sizes[c] for c in ids],
                rounds=fed.rounds,
                local_epochs=fed.local_epochs,
                batch_size=fed.batch_size,
            )
            _SIGMA_CACHE[key] = dict(zip(ids, sigmas, strict=True))
        else:
            _SIGMA_CACHE[key] = {FEDERATION: client_noise_multiplier(dp, rounds=fed.rounds)}
    return dict(_SIGMA_CACHE[key])


def privacy_problems(
    recipe: TrainingRecipe,
    *,
    client_sizes: Mapping[str, int],
    model: nn.Module | None = None,
    noise: Mapping[str, float] | None = None,
) -> list[str]:
    """Every problem of the DP and secure-aggregation settings for this federation, as
    ``privacy.dp.<field>: …`` / ``secure_aggregation.<field>: …`` (empty when all is well).
    ``noise``: σ (or z) fixed by the caller, checked for coverage instead of calibrated."""
    dp, fed, he = recipe.dp, recipe.training_federation(), recipe.secure_aggregation
    problems = check_dp_config(
        dp,
        client_sizes=list(client_sizes.values()),
        rounds=fed.rounds,
        local_epochs=fed.local_epochs,
        batch_size=fed.batch_size,
    )
    if dp.mode == "record" and model is not None:
        problems += check_model_for_opacus(model, grad_sample_mode=dp.grad_sample_mode)
    if dp.mode != "none" and not problems and noise is not None:
        needed = list(client_sizes) if dp.mode == "record" else [FEDERATION]
        missing = [c for c in needed if not noise.get(c, 0) > 0]
        if missing:
            problems.append(f"privacy.dp.noise_multiplier: no fixed noise for {missing} "
                            f"(got {dict(noise)})")
    elif dp.mode != "none" and not problems:
        try:
            noise_multipliers(recipe, client_sizes)
        except PrivacyBudgetError as exc:
            problems += exc.problems
    if he.enabled:
        problems += check_params(he)
        if he.min_clients > len(client_sizes):
            problems.append(
                f"secure_aggregation.min_clients: must be <= federation.clients "
                f"(= {len(client_sizes)}), or every round fails (got {he.min_clients})"
            )
    return problems


def check_privacy(
    recipe: TrainingRecipe,
    *,
    client_sizes: Mapping[str, int],
    model: nn.Module | None = None,
    noise: Mapping[str, float] | None = None,
) -> None:
    """Raise one error listing every problem of :func:`privacy_problems` (exit 2)."""
    problems = privacy_problems(recipe, client_sizes=client_sizes, model=model, noise=noise)
    if problems:
        raise privacy_error(problems)


def privacy_error(problems: list[str]) -> ConfigError:
    """One error for ``problems`` of the privacy settings: a PrivacyBudgetError when all are
    ``privacy.dp``'s, a SecureAggregationError when all are ``secure_aggregation``'s."""
    he = [p for p in problems if p.startswith("secure_aggregation.")]
    kind: type[ConfigError] = ConfigError
    if not he:
        kind = PrivacyBudgetError
    elif len(he) == len(problems):
        kind = SecureAggregationError
    return kind(f"{len(problems)} problem(s) in the privacy settings: " + "; ".join(problems),
                problems)


@dataclass
class PrivacyOutcome:
    """What a run's privacy mechanisms spent and measured. ``accountants``: one per client
    (record mode) or one under ``federation`` (client mode), each with its whole history."""

    dp_mode: str = "none"
    delta: float | None = None
    noise_multipliers: dict[str, float] = field(default_factory=dict)
    accountants: dict[str, ClientAccountant] = field(default_factory=dict)
    secure_rounds: list[SecureRoundLog] = field(default_factory=list)
    secure_insecure: bool = False

    def epsilon(self) -> float | None:
        """The federation's ε so far (max over clients in record mode), None without DP."""
        if self.dp_mode == "none" or self.delta is None:
            return None
        return max((a.epsilon(self.delta) for a in self.accountants.values()), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dp_mode": self.dp_mode,
            "delta": self.delta,
            "noise_multipliers": self.noise_multipliers,
            "accountants": {c: a.to_dict() for c, a in self.accountants.items()},
            "secure_aggregation": {
                "insecure": self.secure_insecure,
                "rounds": [r.model_dump(mode="json") for r in self.secure_rounds],
            },
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> PrivacyOutcome:
        secure = state.get("secure_aggregation", {})
        return cls(
            dp_mode=str(state.get("dp_mode", "none")),
            delta=state.get("delta"),
            noise_multipliers={c: float(s) for c, s in state.get("noise_multipliers", {}).items()},
            accountants={
                c: ClientAccountant.from_dict(a) for c, a in state.get("accountants", {}).items()
            },
            secure_rounds=[SecureRoundLog.model_validate(r) for r in secure.get("rounds", [])],
            secure_insecure=bool(secure.get("insecure", False)),
        )


@dataclass
class PrivacyRecipe:
    """The client update and the strategy one run trains with, and its running outcome."""

    client_fn: ClientFn
    strategy: Strategy
    outcome: PrivacyOutcome
    key_holder: KeyHolder | None = None


def build_recipe(
    recipe: TrainingRecipe,
    *,
    client_sizes: Mapping[str, int],
    adapter_config_hash: str,
    seed: int,
    model: nn.Module | None = None,
    resume: PrivacyOutcome | None = None,
    channel: Channel | None = None,
    noise: Mapping[str, float] | None = None,
    gradient_canaries: CanaryObserver | None = None,
) -> PrivacyRecipe:
    """Check the settings (raises before any training), calibrate, compose the wrappers.

    ``resume``: the outcome persisted by an interrupted run; its accountants continue.
    ``channel``: what carries encrypted updates to the server (tests tamper with it).
    ``noise``: σ per client (record mode) or z under ``federation`` (client mode) fixed by
    the caller instead of calibrated: retraining after an erasure reuses the run's noise.
    ``gradient_canaries``: a DP audit's gradient canaries and their observer (record DP).
    """
    check_privacy(recipe, client_sizes=client_sizes, model=model, noise=noise)
    dp, he = recipe.dp, recipe.secure_aggregation
    if dp.mode == "none":
        sigmas: dict[str, float] = {}
    elif noise is not None:
        keys = list(client_sizes) if dp.mode == "record" else [FEDERATION]
        sigmas = {c: float(noise[c]) for c in keys}
    else:
        sigmas = noise_multipliers(recipe, client_sizes)
    previous = resume.accountants if resume is not None else {}
    outcome = PrivacyOutcome(dp_mode=dp.mode, delta=dp.delta, noise_multipliers=sigmas)
    if resume is not None:
        outcome.secure_rounds = list(resume.secure_rounds)
    strategy: Strategy = FedAvg(weighting=recipe.federation.weighting)
    holder = None
    if he.enabled and he.masking == "pairwise":
        from privaudit.mechanisms.federated.secure_masked import PairwiseMasking

        with warnings.catch_warnings():
            warnings.simplefilter("always")  # min_clients < 3 allowed: warned every run
            outcome.secure_insecure = validate_params(he).insecure
        # a channel here carries MaskedUpdate values (tests drop or replay them)
        strategy = PairwiseMasking(strategy, he, seed=seed, channel=channel)  # type: ignore[arg-type]
    elif he.enabled:
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # an allowed insecure setting warns every run
            holder = KeyHolder.generate(he)
        outcome.secure_insecure = holder.verdict.insecure
        strategy = SecureAggregation(
            strategy, holder, adapter_config_hash=adapter_config_hash, channel=channel
        )
    client_fn: ClientFn = client_update
    if dp.mode == "record":
        client_fn = RecordLevelDP(dp, noise_multipliers=sigmas, canaries=gradient_canaries)
        outcome.accountants = {
            c: previous.get(c) or ClientAccountant(dp.accountant) for c in client_sizes
        }
    elif dp.mode == "client":
        accountant = previous.get(FEDERATION) or ClientAccountant(dp.accountant)
        outcome.accountants = {FEDERATION: accountant}
        # canary clients of a DP audit (if any) send their direction; the rest train
        client_fn = ClippedClient(CanaryClient(client_update, clip_norm=dp.clip_norm),
                                  clip_norm=dp.clip_norm)
        strategy = DPFedAvg(
            strategy,
            clip_norm=dp.clip_norm,
            noise_multiplier=sigmas[FEDERATION],
            sample_rate=dp.client_sample_rate,
            n_clients=len(client_sizes),
            accountant=accountant,
            seed=seed,
        )
    return PrivacyRecipe(
        client_fn=client_fn, strategy=strategy, outcome=outcome, key_holder=holder
    )


def dp_card(
    recipe: TrainingRecipe,
    outcome: PrivacyOutcome,
    *,
    client_sizes: Mapping[str, int],
    max_records_per_subject: int,
    max_clients_per_subject: int | None = None,
) -> DPCard:
    """``privacy.dp`` of the report from the run's accountants (a bare card without DP)."""
    if recipe.dp.mode == "none" or not outcome.accountants:
        return DPCard(enabled=False)
    return build_dp_card(
        recipe.dp,
        outcome.accountants,
        client_sizes,
        max_records_per_subject,
        max_clients_per_subject=max_clients_per_subject,
    )


def secure_aggregation_report(
    recipe: TrainingRecipe, outcome: PrivacyOutcome
) -> SecureAggregationReport:
    """``secure_aggregation`` of the report: the parameters, the largest expansion ratio and
    decryption error measured over the run's rounds, every rejected update by name."""
    rounds = outcome.secure_rounds
    errors = [r.max_abs_error for r in rounds if r.max_abs_error is not None]
    return build_secagg_report(
        recipe.secure_aggregation,
        expansion_ratio=max((r.expansion_ratio for r in rounds), default=None),
        max_abs_error=max(errors, default=None),
        rejections=[x for r in rounds for x in r.rejections],
        insecure=outcome.secure_insecure,
        quantization_error_bound=max((r.quantization_error_bound for r in rounds
                                      if r.quantization_error_bound is not None), default=None),
        dropped=[f"round {r.round}: {c}" for r in rounds for c in r.dropped],
    )


def client_sizes_of(clients: Mapping[str, Sized]) -> dict[str, int]:
    """Records per client, in the clients' order."""
    return {c: len(d) for c, d in clients.items()}
