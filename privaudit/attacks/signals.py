"""Per-example signals of one model on one set of records, computed once and cached.

Attacks never touch models: this module turns (model, records) into a :class:`SignalSet` of
arrays, batched, without gradients. Results are cached in the run directory as
``signals/<model sha256[:16]>-<records sha256[:16]>.npz``, so the same model on the same
records is never evaluated twice (also across stages and resumed runs).

Classification: loss (cross-entropy), the confidence logit φ = log p_y − log Σ_{y'≠y} p_{y'}
computed stably from log-softmax, and p_y. Causal LM: loss (mean token NLL), per-token
log-probabilities and, per position, the mean and standard deviation of log p over the
vocabulary under p (Min-K%++), plus the text's byte length and zlib-compressed length.

An ensemble (SISA's shards, ``states=[...]``) is one model whose prediction is the mean of
its members' probabilities (Bourtoule et al. 2021; ``unlearning/evaluate.py``): every signal
is computed from log p̄ = log((1/S) Σ_s p_s), label probabilities for classification and the
next-token distribution (vocabulary moments included) for a causal LM. Each batch is run
through every member before the next batch, so an ensemble costs S forward passes per batch
and one pass over the data.

Speed: records are batched in order of length (so a batch pads to nearly its own length) and
the results put back in the caller's order; a causal LM's log-softmax over the vocabulary is
computed once per batch, in float32, and batches are sized by a token budget so the
(batch × length × vocabulary) arrays stay within ``_LM_BATCH_ELEMENTS``.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from privaudit.attacks.scores.inputs import SignalSet
from privaudit.core.rundir import write_bytes_atomic
from privaudit.mechanisms import prefix
from privaudit.mechanisms.model.device import model_device
from privaudit.mechanisms.models import AdapterState, ensemble_log_probs
from privaudit.mechanisms.tasks import Batch, EncodedSet, forward

__all__ = [
    "cached_signals",
    "compute_signals",
    "confidence_logit",
    "length_batches",
    "load_signals",
    "save_signals",
    "sequence_nll",
]

#: Elements of one (batch, length, vocabulary) float32 array for a causal LM (128 MiB).
_LM_BATCH_ELEMENTS = 1 << 25


def confidence_logit(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """φ = log p_y − log Σ_{y'≠y} p_{y'} from log-probabilities (B, C), numerically stable.

    >>> lp = torch.log(torch.tensor([[0.75, 0.25]]))
    >>> round(float(confidence_logit(lp, torch.tensor([0]))), 4)   # log(0.75 / 0.25)
    1.0986
    """
    true = log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    others = log_probs.clone()
    others.scatter_(-1, labels.unsqueeze(-1), float("-inf"))
    return true - torch.logsumexp(others, dim=-1)


def length_batches(
    data: EncodedSet, batch_size: int, *, vocab: int | None = None,
    device: torch.device | None = None,
) -> Iterator[tuple[list[int], Batch]]:
    """(indices, batch) over ``data`` from the longest record to the shortest, on ``device``
    (default: the CPU). With ``vocab`` (a causal LM), a batch holds at most
    ``_LM_BATCH_ELEMENTS / (length × vocab)`` records."""
    order = sorted(range(len(data)), key=lambda i: -len(data.input_ids[i]))
    start = 0
    while start < len(order):
        size = batch_size
        if vocab:
            width = max(1, len(data.input_ids[order[start]]))
            size = max(1, min(batch_size, _LM_BATCH_ELEMENTS // (width * vocab)))
        indices = order[start : start + size]
        batch = data.batch(indices)
        yield indices, batch if device is None else batch.to(device)
        start += size


def _class_log_probs(model: nn.Module, batch: Batch, task: str) -> torch.Tensor:
    """log p over the labels (B, C), float64, of the model as it is."""
    return torch.log_softmax(forward(model, batch, task).logits.double(), dim=-1)


def _lm_log_p(model: nn.Module, batch: Batch,
              states: Sequence[AdapterState] | None = None) -> torch.Tensor:
    """log p over the vocabulary (B, T−1, V), float32: of the model, or of the mean of the
    ensemble ``states``' probabilities."""

    def one() -> torch.Tensor:
        with prefix.use_features(model, batch.prefix):  # the cached frozen prefix, if any
            logits = model(input_ids=batch.input_ids,
                           attention_mask=batch.attention_mask).logits
        return torch.log_softmax(logits[:, :-1].float(), dim=-1)

    return ensemble_log_probs(model, states, one)


def _lm_tokens(
    model: nn.Module, batch: Batch, states: Sequence[AdapterState] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log p over the vocabulary (B, T−1, V), token log-probs, token mask, lengths)."""
    log_p = _lm_log_p(model, batch, states)
    tok = log_p.gather(-1, batch.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = batch.attention_mask[:, 1:].to(tok.dtype)
    return log_p, tok, mask, mask.sum(-1)


def _moments(log_p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """μ = Σ_v p_v log p_v and σ = √(Σ_v p_v (log p_v − μ)²) per position; overwrites log_p."""
    p = log_p.exp()
    mu = (p * log_p).sum(-1)
    log_p.sub_(mu.unsqueeze(-1)).square_().mul_(p)
    return mu, log_p.sum(-1).clamp(min=0).sqrt()


@torch.inference_mode()
def compute_signals(
    model: nn.Module,
    data: EncodedSet,
    *,
    task: str,
    texts: Sequence[str] | None = None,
    batch_size: int = 64,
    states: Sequence[AdapterState] | None = None,
) -> SignalSet:
    """Evaluate ``model`` once on ``data`` (eval mode, no gradients), in ``data``'s order.

    ``states``: evaluate the ensemble of these adapters (mean of their probabilities) instead
    of the model's current adapter, which is then left holding the last of them."""
    was_training = model.training
    model.eval()
    n = len(data)
    loss = np.zeros(n)
    phi = np.zeros(n)
    prob = np.zeros(n)
    tok_lp: list[np.ndarray] = [np.zeros(0)] * n
    tok_mu: list[np.ndarray] = [np.zeros(0)] * n
    tok_sigma: list[np.ndarray] = [np.zeros(0)] * n
    vocab = _vocab_size(model) if task != "classification" else None
    device = model_device(model)
    try:
        for indices, batch in length_batches(data, batch_size, vocab=vocab, device=device):
            if task == "classification":
                if batch.labels is None:
                    raise ValueError("classification signals need labels")
                if states is None:
                    out = forward(model, batch, task)
                    log_probs = torch.log_softmax(out.logits.double(), dim=-1)
                    loss[indices] = _host(out.loss)
                else:
                    log_probs = ensemble_log_probs(model, states, partial(_class_log_probs, model,
                                                                 batch, task))
                    labels = batch.labels.unsqueeze(-1)
                    loss[indices] = _host(-log_probs.gather(-1, labels)[:, 0])
                phi[indices] = _host(confidence_logit(log_probs, batch.labels))
                true = log_probs.gather(-1, batch.labels.unsqueeze(-1))[:, 0]
                prob[indices] = _host(true.exp())
                continue
            log_p, tok, mask, lengths = _lm_tokens(model, batch, states)
            mu, sigma = _moments(log_p)
            loss[indices] = _host(-(tok * mask).sum(-1) / lengths.clamp(min=1))
            tok, mu, sigma = tok.double().cpu(), mu.double().cpu(), sigma.double().cpu()
            counts = lengths.cpu()
            for row, i in enumerate(indices):
                t = max(int(counts[row]), 1)
                tok_lp[i] = tok[row, :t].numpy()
                tok_mu[i] = mu[row, :t].numpy()
                tok_sigma[i] = sigma[row, :t].numpy()
    finally:
        model.train(was_training)
    if task == "classification":
        return SignalSet(loss=loss, phi=phi, prob_true=prob)
    encoded = [t.encode("utf-8") for t in texts] if texts is not None else None
    nbytes = None if encoded is None else np.array([len(b) for b in encoded], float)
    zlen = None if encoded is None else np.array([len(zlib.compress(b)) for b in encoded], float)
    return SignalSet(
        loss=loss,
        phi=lm_phi(loss),
        token_logprobs=tok_lp,
        token_mu=tok_mu,
        token_sigma=tok_sigma,
        nbytes_text=nbytes,
        zlib_len=zlen,
    )


@torch.inference_mode()
def sequence_nll(model: nn.Module, data: EncodedSet, *, batch_size: int = 64,
                 states: Sequence[AdapterState] | None = None) -> np.ndarray:
    """−log Pr(x) in nats under a causal LM: the SUM of token NLLs after the first token of
    each sequence (the Secret Sharer's log-perplexity, up to the base of the logarithm).
    ``states``: under the ensemble of these adapters (see :func:`compute_signals`)."""
    was_training = model.training
    model.eval()
    out = np.zeros(len(data))
    try:
        for indices, batch in length_batches(data, batch_size, vocab=_vocab_size(model),
                                             device=model_device(model)):
            _, tok, mask, _ = _lm_tokens(model, batch, states)
            out[indices] = _host(-(tok * mask).sum(-1))
    finally:
        model.train(was_training)
    return out


def lm_phi(loss: np.ndarray) -> np.ndarray:
    """LiRA's statistic φ for a causal LM: the sequence's mean token log-likelihood (−loss),
    LiRA applied to language models "as is" (Hayes et al. 2025, "Exploring the limits of
    strong membership inference attacks on large language models"; Rossi et al. 2025).

    >>> lm_phi(np.array([2.5, 0.0])).tolist()
    [-2.5, -0.0]
    """
    return -np.asarray(loss, dtype=np.float64)


def _host(values: torch.Tensor) -> np.ndarray:
    """A result off the model's device: float64 numpy."""
    return values.double().cpu().numpy()


def _vocab_size(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    return int(getattr(config, "vocab_size", 0) or 32_000)


_SCALARS = ("loss", "phi", "prob_true", "nbytes_text", "zlib_len")
_TOKENS = ("token_logprobs", "token_mu", "token_sigma")


def save_signals(signals: SignalSet, path: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name in _SCALARS:
        value = getattr(signals, name)
        if value is not None:
            arrays[name] = np.asarray(value)
    for name in _TOKENS:
        seq = getattr(signals, name)
        if seq is not None:
            arrays[name] = np.concatenate(list(seq)) if len(seq) else np.zeros(0)
            arrays[name + "_lengths"] = np.array([len(a) for a in seq], dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    write_bytes_atomic(path, buffer.getvalue())


def load_signals(path: Path) -> SignalSet:
    with np.load(path, allow_pickle=False) as npz:
        kwargs: dict[str, object] = {n: npz[n] for n in _SCALARS if n in npz.files}
        for name in _TOKENS:
            if name in npz.files:
                flat, lengths = npz[name], npz[name + "_lengths"]
                kwargs[name] = np.split(flat, np.cumsum(lengths)[:-1])
    if "phi" not in kwargs and "token_logprobs" in kwargs:  # a causal LM's, cached before φ
        kwargs["phi"] = lm_phi(np.asarray(kwargs["loss"]))
    return SignalSet(**kwargs)  # type: ignore[arg-type]


def cached_signals(
    model: nn.Module,
    data: EncodedSet,
    *,
    task: str,
    model_sha256: str,
    records_sha256: str,
    cache_dir: Path,
    texts: Sequence[str] | None = None,
    states: Sequence[AdapterState] | None = None,
) -> SignalSet:
    """``compute_signals`` with a cache keyed by (model hash, records hash); ``model_sha256``
    must name the ensemble when ``states`` is given."""
    path = cache_dir / f"{model_sha256[:16]}-{records_sha256[:16]}.npz"
    if path.is_file():
        try:
            return load_signals(path)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache entry is recomputed
    signals = compute_signals(model, data, task=task, texts=texts, states=states)
    save_signals(signals, path)
    return signals
