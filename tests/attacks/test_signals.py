"""Signals: what the attacks read, computed batched (records sorted by length) and cached,
equal to a direct one-record-at-a-time computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from privaudit.attacks import signals as signals_module
from privaudit.attacks.scores import token_moments
from privaudit.attacks.signals import cached_signals, compute_signals, sequence_nll
from privaudit.audit.config import ModelConfig
from privaudit.mechanisms.data.corpus import LABELS, generate_corpus
from privaudit.mechanisms.models import load_base_model, load_tokenizer
from privaudit.mechanisms.tasks import encode_records, forward

TINY_ARCH = {"layers": 1, "hidden": 16, "heads": 2, "intermediate": 32}


@pytest.fixture(scope="module")
def records():  # type: ignore[no-untyped-def]
    return generate_corpus(subjects=8, min_records=2, max_records=3, seed=1)


def _model(task: str, num_labels: int | None = None):  # type: ignore[no-untyped-def]
    cfg = ModelConfig(task=task, base="tiny", tiny=TINY_ARCH, max_length=40)  # type: ignore[arg-type]
    tok = load_tokenizer(cfg)
    model = load_base_model(cfg, tokenizer=tok, num_labels=num_labels, seed=0)
    return model.eval(), tok


def test_causal_lm_signals_equal_a_direct_float64_computation(records) -> None:
    model, tok = _model("causal-lm")
    data = encode_records(records, tok, labels=None, max_length=40)
    got = compute_signals(model, data, task="causal-lm", texts=[r.text for r in records],
                          batch_size=5)
    for i in [0, 3, len(records) - 1]:
        batch = data.batch([i])
        with torch.no_grad():
            out = forward(model, batch, "causal-lm")
            probs = torch.softmax(out.logits[0, :-1].double(), dim=-1).numpy()
        n = len(data.input_ids[i]) - 1
        assert got.loss[i] == pytest.approx(float(out.loss[0]), rel=1e-5)
        assert got.token_logprobs is not None and got.token_mu is not None
        assert got.token_sigma is not None and got.zlib_len is not None
        np.testing.assert_allclose(got.token_logprobs[i], out.token_logprobs[0, :n], rtol=1e-5)
        moments = np.array([token_moments(p) for p in probs[:n]])
        np.testing.assert_allclose(got.token_mu[i], moments[:, 0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got.token_sigma[i], moments[:, 1], rtol=1e-3, atol=1e-4)
    nll = sequence_nll(model, data, batch_size=3)
    lengths = np.array([len(x) - 1 for x in data.input_ids])
    np.testing.assert_allclose(nll, got.loss * lengths, rtol=1e-5)


def test_classification_signals_follow_their_records_whatever_the_batching(records) -> None:
    model, tok = _model("classification", num_labels=len(LABELS))
    data = encode_records(records, tok, labels=list(LABELS), max_length=40)
    whole = compute_signals(model, data, task="classification", batch_size=64)
    perm = np.random.default_rng(0).permutation(len(data))
    shuffled = compute_signals(model, data.subset(perm.tolist()), task="classification",
                               batch_size=3)
    np.testing.assert_allclose(shuffled.loss, whole.loss[perm], rtol=1e-6)
    assert whole.phi is not None and shuffled.phi is not None and whole.prob_true is not None
    np.testing.assert_allclose(shuffled.phi, whole.phi[perm], rtol=1e-6)
    np.testing.assert_allclose(whole.prob_true, np.exp(-whole.loss), rtol=1e-6)


def test_signals_are_computed_once_per_model_and_records(records, tmp_path: Path,
                                                         monkeypatch) -> None:
    model, tok = _model("classification", num_labels=len(LABELS))
    data = encode_records(records, tok, labels=list(LABELS), max_length=40)
    kwargs = {"task": "classification", "model_sha256": "a" * 64, "records_sha256": "b" * 64,
              "cache_dir": tmp_path}
    first = cached_signals(model, data, **kwargs)  # type: ignore[arg-type]

    def boom(*args: object, **kw: object) -> None:
        raise AssertionError("recomputed a cached signal set")

    monkeypatch.setattr(signals_module, "compute_signals", boom)
    again = cached_signals(model, data, **kwargs)  # type: ignore[arg-type]
    np.testing.assert_array_equal(first.loss, again.loss)
    assert len(list(tmp_path.glob("*.npz"))) == 1
