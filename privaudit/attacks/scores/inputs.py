"""The arrays every attack reads: one model's signals, and the bundle one attack run gets.

Signals are computed once per (model, records) by ``attacks/signals.py``; attacks never touch
a model (STYLE 3, after privacy-meter's ``run_loss(target_signals)``). Definitions follow
Carlini et al. (S&P 2022) for φ, Zarifzadeh et al. (ICML 2024) for p_y, Shi et al. (ICLR 2024)
and Zhang et al. (ICLR 2025) for the per-token arrays.

>>> s = SignalSet(loss=[0.5, 1.0, 2.0], prob_true=[0.6, 0.37, 0.14])
>>> s.n, s.take([2, 0]).loss.tolist()
(3, [2.0, 0.5])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from privaudit.core.errors import DataError

_TOKEN_FIELDS = ("token_logprobs", "token_mu", "token_sigma")
_SCALAR_FIELDS = ("phi", "prob_true", "nbytes_text", "zlib_len")


def _vector(name: str, value: ArrayLike, problems: list[str]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1:
        problems.append(f"SignalSet.{name} must be 1-D; got shape {arr.shape}")
    elif not np.all(np.isfinite(arr)):
        problems.append(f"SignalSet.{name} has {int(np.sum(~np.isfinite(arr)))} non-finite values")
    return arr


@dataclass(frozen=True, eq=False, init=False)
class SignalSet:
    """Signals of ONE model on N examples (array-likes are converted to float64 arrays).

    - ``loss`` (N,): per-example loss in nats — cross-entropy for classification; for a causal
      LM the mean per-token negative log-likelihood (= log-perplexity).
    - ``phi`` (N,): confidence logit φ = log p_y − log Σ_{y'≠y} p_{y'} (LiRA's signal);
      for a causal LM the mean token log-likelihood, −loss.
    - ``prob_true`` (N,): p_y = softmax(f(x))_y in [0, 1] (RMIA's Pr(x|θ)).
    - ``token_logprobs``: N 1-D arrays of ℓ_t = log p(x_t | x_<t) (Min-K%).
    - ``token_mu``, ``token_sigma``: N 1-D arrays, same shapes as ``token_logprobs``: the mean
      Σ_v p_v log p_v and the standard deviation (not the variance) of log p over the vocabulary
      of the same next-token distribution (Min-K%++).
    - ``nbytes_text`` (N,): UTF-8 length of the text in bytes (for reporting compressibility).
    - ``zlib_len`` (N,): ``len(zlib.compress(text.encode("utf-8")))`` in bytes (zlib attack).
    """

    loss: np.ndarray
    phi: np.ndarray | None
    prob_true: np.ndarray | None
    token_logprobs: tuple[np.ndarray, ...] | None
    token_mu: tuple[np.ndarray, ...] | None
    token_sigma: tuple[np.ndarray, ...] | None
    nbytes_text: np.ndarray | None
    zlib_len: np.ndarray | None

    def __init__(
        self,
        loss: ArrayLike,
        phi: ArrayLike | None = None,
        prob_true: ArrayLike | None = None,
        token_logprobs: Sequence[ArrayLike] | None = None,
        token_mu: Sequence[ArrayLike] | None = None,
        token_sigma: Sequence[ArrayLike] | None = None,
        nbytes_text: ArrayLike | None = None,
        zlib_len: ArrayLike | None = None,
    ) -> None:
        problems: list[str] = []
        loss_arr = _vector("loss", loss, problems)
        object.__setattr__(self, "loss", loss_arr)
        n = loss_arr.shape[0] if loss_arr.ndim == 1 else -1
        given = {"phi": phi, "prob_true": prob_true, "nbytes_text": nbytes_text,
                 "zlib_len": zlib_len}
        for name in _SCALAR_FIELDS:
            value = given[name]
            object.__setattr__(self, name, None)
            if value is None:
                continue
            arr = _vector(name, value, problems)
            if arr.ndim == 1 and arr.shape[0] != n:
                problems.append(f"SignalSet.{name} has length {arr.shape[0]}; loss has {n}")
            object.__setattr__(self, name, arr)
        if self.prob_true is not None and np.any((self.prob_true < 0) | (self.prob_true > 1)):
            problems.append("SignalSet.prob_true must lie in [0, 1]")
        if self.zlib_len is not None and np.any(self.zlib_len <= 0):
            problems.append("SignalSet.zlib_len must be > 0")
        tokens = {"token_logprobs": token_logprobs, "token_mu": token_mu,
                  "token_sigma": token_sigma}
        self._check_tokens(tokens, n, problems)
        if problems:
            raise DataError("; ".join(problems))

    def _check_tokens(
        self, tokens: dict[str, Sequence[ArrayLike] | None], n: int, problems: list[str]
    ) -> None:
        shapes: list[tuple[int, ...]] | None = None
        for name in _TOKEN_FIELDS:
            seq = tokens[name]
            object.__setattr__(self, name, None)
            if seq is None:
                continue
            arrs = tuple(np.asarray(a, dtype=np.float64) for a in seq)
            object.__setattr__(self, name, arrs)
            if len(arrs) != n:
                problems.append(f"SignalSet.{name} has {len(arrs)} examples; loss has {n}")
                continue
            if any(a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) for a in arrs):
                problems.append(f"SignalSet.{name}: entries must be non-empty finite 1-D arrays")
                continue
            here = [a.shape for a in arrs]
            if shapes is not None and here != shapes:
                problems.append(f"SignalSet.{name}: per-example lengths differ from token_logprobs")
            shapes = shapes or here
        if self.token_sigma is not None and any(np.any(a < 0) for a in self.token_sigma):
            problems.append("SignalSet.token_sigma must be >= 0 (a standard deviation)")

    @property
    def n(self) -> int:
        """The number of examples N."""
        return int(self.loss.shape[0])

    def take(self, index: ArrayLike) -> SignalSet:
        """The signals of the examples at ``index`` (integer indices or a boolean mask)."""
        idx = np.arange(self.n)[np.asarray(index)]
        kwargs: dict[str, Any] = {"loss": self.loss[idx]}
        for name in _SCALAR_FIELDS:
            value = getattr(self, name)
            kwargs[name] = None if value is None else value[idx]
        for name in _TOKEN_FIELDS:
            seq = getattr(self, name)
            kwargs[name] = None if seq is None else [seq[i] for i in idx]
        return SignalSet(**kwargs)


def _mask(name: str, value: ArrayLike | None, shape: tuple[int, int], problems: list[str]) -> (
    np.ndarray | None
):
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.dtype != np.bool_:
        problems.append(f"AttackInputs.{name} must be a boolean array; got dtype {arr.dtype}")
    elif arr.shape != shape:
        problems.append(f"AttackInputs.{name} has shape {arr.shape}; want (n_refs, N) = {shape}")
    return arr


@dataclass(frozen=True, eq=False)
class AttackInputs:
    """Everything one attack run reads, for N target examples.

    - ``target``: the attacked model's signals on the N examples.
    - ``references``: reference (shadow) models' signals on the same N examples; may be empty.
    - ``keep`` (n_refs, N) bool: True where the example was IN that reference's training set.
      ``None`` means every reference is OUT for every example (offline references).
    - ``population_target`` / ``population_references``: the target's and the same references'
      signals on Z population points z drawn from the NON-member pool (RMIA's z); disjoint
      from the N audited examples. ``population_keep`` (n_refs, Z): as ``keep``; ``None`` =
      all OUT. :meth:`split_population` carves them out of known non-members.
    - ``reference_model``: one model trained on same-distribution data without the audited
      examples (the ``reference`` attack).
    """

    target: SignalSet
    references: Sequence[SignalSet] = ()
    keep: np.ndarray | None = None
    population_target: SignalSet | None = None
    population_references: Sequence[SignalSet] = ()
    population_keep: np.ndarray | None = None
    reference_model: SignalSet | None = None

    def __post_init__(self) -> None:
        problems: list[str] = []
        n, n_refs = self.target.n, len(self.references)
        object.__setattr__(self, "references", tuple(self.references))
        object.__setattr__(self, "population_references", tuple(self.population_references))
        for j, ref in enumerate(self.references):
            if ref.n != n:
                problems.append(f"AttackInputs.references[{j}] has {ref.n} examples; target {n}")
        object.__setattr__(self, "keep", _mask("keep", self.keep, (n_refs, n), problems))
        if self.reference_model is not None and self.reference_model.n != n:
            problems.append(f"AttackInputs.reference_model has {self.reference_model.n} examples; "
                            f"target has {n}")
        pop = self.population_target
        if pop is None and (self.population_references or self.population_keep is not None):
            problems.append("AttackInputs.population_references/keep need population_target")
        if pop is not None:
            if len(self.population_references) != n_refs:
                problems.append(f"AttackInputs.population_references has "
                                f"{len(self.population_references)} models; references {n_refs}")
            for j, ref in enumerate(self.population_references):
                if ref.n != pop.n:
                    problems.append(f"AttackInputs.population_references[{j}] has {ref.n} points; "
                                    f"population_target has {pop.n}")
            keep = _mask("population_keep", self.population_keep, (n_refs, pop.n), problems)
            object.__setattr__(self, "population_keep", keep)
        if problems:
            raise DataError("; ".join(problems))

    @property
    def n(self) -> int:
        """The number of audited (target) examples N."""
        return self.target.n

    def split_population(self, pool: ArrayLike) -> tuple[AttackInputs, np.ndarray]:
        """Move the target examples at ``pool`` (known non-members of the target) into the
        population; returns the new inputs and the indices of the examples still audited.

        >>> t = SignalSet(loss=[1.0, 2.0, 3.0, 4.0])
        >>> new, kept = AttackInputs(target=t).split_population([1, 3])
        >>> new.target.loss.tolist(), new.population_target.loss.tolist(), kept.tolist()
        ([1.0, 3.0], [2.0, 4.0], [0, 2])
        """
        if self.population_target is not None:
            raise DataError("AttackInputs.split_population: a population is already set")
        in_pool = np.zeros(self.n, dtype=bool)
        in_pool[np.arange(self.n)[np.asarray(pool)]] = True
        kept = np.flatnonzero(~in_pool)
        new = AttackInputs(
            target=self.target.take(kept),
            references=[r.take(kept) for r in self.references],
            keep=None if self.keep is None else self.keep[:, kept],
            population_target=self.target.take(in_pool),
            population_references=[r.take(in_pool) for r in self.references],
            population_keep=None if self.keep is None else self.keep[:, in_pool],
            reference_model=None if self.reference_model is None
            else self.reference_model.take(kept),
        )
        return new, kept
