"""``privaudit audit-model`` on a tiny causal LM trained outside privaudit (plain transformers
+ peft on a members file, never on the non-members; ``tests/audit/external_lm.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from privaudit.audit.cli import main
from privaudit.reports.schema import read_report
from tests.audit.external_lm import (
    Erasure,
    ExternalLM,
    leaky_split,
    train_external_lm,
    train_oracle,
)

ATTACKS = {"loss", "zlib", "min_k", "min_k_pp", "reference"}
#: the reference-to-base AUC below which the external fixture did not memorise its members
MEMORISES_AUC = 0.7


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory) -> ExternalLM:
    return train_external_lm(tmp_path_factory.mktemp("external"))


def _args(lm: ExternalLM, out: Path, *extra: str) -> list[str]:
    return ["audit-model", "--base", str(lm.base), "--adapter", str(lm.adapter), "--task",
            "causal-lm", "--members", str(lm.members), "--nonmembers", str(lm.nonmembers),
            "--out", str(out), *extra]


@pytest.fixture(scope="module")
def audited(external: ExternalLM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audited") / "run"
    assert main(_args(external, out)) == 0
    return out


def test_audit_model_reports_every_attack_with_an_interval_and_the_blind_baseline(
        audited: Path) -> None:
    report = read_report(audited / "report.json")
    assert report.run.kind == "external" and report.run.rounds is None
    assert {a.attack for a in report.attacks} == ATTACKS
    for a in report.attacks:
        assert a.model == "external" and a.n_members == 40 and a.n_nonmembers == 40
        assert a.auc_ci_low is not None and a.auc_ci_high is not None
        assert a.auc_ci_low <= a.auc <= a.auc_ci_high
    reference = next(a for a in report.attacks if a.attack == "reference")
    if reference.auc < MEMORISES_AUC:
        pytest.fail(f"the external fixture did not memorise its members: reference-to-base "
                    f"AUC {reference.auc:.3f} < {MEMORISES_AUC}; give tests/audit/"
                    "external_lm.py more epochs before trusting these tests", pytrace=False)
    assert report.blind_baseline is not None and not report.blind_baseline.leaks
    controls = {c.id: c for c in report.verdict.controls}  # type: ignore[union-attr]
    assert controls["membership-inference"].status == "FAIL"  # it memorised, and it is seen
    assert "blind baseline" in controls["membership-inference"].reason
    assert controls["dp-guarantee"].status == "NOT EVALUATED"
    assert "outside privaudit" in controls["dp-guarantee"].reason
    assert not controls["secure-aggregation"].applicable
    assert report.utility.metric == "perplexity"
    # judged against the base model before the fine-tuning, on the same non-members
    assert report.utility.value < report.utility.baselines["base_model"]
    assert controls["utility"].status == "PASS" and "base model" in controls["utility"].reason


def test_the_audit_model_run_directory_verifies_and_names_its_inputs_by_sha256(
        audited: Path, external: ExternalLM) -> None:
    assert main(["verify", str(audited)]) == 0
    text = (audited / "audit-model.yaml").read_text()
    assert "members.jsonl" in text and "sha256" in text
    report = json.loads((audited / "report.json").read_text())
    assert report["data"]["roles"][0]["source"] == "members.jsonl"  # a name, not a path
    assert report["run"]["final_adapter_sha256"]


def test_the_gate_reads_an_audit_model_report_like_a_run_report(
        audited: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nrules:\n  - {id: mia, metric: attacks.reference.auc, "
                      "max: 0.6, severity: error}\n")
    assert main(["gate", str(audited / "report.json"), "--policy", str(policy)]) == 1
    policy.write_text("version: 1\nrules:\n  - {id: dp, metric: dp.epsilon, max: 8, "
                      "severity: error}\n")
    assert main(["gate", str(audited / "report.json"), "--policy", str(policy)]) == 4


def test_a_split_that_leaks_by_construction_is_flagged_by_the_blind_baseline(
        external: ExternalLM, tmp_path: Path) -> None:
    members, nonmembers = leaky_split(external, tmp_path)  # members longer than non-members
    args = _args(external, tmp_path / "run")
    args[args.index("--members") + 1], args[args.index("--nonmembers") + 1] = \
        str(members), str(nonmembers)
    assert main(args) == 0
    report = read_report(tmp_path / "run" / "report.json")
    assert report.blind_baseline is not None and report.blind_baseline.leaks
    mia = next(c for c in report.verdict.controls  # type: ignore[union-attr]
               if c.id == "membership-inference")
    assert mia.status == "NOT INFORMATIVE" and "without looking at the model" in mia.reason
    assert report.verdict.status != "pass"  # type: ignore[union-attr]


def test_a_declared_dp_claim_is_stated_and_tested_from_below(
        external: ExternalLM, tmp_path: Path) -> None:
    claim = tmp_path / "claim.yaml"
    claim.write_text("epsilon: 1.0\ndelta: 1.0e-5\nunit_of_privacy: record\n")
    assert main(_args(external, tmp_path / "run", "--dp-claim", str(claim))) == 0
    report = read_report(tmp_path / "run" / "report.json")
    assert report.declared_dp is not None and report.declared_dp.claim.epsilon == 1.0
    # 40 non-members resolve no reported FPR (1% needs 1,000): the test could not have failed
    assert not report.declared_dp.informative and report.declared_dp.nonmembers_needed == 1000
    controls = {c.id: c for c in report.verdict.controls}  # type: ignore[union-attr]
    assert controls["dp-audit"].status == "NOT INFORMATIVE"
    assert "ε = 1" in controls["dp-guarantee"].reason


def test_audit_model_python_api_returns_the_report_it_wrote(
        external: ExternalLM, tmp_path: Path) -> None:
    import privaudit

    report = privaudit.audit_model(external.base, adapter=external.adapter, task="causal-lm",
                                   members=external.members, nonmembers=external.nonmembers,
                                   out=tmp_path / "run")
    assert report == read_report(tmp_path / "run" / "report.json")


@pytest.mark.parametrize(("change", "message"), [
    ({"--task": "regression"}, "--task: must be one of causal-lm, classification"),
    ({"--adapter": "MEMBERS_DIR"}, "--adapter: must be a peft adapter directory"),
    ({"--base": "MEMBERS_DIR"}, "--base: must be"),
    ({"--nonmembers": "MEMBERS"}, "--nonmembers: 40 record id(s) are also in --members"),
])
def test_bad_audit_model_input_exits_2_naming_the_option_and_writes_nothing(
        external: ExternalLM, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        change: dict[str, str], message: str) -> None:
    args = _args(external, tmp_path / "run")
    for option, value in change.items():
        value = {"MEMBERS_DIR": str(external.members.parent),
                 "MEMBERS": str(external.members)}.get(value, value)
        args[args.index(option) + 1] = value
    assert main(args) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "run").exists()


def test_audit_model_refuses_an_out_directory_that_is_not_empty(
        external: ExternalLM, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    assert main(_args(external, tmp_path / "run")) == 2
    assert "--out: must be a new or empty directory" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["keep.txt"]


@pytest.fixture(scope="module")
def erasure(external: ExternalLM, tmp_path_factory: pytest.TempPathFactory) -> Erasure:
    return train_oracle(external, tmp_path_factory.mktemp("erasure"))


def _erase_args(lm: ExternalLM, er: Erasure, unlearned: Path, out: Path) -> list[str]:
    return _args(lm, out, "--unlearned", str(unlearned), "--forget", str(er.forget),
                 "--oracle", str(er.oracle))


def test_the_oracle_supplied_as_the_unlearned_model_is_judged_identical_to_retraining(
        external: ExternalLM, erasure: Erasure, tmp_path: Path) -> None:
    assert main(_erase_args(external, erasure, erasure.oracle, tmp_path / "run")) == 0
    report = read_report(tmp_path / "run" / "report.json")
    (u,) = report.unlearning
    assert u.method == "supplied" and u.request_id == "forget" and u.forget.n_records == 10
    assert u.forget.privleak == 0.0 and u.forget.ks_pvalue == 1.0
    assert not u.verification_flags and "did not run this unlearning" in (u.stopping_reason or "")
    erasure_line = next(c for c in report.verdict.controls  # type: ignore[union-attr]
                        if c.id == "erasure")
    assert erasure_line.status in ("PASS", "NOT INFORMATIVE") and erasure_line.applicable
    # every model is attacked, the unlearned ones on the 30 members they kept
    kept = {a.model: a.n_members for a in report.attacks if a.attack == "loss"}
    assert kept == {"external": 40, "supplied/forget": 30, "oracle/forget": 30}


def test_a_supplied_unlearned_model_that_changed_nothing_still_shows_the_trained_forget_auc(
        external: ExternalLM, erasure: Erasure, tmp_path: Path) -> None:
    assert main(_erase_args(external, erasure, external.adapter, tmp_path / "run")) == 0
    f = read_report(tmp_path / "run" / "report.json").unlearning[0].forget
    assert f.mia_auc == f.mia_auc_original  # the same model before and after
    assert f.privleak is not None and f.privleak < 0  # it remembers more than retraining
    assert f.mia_auc_oracle is not None and f.mia_auc_oracle < f.mia_auc


@pytest.mark.parametrize(("extra", "message"), [
    (("--unlearned", "ADAPTER"), "--unlearned and --forget come together"),
    (("--unlearned", "ADAPTER", "--forget", "NONMEMBERS"),
     "--forget: 40 record id(s) are not in --members"),
    (("--unlearned", "MEMBERS_DIR", "--forget", "MEMBERS"), "--unlearned: must be a peft"),
])
def test_bad_unlearning_input_exits_2_naming_the_option_and_writes_nothing(
        external: ExternalLM, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        extra: tuple[str, ...], message: str) -> None:
    names = {"ADAPTER": str(external.adapter), "NONMEMBERS": str(external.nonmembers),
             "MEMBERS": str(external.members), "MEMBERS_DIR": str(external.members.parent)}
    assert main(_args(external, tmp_path / "run", *(names.get(e, e) for e in extra))) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "run").exists()


def _classifier(root: Path) -> tuple[Path, Path, Path, Path]:
    """A tiny BERT classifier with a LoRA adapter (its head in modules_to_save), trained with
    plain transformers + peft on 30 labelled members (5 full-batch AdamW steps at lr 0.01,
    ``CLASSIFIER_RECIPE``); its labels named in config.label2id. 30 more records it never saw
    are written to ``population.jsonl``."""
    import torch
    import transformers as tf
    from peft import LoraConfig, get_peft_model

    from privaudit.mechanisms.models import minilm_path

    records = [json.loads(line) for line in (Path(__file__).resolve().parents[1] / "data"
               / "memorise.jsonl").read_text().splitlines() if line.strip()][:90]
    labels = sorted({r["label"] for r in records})
    tok = tf.AutoTokenizer.from_pretrained(str(minilm_path()))
    torch.manual_seed(0)
    config = tf.BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=64,
                           num_labels=len(labels), label2id={n: i for i, n in enumerate(labels)},
                           id2label=dict(enumerate(labels)))
    tf.BertForSequenceClassification(config).save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    base = tf.BertForSequenceClassification.from_pretrained(str(root / "base"))
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"],
                                            task_type="SEQ_CLS"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    members = records[:30]
    for _ in range(5):
        batch = tok([r["text"] for r in members], return_tensors="pt", padding=True)
        y = torch.tensor([labels.index(r["label"]) for r in members])
        loss = model(**batch, labels=y).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(root / "adapter")
    paths = []
    for name, part in (("members", members), ("nonmembers", records[30:60]),
                       ("population", records[60:])):
        path = root / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in part))
        paths.append(path)
    return root / "base", root / "adapter", paths[0], paths[1]


def test_audit_model_reads_a_classifier_s_labels_by_its_label2id(tmp_path: Path) -> None:
    base, adapter, members, nonmembers = _classifier(tmp_path)
    args = ["audit-model", "--base", str(base), "--adapter", str(adapter), "--task",
            "classification", "--members", str(members), "--nonmembers", str(nonmembers)]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    report = read_report(tmp_path / "run" / "report.json")
    assert [a.attack for a in report.attacks] == ["loss"]  # no base to compare a head with
    assert report.utility.metric == "accuracy" and report.data.labels is not None
    assert set(report.utility.baselines) == {"majority_class", "tfidf_logreg"}
    assert report.data.labels == sorted(report.data.labels)  # label2id's order here
    odd = tmp_path / "odd.jsonl"
    odd.write_text(members.read_text().replace('"label": "', '"label": "x-', 1))
    assert main([*args[:-4], "--members", str(odd), "--nonmembers", str(nonmembers),
                 "--out", str(tmp_path / "run2")]) == 2
    assert not (tmp_path / "run2").exists()
