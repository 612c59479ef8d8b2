"""Every attack runs against every model the run produces — the federated model, each
unlearned model (a SISA ensemble through its shards' mean probability) and the oracle — and
the report, its HTML, the CLI summary and the gate read those rows."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from sklearn.metrics import roc_auc_score

from privaudit.attacks import battery as battery_module
from privaudit.attacks.canary_exposure import exposure_of
from privaudit.attacks.signals import compute_signals, sequence_nll
from privaudit.audit import cli
from privaudit.audit.config import CanaryConfig, ModelConfig, config_from_dict
from privaudit.audit.pipeline import AuditOutcome, run_audit
from privaudit.gate.metrics import MetricUnavailable, resolve_metric
from privaudit.mechanisms.data import prepare_data
from privaudit.mechanisms.data.canaries import Canary
from privaudit.mechanisms.data.corpus import LABELS, generate_corpus
from privaudit.mechanisms.models import (
    adapter_state,
    apply_lora,
    load_base_model,
    load_tokenizer,
    set_adapter_state,
)
from privaudit.mechanisms.tasks import encode_records
from privaudit.reports.figures.attacks import roc_figure
from privaudit.reports.html import render_html
from privaudit.reports.schema import Report
from privaudit.unlearning.base import UnlearnedModel
from privaudit.unlearning.evaluate import per_example_loss
from tests.attacks.helpers import QUIET, attack_setup
from tests.conftest import TINY, merge
from tests.reports.samples import sample_report

BATTERY = ["loss", "reference"]  # the reference attack calibrates on the base: no references
METHODS = ["gradient_ascent", "sisa"]
MODELS = ["federated", "oracle/req-1", "gradient_ascent/req-1", "sisa/req-1"]
#: (model key, records key, number of records) of every signal set the battery asked for
SIGNAL_REQUESTS: list[tuple[str, str, int]] = []


@pytest.fixture(scope="module")
def erased_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[AuditOutcome, str]:
    """A tiny run with one erasure request (the data subject of an audit member) served by
    gradient ascent and SISA (2 shards), and the oracle."""
    base = config_from_dict(TINY)
    data = prepare_data(base.data, task=base.model.task, k=base.federation.clients,
                        seed=base.seed, canaries=base.attacks.canaries)
    subject = data.members[0].subject_id
    cfg = config_from_dict(merge(TINY, {
        "attacks": {"battery": [{"name": n} for n in BATTERY]},
        "unlearning": {"requests": [{"id": "req-1", "kind": "subject", "ids": [subject]}],
                       "methods": METHODS, "sisa": {"shards": 2, "slices": 1}},
    }))
    real = battery_module.cached_signals

    def recording(model: Any, data: Any, **kw: Any) -> Any:
        SIGNAL_REQUESTS.append((kw["model_sha256"], kw["records_sha256"], len(data)))
        return real(model, data, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(battery_module, "cached_signals", recording)
        outcome = run_audit(cfg, tmp_path_factory.mktemp("erased"), reporter=QUIET)
    return outcome, subject


def test_every_attack_runs_on_the_federated_each_unlearned_and_the_oracle_model(
        erased_run: tuple[AuditOutcome, str]) -> None:
    outcome, _ = erased_run
    report = outcome.report
    rows = [(a.model, a.attack) for a in report.attacks]
    assert rows == [(m, n) for m in MODELS for n in BATTERY]
    # each row names the model it attacked by the hash the erase stage recorded for it
    after = {f"{u.method}/{u.request_id}": u.model_sha256_after for u in report.unlearning}
    for a in report.attacks:
        expected = report.run.final_adapter_sha256 if a.model == "federated" else after[a.model]
        assert a.model_sha256 == expected, a.model
        assert a.n_nonmembers == 40 and a.roc is not None


def test_models_after_an_erasure_are_attacked_without_the_erased_members(
        erased_run: tuple[AuditOutcome, str]) -> None:
    outcome, subject = erased_run
    cfg = config_from_dict(TINY)
    data = prepare_data(cfg.data, task=cfg.model.task, k=cfg.federation.clients,
                        seed=cfg.seed, canaries=cfg.attacks.canaries)
    erased_members = sum(r.subject_id == subject for r in data.members)
    assert erased_members >= 1
    for a in outcome.report.attacks:
        gone = 0 if a.model == "federated" else erased_members
        assert (a.n_members, a.members_erased) == (40 - gone, gone), a.model


def test_every_model_is_scored_on_one_record_set_so_the_base_models_signals_are_shared(
        erased_run: tuple[AuditOutcome, str]) -> None:
    # erased members are dropped by index, not by re-encoding a smaller set: one records key
    # for every model, and the base model (the reference attack's) asked for on it only
    outcome, _ = erased_run
    assert {(r, n) for _, r, n in SIGNAL_REQUESTS} == {(SIGNAL_REQUESTS[0][1], 80)}
    distinct = {a.model_sha256 for a in outcome.report.attacks}
    assert len({m for m, _, _ in SIGNAL_REQUESTS}) == len(distinct) + 1  # + the base model
    assert len(SIGNAL_REQUESTS) == 2 * len(MODELS)  # target + base, per model


def test_the_sisa_row_is_the_loss_attack_on_its_shards_mean_probability(
        erased_run: tuple[AuditOutcome, str]) -> None:
    outcome, subject = erased_run
    row = next(a for a in outcome.report.attacks
               if (a.model, a.attack) == ("sisa/req-1", "loss"))
    cfg = config_from_dict(yaml.safe_load((outcome.run_dir / "config.yaml").read_text()))
    bundle, setup = attack_setup(cfg, outcome.run_dir)
    sisa = UnlearnedModel.load(outcome.run_dir / "models" / "sisa" / "req-1"
                               / "adapter.safetensors")
    assert len(sisa.states) == 2
    members = [r for r in setup.members if r.subject_id != subject]
    records = [*members, *setup.nonmembers]
    # independently: unlearning/evaluate.py's loss of the probability-averaged shards
    loss = per_example_loss(bundle.model, sisa.states, setup.encode(records), "classification")
    is_member = np.r_[np.ones(len(members)), np.zeros(len(setup.nonmembers))]
    # float32 (evaluate.py) against float64 (signals.py) may break one tie: half a pair
    pair = 1.0 / (len(members) * len(setup.nonmembers))
    assert row.auc == pytest.approx(roc_auc_score(is_member, -loss), abs=pair)
    for shard in sisa.states:  # not one shard's: the ensemble's losses are another model's
        alone = per_example_loss(bundle.model, [shard], setup.encode(records), "classification")
        assert float(np.max(np.abs(np.asarray(alone) - np.asarray(loss)))) > 1e-3


def _tiny(task: str, num_labels: int | None = None) -> tuple[torch.nn.Module, Any]:
    cfg = ModelConfig.model_validate({
        "task": task, "base": "tiny", "max_length": 32, "lora": {"rank": 4, "alpha": 8},
        "tiny": {"layers": 1, "hidden": 16, "heads": 2, "intermediate": 32}})
    tok = load_tokenizer(cfg)
    base = load_base_model(cfg, tokenizer=tok, num_labels=num_labels, seed=0)
    model, _ = apply_lora(cfg, base, seed=0)
    return model.eval(), tok


def _shards(model: torch.nn.Module, n: int) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [{k: v + 0.5 * torch.randn(v.shape, generator=gen) for k, v in
             adapter_state(model).items()} for _ in range(n)]


def test_ensemble_classification_signals_are_those_of_the_mean_probability() -> None:
    records = generate_corpus(subjects=6, min_records=2, max_records=3, seed=2)
    model, tok = _tiny("classification", num_labels=len(LABELS))
    data = encode_records(records, tok, labels=list(LABELS), max_length=32)
    shards = _shards(model, 3)
    got = compute_signals(model, data, task="classification", states=shards, batch_size=4)
    # independently: unlearning/evaluate.py's shard-mean loss
    expected = per_example_loss(model, shards, data, "classification")
    np.testing.assert_allclose(got.loss, expected, rtol=1e-5)
    assert got.prob_true is not None and got.phi is not None
    p = np.exp(-expected)
    np.testing.assert_allclose(got.prob_true, p, rtol=1e-5)
    np.testing.assert_allclose(got.phi, np.log(p) - np.log1p(-p), rtol=1e-4, atol=1e-6)
    one = compute_signals(model, data, task="classification", states=shards[:1])
    assert not np.allclose(one.loss, got.loss)  # an ensemble is not its first shard


def test_ensemble_language_model_signals_mix_the_next_token_distributions() -> None:
    records = generate_corpus(subjects=4, min_records=2, max_records=2, seed=3)
    model, tok = _tiny("causal-lm")
    data = encode_records(records, tok, labels=None, max_length=32)
    shards = _shards(model, 2)
    got = compute_signals(model, data, task="causal-lm", states=shards, batch_size=3,
                          texts=[r.text for r in records])
    i = 1
    probs = []
    for s in shards:  # per-shard next-token distributions of record i, float64
        set_adapter_state(model, s)
        with torch.no_grad():
            logits = model(input_ids=data.batch([i]).input_ids).logits[0, :-1].double()
        probs.append(torch.softmax(logits, -1))
    mean = (probs[0] + probs[1]) / 2
    targets = torch.tensor(data.input_ids[i][1:])
    token_lp = torch.log(mean.gather(-1, targets.unsqueeze(-1))[:, 0]).numpy()
    assert got.token_logprobs is not None and got.token_mu is not None
    np.testing.assert_allclose(got.token_logprobs[i], token_lp, rtol=1e-4)
    mu = (mean * torch.log(mean)).sum(-1).numpy()
    np.testing.assert_allclose(got.token_mu[i], mu, rtol=1e-4)
    assert got.loss[i] == pytest.approx(-token_lp.mean(), rel=1e-4)
    nll = sequence_nll(model, data, states=shards)
    assert nll[i] == pytest.approx(-token_lp.sum(), rel=1e-4)


def test_ensemble_signal_extraction_is_batched_one_forward_per_shard_and_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    records = generate_corpus(subjects=10, min_records=2, max_records=3, seed=4)
    model, tok = _tiny("classification", num_labels=len(LABELS))
    data = encode_records(records, tok, labels=list(LABELS), max_length=32)
    calls: list[int] = []
    hook = model.register_forward_hook(lambda m, args, kw_out: calls.append(1))
    try:
        compute_signals(model, data, task="classification", states=_shards(model, 3),
                        batch_size=8)
    finally:
        hook.remove()
    assert len(calls) == 3 * math.ceil(len(data) / 8)


def test_the_roc_figure_has_one_log_log_panel_per_attacked_model(
        erased_run: tuple[AuditOutcome, str]) -> None:
    outcome, _ = erased_run
    fig = roc_figure(outcome.report.attacks)
    assert fig is not None
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == [f"{m} model" for m in MODELS]
    assert all(ax.get_xscale() == "log" and ax.get_yscale() == "log" for ax in axes)


def test_the_html_attacks_table_and_roc_figure_cover_every_model(
        erased_run: tuple[AuditOutcome, str]) -> None:
    outcome, _ = erased_run
    html = (outcome.run_dir / "report.html").read_text(encoding="utf-8")
    section = re.search(r'<section id="attacks".*?</section>', html, re.S)
    assert section is not None
    table = re.search(r'<table id="attacks-table">.*?</table>', section.group(0), re.S)
    assert table is not None
    for model in MODELS:
        assert len(re.findall(rf"<td>{re.escape(model)}</td>", table.group(0))) == len(BATTERY)
    figure = re.search(r"<figure><img src=\"data:image/svg\+xml;base64,[^\"]+\" "
                       r"alt=\"ROC curves[^\"]*\">", section.group(0))
    assert figure is not None
    # the crosswalk's adversarial-testing rows link to this section
    crosswalk = re.search(r'<section id="crosswalk".*?</section>', html, re.S)
    assert crosswalk is not None
    for clause in ("Opinion 28/2024", "Art. 15(5)", "Adversarial testing"):
        row = re.search(rf"<tr><td><strong>[^<]*</strong><br>[^<]*{re.escape(clause)}.*?</tr>",
                        crosswalk.group(0), re.S)
        assert row is not None and 'href="#attacks"' in row.group(0), clause


def test_the_gate_reads_the_federated_models_attack_unless_a_model_is_named(
        erased_run: tuple[AuditOutcome, str]) -> None:
    outcome, _ = erased_run
    doc = outcome.report.model_dump(mode="json")
    by_model = {a["model"]: a for a in doc["attacks"] if a["attack"] == "loss"}
    default = resolve_metric(doc, "attacks.loss.auc")
    assert [(o.target, o.point) for o in default] == [("federated", by_model["federated"]["auc"])]
    # 40 non-members cannot resolve 1%: the gate reads the federated model's TPR and calls
    # it not estimable (never another model's point)
    with pytest.raises(MetricUnavailable, match=re.escape(
            "'loss' on federated at FPR 0.01 is NOT ESTIMABLE: 40 held-out non-members")):
        resolve_metric(doc, "attacks.loss.tpr_at_fpr.0.01")
    sisa = resolve_metric(doc, "attacks.loss.sisa/req-1.auc")
    assert [(o.target, o.point, o.ci_low) for o in sisa] == [
        ("sisa/req-1", by_model["sisa/req-1"]["auc"], by_model["sisa/req-1"]["auc_ci_low"])]
    with pytest.raises(MetricUnavailable, match="did not run on model 'npo/req-1'"):
        resolve_metric(doc, "attacks.loss.npo/req-1.auc")


def _report_with_exposure() -> Report:
    canaries = [Canary(id=f"canary-{i}", secret="1 2 3 4 5 6", text="pin", insertions=n)
                for i, n in enumerate([1, 4, 16])]
    cfg = CanaryConfig(count=3, digits=6, method="empirical")
    candidates = np.linspace(1.0, 50.0, 200).tolist()
    exposure = exposure_of([30.0, 10.0, 0.5], candidates, canaries, cfg, model_name="federated")
    exposure.per_model["npo/req-1"] = 1.25
    report = sample_report()
    other = report.attacks[0].model_copy(update={"model": "npo/req-1", "auc": 0.52})
    return report.model_copy(update={"exposure": exposure,
                                     "attacks": [*report.attacks, other]})


def test_the_html_embeds_the_exposure_chart_and_every_models_mean_bits() -> None:
    report = _report_with_exposure()
    html = render_html(report)
    section = re.search(r'<section id="exposure".*?</section>', html, re.S)
    assert section is not None
    assert re.search(r'<figure><img src="data:image/svg\+xml;base64,[^"]+" alt="Exposure',
                     section.group(0))
    per_model = re.search(r'<table id="exposure-per-model">.*?</table>', section.group(0), re.S)
    assert per_model is not None
    assert report.exposure is not None
    mean = f"{report.exposure.mean_bits:.2f}"
    assert re.search(rf"<td>federated</td><td class=\"num\">{mean}</td>", per_model.group(0))
    assert re.search(r"<td>npo/req-1</td><td class=\"num\">1.25</td>", per_model.group(0))


def test_the_cli_summary_shows_the_strongest_attack_per_model_and_exposure_mean_bits(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    report = _report_with_exposure()
    cli._summary(report, tmp_path)
    out = capsys.readouterr().out
    assert report.exposure is not None
    assert re.search(rf"canary exposure \(federated\)\s.*{report.exposure.mean_bits:.2f} bits "
                     "mean", out)
    assert re.search(r"loss attack AUC \(federated\)", out)
    assert re.search(r"strongest attack AUC \(npo/req-1\)\s.*0\.520 \(loss\)", out)
