"""Privacy accounting that lasts for the whole federation.

Each client keeps ONE :class:`ClientAccountant` for the whole run: the (noise multiplier,
sample rate, steps) of every round it took part in. A fresh Opacus ``PrivacyEngine`` per round
would start from an empty history and under-report ε; here the engine's own accountant is
never consulted, the persistent one is the source of truth. Client data sets are disjoint and
the released models are post-processing, so the federation's record-level ε is the maximum
over clients (:func:`federation_epsilon`). In client mode (DP-FedAvg) one accountant of the
same class accounts the federation: one step per round at the client sample rate.

The maths is Opacus': ``prv`` (Gopi et al. 2021, default), ``rdp`` (Mironov 2017) or ``gdp``
(Dong et al. 2019; approximate, can under-report ε, so it warns).

Opacus' PRV accountant sizes its domain with an RDP bound at every ε it computes, and that
RDP of the subsampled Gaussian (``opacus.accountants.analysis.rdp._compute_rdp(q, σ, α)``, a
pure function, evaluated in Python for about a hundred orders α) is most of the cost of an ε:
one run asks for ε per round and per client at the same (q, σ). :func:`_memoize_rdp`
memoizes it (identical values; a PRV ε costs ~0.02 s instead of ~0.3 s once (q, σ) was seen,
and a calibration about half as long).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from opacus.accountants import create_accountant

from privaudit.core.errors import InternalError, PrivacyBudgetError

ACCOUNTANTS = ("prv", "rdp", "gdp")
_FORMAT = 1


def _memoize_rdp() -> None:
    """Memoize Opacus' per-order RDP of the subsampled Gaussian where Opacus looks it up (its
    RDP analysis and the PRV module that imports it); a no-op if done or if it moved."""
    from opacus.accountants.analysis import rdp
    from opacus.accountants.analysis.prv import prvs

    original = getattr(rdp, "_compute_rdp", None)
    if original is None or hasattr(original, "cache_info"):
        return
    memo = functools.lru_cache(maxsize=1 << 16)(original)

    @functools.wraps(original)
    def cached(q: Any, sigma: Any, alpha: Any) -> Any:
        try:
            return memo(q, sigma, alpha)
        except TypeError:  # an unhashable argument: computed as Opacus would
            return original(q, sigma, alpha)

    cached.cache_info = memo.cache_info  # type: ignore[attr-defined]
    rdp._compute_rdp = cached
    if getattr(prvs, "_compute_rdp", None) is original:
        prvs._compute_rdp = cached


_memoize_rdp()


@dataclass(frozen=True)
class RoundEntry:
    """One round of one client: ``num_steps`` noisy steps at (σ, q). ``round_index`` is the
    federation round (clients that are not sampled skip rounds)."""

    noise_multiplier: float
    sample_rate: float
    num_steps: int
    round_index: int


def _merged(entries: list[RoundEntry]) -> list[tuple[float, float, int]]:
    """The history an Opacus accountant stepped once per step would hold: consecutive
    entries with the same (σ, q) merged, empty rounds dropped."""
    history: list[tuple[float, float, int]] = []
    for e in entries:
        if e.num_steps == 0:
            continue
        if history and history[-1][:2] == (e.noise_multiplier, e.sample_rate):
            sigma, q, n = history[-1]
            history[-1] = (sigma, q, n + e.num_steps)
        else:
            history.append((e.noise_multiplier, e.sample_rate, e.num_steps))
    return history


@functools.lru_cache(maxsize=4096)
def _epsilon_of_history(
    mechanism: str, history: tuple[tuple[float, float, int], ...], delta: float
) -> float:
    """ε of an Opacus accountant holding ``history``: a pure function of its arguments,
    cached, since clients of one federation often share a history (PRV takes ~0.3 s)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus' own gdp warning; ClientAccountant warns
        accountant = create_accountant(mechanism=mechanism)
    accountant.history = list(history)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        if mechanism == "prv":  # its domain bound uses RDP internally; q = 1 logs 0
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        return float(accountant.get_epsilon(delta=delta))


class ClientAccountant:
    """The persistent accountant of one client (or of the federation in client mode).

    Call :meth:`step` once per round with the steps the client actually took;
    :meth:`epsilon` is the guarantee over every round so far.

    >>> acc = ClientAccountant("rdp")
    >>> acc.step(noise_multiplier=1.0, sample_rate=1.0, num_steps=50)
    >>> round(acc.epsilon(1e-3), 1)
    49.4
    """

    def __init__(self, mechanism: str = "prv") -> None:
        if mechanism not in ACCOUNTANTS:
            raise PrivacyBudgetError(
                f"privacy.dp.accountant: must be one of {', '.join(ACCOUNTANTS)} "
                f"(got {mechanism!r})"
            )
        if mechanism == "gdp":
            warnings.warn(
                "privacy.dp.accountant: gdp is a CLT approximation and can under-report ε; "
                "use prv or rdp for a guarantee",
                UserWarning,
                stacklevel=2,
            )
        self.mechanism = mechanism
        self._entries: list[RoundEntry] = []
        self._trace: dict[float, list[float]] = {}

    @property
    def rounds(self) -> list[RoundEntry]:
        return list(self._entries)

    @property
    def history(self) -> list[tuple[float, float, int]]:
        """(σ, q, steps) as an Opacus accountant of the same class would hold it."""
        return _merged(self._entries)

    @property
    def total_steps(self) -> int:
        return sum(e.num_steps for e in self._entries)

    def step(
        self,
        *,
        noise_multiplier: float,
        sample_rate: float,
        num_steps: int,
        round_index: int | None = None,
    ) -> None:
        """Record one round: ``num_steps`` Poisson-sampled noisy steps at (σ, q)."""
        if not noise_multiplier > 0:
            raise PrivacyBudgetError(
                f"privacy.dp.noise_multiplier: must be > 0 to be accounted (got {noise_multiplier})"
            )
        if not 0 < sample_rate <= 1:
            raise PrivacyBudgetError(
                f"privacy.dp.sample_rate: must be in (0, 1] (got {sample_rate})"
            )
        if num_steps < 0:
            raise InternalError(f"num_steps must be >= 0 (got {num_steps})")
        entry = RoundEntry(
            float(noise_multiplier),
            float(sample_rate),
            int(num_steps),
            len(self._entries) if round_index is None else int(round_index),
        )
        if self.mechanism == "gdp" and len(_merged([*self._entries, entry])) > 1:
            raise PrivacyBudgetError(
                "privacy.dp.accountant: gdp needs one noise multiplier and sample rate for the "
                f"whole run; use prv or rdp (got {self.history[0][:2]} then "
                f"{entry.noise_multiplier, entry.sample_rate})"
            )
        self._entries.append(entry)

    def _epsilon_of(self, entries: list[RoundEntry], delta: float) -> float:
        history = _merged(entries)
        if not history:
            return 0.0
        return _epsilon_of_history(self.mechanism, tuple(history), delta)

    def epsilon(self, delta: float) -> float:
        """ε spent over every round so far, at ``delta``."""
        trace = self.epsilon_per_round(delta)
        return trace[-1] if trace else 0.0

    def epsilon_per_round(self, delta: float) -> list[float]:
        """ε after each recorded round (cached per δ; for plotting the budget spent)."""
        if not 0 < delta < 1:
            raise PrivacyBudgetError(f"privacy.dp.delta: must be in (0, 1) (got {delta})")
        trace = self._trace.setdefault(float(delta), [])
        for n in range(len(trace) + 1, len(self._entries) + 1):
            trace.append(self._epsilon_of(self._entries[:n], delta))
        return list(trace)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; :meth:`from_dict` continues the same accounting."""
        return {
            "format": _FORMAT,
            "mechanism": self.mechanism,
            "rounds": [
                [e.noise_multiplier, e.sample_rate, e.num_steps, e.round_index]
                for e in self._entries
            ],
            "epsilon_trace": [[d, list(t)] for d, t in self._trace.items()],
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ClientAccountant:
        if state.get("format") != _FORMAT:
            raise PrivacyBudgetError(
                f"privacy.dp: accountant state of format {state.get('format')!r} "
                f"cannot be resumed (expected {_FORMAT})"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # warned when the run started
            acc = cls(str(state["mechanism"]))
        for sigma, q, steps, r in state["rounds"]:
            acc.step(noise_multiplier=sigma, sample_rate=q, num_steps=steps, round_index=r)
        for d, t in state.get("epsilon_trace", []):
            acc._trace[float(d)] = [float(x) for x in t][: len(acc._entries)]
        return acc


def federation_epsilon(accountants: Mapping[str, ClientAccountant], delta: float) -> float:
    """Record-level ε of the federation: the max over clients (disjoint data)."""
    if not accountants:
        raise InternalError("federation_epsilon needs at least one client accountant")
    return max(acc.epsilon(delta) for acc in accountants.values())


def federation_epsilon_per_round(
    accountants: Mapping[str, ClientAccountant], delta: float
) -> list[float]:
    """Federation ε after each federation round: per round, the max over clients of the ε
    each had spent by the end of that round."""
    last = max((e.round_index for a in accountants.values() for e in a.rounds), default=-1)
    out = [0.0] * (last + 1)
    for acc in accountants.values():
        trace, entries = acc.epsilon_per_round(delta), acc.rounds
        for k, entry in enumerate(entries):
            end = entries[k + 1].round_index if k + 1 < len(entries) else last + 1
            for r in range(entry.round_index, end):
                out[r] = max(out[r], trace[k])
    return out


def group_privacy(epsilon: float, delta: float, k: int) -> tuple[float, float]:
    """(ε, δ)-DP for one record gives (kε, k·e^{(k−1)ε}·δ) for a group of k records
    (the group-privacy bound for approximate DP; Dwork & Roth 2014, §2.3). δ is capped at 1;
    a vacuous δ warns.

    >>> eps, d = group_privacy(1.0, 1e-5, 2)
    >>> eps, round(d, 10)
    (2.0, 5.43656e-05)
    """
    if k < 1:
        raise PrivacyBudgetError(f"privacy.dp.max_records_per_subject: must be >= 1 (got {k})")
    vacuous = delta > 0 and math.log(k) + (k - 1) * epsilon + math.log(delta) >= 0
    group_delta = 1.0 if vacuous else min(1.0, k * math.exp((k - 1) * epsilon) * delta)
    if group_delta >= 1.0:
        warnings.warn(
            f"group privacy for a group of {k} gives δ ≥ 1 (ε = {epsilon:.3g}): "
            "the subject-level guarantee is vacuous",
            UserWarning,
            stacklevel=2,
        )
    return k * epsilon, group_delta
