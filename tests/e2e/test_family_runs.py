"""The family conformance run (#22, part 1): for each known family, a tiny random model built
from its config class (2 layers, hidden 32), saved with its own tokenizer to a directory and
loaded back through ``model.base: <dir>`` exactly as a user's model is, runs the whole chain —
federated record-level DP-SGD with CKKS secure aggregation, one erasure by gradient ascent and
by SISA (judged against the oracle), the LOSS and reference-to-base attacks on every model,
and the report."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pytest
import transformers as tf

from privaudit.audit.config import config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.core.progress import PlainReporter
from privaudit.mechanisms.data import prepare_data
from privaudit.mechanisms.data.config import DataConfig
from tests.conftest import TINY, merge
from tests.mechanisms.test_families import CONFIGS
from tests.wordpiece import wordpiece

DATA = {"synthetic": {"subjects": 48, "min_records": 2, "max_records": 3}, "test_records": 16,
        "public_records": 0, "audit": {"members": 16, "nonmembers": 16}}


def _saved_model(family: str, root: Path, texts: list[str], labels: int) -> Path:
    config, task = copy.deepcopy(CONFIGS[family])
    tokenizer = wordpiece(texts)
    config.vocab_size = len(tokenizer)
    config.pad_token_id = 0
    if task == "classification":
        config.num_labels = labels
    auto = tf.AutoModelForCausalLM if task == "causal-lm" else \
        tf.AutoModelForSequenceClassification
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto.from_config(config).save_pretrained(root / family)
    tokenizer.save_pretrained(root / family)
    return root / family


@pytest.mark.parametrize("family", list(CONFIGS))
def test_each_family_runs_dp_secure_aggregation_erasure_attacks_and_the_report(
        family: str, tmp_path: Path) -> None:
    task = CONFIGS[family][1]
    corpus = prepare_data(DataConfig.model_validate(DATA), task=task, k=3, seed=3)
    base = _saved_model(family, tmp_path, [r.text for r in corpus.clients["client-0"]],
                        len(corpus.labels or []))
    cfg: dict[str, Any] = merge(TINY, {
        "data": DATA,
        "model": {"task": task, "base": str(base), "lora": {"rank": 4, "alpha": 8,
                                                             "top_layers": 1}},
        "federation": {"clients": 3, "rounds": 1, "batch_size": 8},
        "privacy": {"dp": {"mode": "record", "target_epsilon": 8.0, "delta": 1e-5}},
        "secure_aggregation": {"enabled": True, "coeff_mod_bit_sizes": [48, 40]},
        "attacks": {"battery": [{"name": "loss"}, {"name": "reference"}],
                    "reference_model": "base"},
        "unlearning": {"requests": [{"id": "req-1", "kind": "record",
                                     "ids": [corpus.members[0].id],
                                     "received_at": "2025-01-01"}],
                       "methods": ["gradient_ascent", "sisa"],
                       "sisa": {"shards": 2, "slices": 1}},
        "report": {"formats": ["html"]},
    })
    outcome = run_audit(config_from_dict(cfg), tmp_path / "run",
                        reporter=PlainReporter(quiet=True))
    report = outcome.report
    assert report.run.base_model == str(base) and report.run.task == task
    assert report.privacy is not None and report.privacy.dp.enabled
    assert report.secure_aggregation is not None and report.secure_aggregation.enabled
    methods = {u.method for u in report.unlearning}
    assert {"gradient_ascent", "sisa"} <= methods
    attacked = {(a.attack, a.model) for a in report.attacks}
    for model in ("federated", "gradient_ascent/req-1", "sisa/req-1", "oracle/req-1"):
        assert {("loss", model), ("reference", model)} <= attacked, (model, attacked)
    assert all(0 <= a.auc <= 1 for a in report.attacks)
    # what a useless model scores on the same held-out records, for the utility control
    assert set(report.utility.baselines) == (
        {"majority_class", "tfidf_logreg"} if task == "classification" else {"base_model"})
    assert report.utility.n_records and report.utility.n_records > 0
    assert report.verdict is not None and (tmp_path / "run" / "report.html").is_file()
