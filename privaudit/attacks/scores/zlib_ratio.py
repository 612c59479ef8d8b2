"""zlib-calibrated perplexity (Carlini et al., "Extracting Training Data from Large Language
Models", USENIX Security 2021, §5.2 "zlib").

Text that is merely repetitive or simple has a low perplexity under any model; dividing by
its zlib entropy (how well a generic compressor does on it) calibrates for that. Precisely:

    log_ppl(x) = mean_t −log p(x_t | x_<t)                 (nats per token = ``loss``)
    zlib_len(x) = len(zlib.compress(x.encode("utf-8")))   (bytes, default level; see
                                                           :func:`zlib_length`)
    score(x)   = −log_ppl(x) / zlib_len(x)

The paper measures zlib entropy in bits; bytes differ by the constant factor 8 and rank the
examples identically. Higher score = more likely member.

>>> zlib_scores(np.array([2.0, 3.0]), np.array([40, 40])).tolist()
[-0.05, -0.075]
>>> zlib_length("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") < zlib_length("qz7Kp2Lw9xRt4Vn8")
True
"""

from __future__ import annotations

import zlib

import numpy as np

from privaudit.attacks.scores.base import (
    Attack,
    AttackInputs,
    register_attack,
    required,
)

__all__ = ["ZlibAttack", "zlib_length", "zlib_scores"]


def zlib_length(text: str) -> int:
    """Bytes of ``zlib.compress(text.encode("utf-8"))`` at the default level: the
    ``SignalSet.zlib_len`` every caller must compute the same way."""
    return len(zlib.compress(text.encode("utf-8")))


def zlib_scores(log_ppl: np.ndarray, zlib_len: np.ndarray) -> np.ndarray:
    """−log-perplexity / zlib length (bytes)."""
    return -np.asarray(log_ppl, dtype=np.float64) / np.asarray(zlib_len, dtype=np.float64)


class ZlibAttack(Attack):
    """Log-perplexity over zlib entropy (Carlini et al. 2021); causal language models only."""

    name = "zlib"

    def requirements(self) -> tuple[str, ...]:
        return ("target.loss", "target.zlib_len")

    def compute(self, inputs: AttackInputs) -> np.ndarray:
        zlen = required(inputs.target.zlib_len, "target.zlib_len")
        return zlib_scores(inputs.target.loss, zlen)


register_attack("zlib", ZlibAttack)
