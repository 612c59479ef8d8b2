"""Per-example signals of one model on one set of records, computed once and cached.

Attacks never touch models: this module turns (model, records) into a :class:`SignalSet` of
arrays, batched, without gradients. Results are cached in the run directory as
``signals/<model sha256[:16]>-<records sha256[:16]>.npz``, so the same model on the same
records is never evaluated twice (also across stages and resumed runs).

Classification: loss (cross-entropy), the confidence logit φ = log p_y − log Σ_{y'≠y} p_{y'}
computed stably from log-softmax, and p_y. Causal LM: loss (mean token NLL), per-token
log-probabilities and, per position, the mean and standard deviation of log p over the
vocabulary under p (Min-K%++), plus the text's byte length and zlib-compressed length.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from privaudit.attacks.scores.inputs import SignalSet
from privaudit.audit.rundir import write_bytes_atomic
from privaudit.mechanisms.tasks import EncodedSet, forward


def confidence_logit(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """φ = log p_y − log Σ_{y'≠y} p_{y'} from log-probabilities (B, C), numerically stable."""
    true = log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    others = log_probs.clone()
    others.scatter_(-1, labels.unsqueeze(-1), float("-inf"))
    return true - torch.logsumexp(others, dim=-1)


@torch.no_grad()
def compute_signals(
    model: nn.Module,
    data: EncodedSet,
    *,
    task: str,
    texts: Sequence[str] | None = None,
    batch_size: int = 64,
) -> SignalSet:
    """Evaluate ``model`` once on ``data`` (eval mode, no gradients)."""
    was_training = model.training
    model.eval()
    loss: list[np.ndarray] = []
    phi: list[np.ndarray] = []
    prob: list[np.ndarray] = []
    tok_lp: list[np.ndarray] = []
    tok_mu: list[np.ndarray] = []
    tok_sigma: list[np.ndarray] = []
    for batch in data.batches(batch_size):
        out = forward(model, batch, task)
        loss.append(out.loss.double().numpy())
        if task == "classification" and batch.labels is not None:
            log_probs = torch.log_softmax(out.logits.double(), dim=-1)
            phi.append(confidence_logit(log_probs, batch.labels).numpy())
            prob.append(log_probs.gather(-1, batch.labels.unsqueeze(-1)).exp().squeeze(-1).numpy())
        elif out.token_logprobs is not None and out.token_mask is not None:
            log_p = torch.log_softmax(out.logits[:, :-1].double(), dim=-1)
            p = log_p.exp()
            mu = (p * log_p).sum(-1)
            sigma = ((p * log_p.pow(2)).sum(-1) - mu.pow(2)).clamp(min=0).sqrt()
            lengths = out.token_mask.sum(-1).long().tolist()
            for i, n in enumerate(lengths):
                n = max(int(n), 1)
                tok_lp.append(out.token_logprobs[i, :n].double().numpy())
                tok_mu.append(mu[i, :n].numpy())
                tok_sigma.append(sigma[i, :n].numpy())
    model.train(was_training)
    if task == "classification":
        return SignalSet(
            loss=np.concatenate(loss), phi=np.concatenate(phi), prob_true=np.concatenate(prob)
        )
    encoded = [t.encode("utf-8") for t in texts] if texts is not None else None
    nbytes = None if encoded is None else np.array([len(b) for b in encoded], float)
    zlen = None if encoded is None else np.array([len(zlib.compress(b)) for b in encoded], float)
    return SignalSet(
        loss=np.concatenate(loss),
        token_logprobs=tok_lp,
        token_mu=tok_mu,
        token_sigma=tok_sigma,
        nbytes_text=nbytes,
        zlib_len=zlen,
    )


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
) -> SignalSet:
    """``compute_signals`` with a cache keyed by (model hash, records hash)."""
    path = cache_dir / f"{model_sha256[:16]}-{records_sha256[:16]}.npz"
    if path.is_file():
        try:
            return load_signals(path)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache entry is recomputed
    signals = compute_signals(model, data, task=task, texts=texts)
    save_signals(signals, path)
    return signals
