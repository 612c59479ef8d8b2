"""The causal-LM battery end to end on a tiny LM: the language-model attacks are reported for
the federated model, and secret canaries written 16 times are far more exposed than one
written once — and than under the base model, which never saw them."""

from __future__ import annotations

import math
from typing import Any

import pytest

from privaudit.attacks.canary_exposure import measure_exposure
from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.audit.pipeline import AuditOutcome, run_audit
from tests.attacks.helpers import QUIET, attack_setup

LM_ATTACKS = ["loss", "zlib", "min_k", "min_k_pp", "reference"]
TINY_LM: dict[str, Any] = {
    "name": "tiny-lm",
    "seed": 5,
    "data": {"synthetic": {"subjects": 60, "min_records": 2, "max_records": 3},
             "test_records": 10, "public_records": 30, "audit": {"members": 20, "nonmembers": 20}},
    "model": {"task": "causal-lm", "base": "tiny", "max_length": 32, "pretrain": {"epochs": 1},
              "tiny": {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64},
              "lora": {"rank": 8, "alpha": 16, "target_modules": [
                  "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}},
    # a high learning rate on few records: the model memorises what it sees most often
    "federation": {"clients": 2, "rounds": 2, "local_epochs": 6, "batch_size": 8,
                   "learning_rate": 0.01},
    "attacks": {"battery": [{"name": n} for n in LM_ATTACKS], "bootstrap": 50,
                "canaries": {"count": 2, "insertions": [1, 16], "candidates": 200}},
}


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[AuditConfig, AuditOutcome]:
    cfg = config_from_dict(TINY_LM)
    return cfg, run_audit(cfg, tmp_path_factory.mktemp("lm"), reporter=QUIET)


def test_every_language_model_attack_is_reported_for_the_federated_model(lm_run) -> None:
    _, outcome = lm_run
    report = outcome.report
    assert report.utility.metric == "perplexity"
    assert [a.attack for a in report.attacks] == LM_ATTACKS
    for a in report.attacks:
        assert (a.model, a.n_members, a.n_nonmembers, a.n_references) == ("federated", 20, 20, 0)
        assert 0.0 <= (a.auc_ci_low or 0) <= a.auc <= (a.auc_ci_high or 1) <= 1.0
    assert report.references is None  # the reference attack calibrates against the base


def test_canaries_seen_sixteen_times_are_far_more_exposed_than_one_seen_once(lm_run) -> None:
    _, outcome = lm_run
    exposure = outcome.report.exposure
    assert exposure is not None
    assert exposure.model == "federated"
    assert exposure.log2_space_size == pytest.approx(math.log2(10**6))
    bits = {c.insertions: c.bits for c in exposure.canaries}
    assert bits[16] > bits[1] + 5.0, bits
    assert exposure.mean_bits == pytest.approx(sum(bits.values()) / 2)
    assert exposure.per_model == {"federated": pytest.approx(exposure.mean_bits)}
    stored = (outcome.run_dir / "data" / "canaries.json").read_text()
    assert "secret_sha256" in stored and "my account pin" not in stored


def test_the_base_model_that_never_saw_the_canaries_barely_exposes_them(lm_run) -> None:
    cfg, outcome = lm_run
    bundle, setup = attack_setup(cfg, outcome.run_dir)  # the model holds its initial adapter
    base = measure_exposure(bundle.model, setup.canaries, setup.candidates, cfg.attacks.canaries,
                            setup.encode, model_name="base")
    trained = outcome.report.exposure
    assert trained is not None
    frequent = max(range(2), key=lambda i: base.canaries[i].insertions)
    assert base.canaries[frequent].bits < trained.canaries[frequent].bits - 5.0
    assert base.mean_bits < trained.mean_bits
