"""``privaudit audit-model --references N --reference-recipe FILE --population FILE``:
reference models trained by privaudit with the recipe the user declares, on halves of the
audited records and the population (``privaudit/audit/external_references.py``), and the
check that they train like the audited model (``privaudit/attacks/reference_fit.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from privaudit.attacks.results import AttackResult
from privaudit.audit.cli import main
from privaudit.reports.schema import Report, read_report
from tests.audit.external_lm import EPOCHS, ExternalLM, train_external_lm

REFERENCE_ATTACKS = {"lira", "lira-offline"}
NOT_LIKE = "the references do not train like the attacked model"


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory) -> ExternalLM:
    return train_external_lm(tmp_path_factory.mktemp("external"))


def _args(lm: ExternalLM, out: Path, *extra: str) -> list[str]:
    return ["audit-model", "--base", str(lm.base), "--adapter", str(lm.adapter), "--task",
            "causal-lm", "--members", str(lm.members), "--nonmembers", str(lm.nonmembers),
            "--population", str(lm.population), "--references", "4", "--reference-recipe",
            str(lm.recipe), "--out", str(out), *extra]


def _recipe(lm: ExternalLM, root: Path, *, epochs: int) -> Path:
    path = root / f"recipe-{epochs}.yaml"
    path.write_text(lm.recipe.read_text().replace(f"epochs: {EPOCHS}", f"epochs: {epochs}"))
    return path


@pytest.fixture(scope="module")
def with_references(external: ExternalLM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("refs") / "run"
    assert main(_args(external, out)) == 0
    return out


def _by_attack(report: Report) -> dict[str, AttackResult]:
    return {a.attack: a for a in report.attacks if a.model == "external"}


def test_references_trained_by_the_declared_recipe_run_lira_and_the_report_says_how(
        with_references: Path, external: ExternalLM) -> None:
    report = read_report(with_references / "report.json")
    refs = report.references
    assert refs is not None and refs.count == 4 and refs.population == "supplied"
    members, nonmembers, population = (len(p.read_text().splitlines())
                                       for p in (external.members, external.nonmembers,
                                                 external.population))
    assert refs.population_size == members + nonmembers + population
    assert refs.trained_by is not None
    assert "recipe.yaml" in refs.trained_by and "population.jsonl" in refs.trained_by
    assert len(set(refs.adapter_sha256)) == 4  # four different models
    attacks = _by_attack(report)
    assert set(attacks) >= REFERENCE_ATTACKS
    for name in REFERENCE_ATTACKS:
        assert attacks[name].n_references == 4
        assert not any(NOT_LIKE in w for w in attacks[name].warnings)
    assert attacks["loss"].n_references == 0
    # the references are what makes LiRA stronger than the loss alone, on this model
    assert attacks["lira"].auc_ci_low > attacks["loss"].auc
    roles = {r.role: r for r in report.data.roles}
    assert roles["reference-population"].n_records == population
    resolved = (with_references / "audit-model.yaml").read_text()
    assert f"epochs: {EPOCHS}" in resolved and "recipe.yaml" in resolved
    assert main(["verify", str(with_references)]) == 0


def test_every_audited_record_is_in_exactly_half_of_the_references(
        with_references: Path, external: ExternalLM) -> None:
    (stored,) = (with_references / "models" / "references").glob("*/keep.json")
    keep = json.loads(stored.read_text())
    masks = np.array([[c == "1" for c in row] for row in keep["keep"]])
    assert masks.shape == (4, len(keep["population_ids"]))
    assert (masks.sum(axis=0) == 2).all()
    audited = {json.loads(line)["id"] for p in (external.members, external.nonmembers)
               for line in p.read_text().splitlines()}
    assert audited <= set(keep["population_ids"])


def test_a_declared_recipe_that_is_not_the_model_s_is_flagged_on_every_reference_score(
        external: ExternalLM, tmp_path: Path) -> None:
    recipe = _recipe(external, tmp_path, epochs=2)  # the model trained for EPOCHS
    args = _args(external, tmp_path / "run")
    args[args.index("--reference-recipe") + 1] = str(recipe)
    assert main(args) == 0
    attacks = _by_attack(read_report(tmp_path / "run" / "report.json"))
    for name in REFERENCE_ATTACKS:
        flagged = [w for w in attacks[name].warnings if NOT_LIKE in w]
        assert flagged and "learned their members less" in flagged[0]
    assert not any(NOT_LIKE in w for w in attacks["loss"].warnings)


@pytest.mark.parametrize(("change", "message"), [
    ({"--references": "3"}, "--references: must be an even number >= 2"),
    ({"--references": "2"}, "--references: 2 reference models run no attack here"),
    ({"--references": "0"}, "--references N and --reference-recipe FILE come together"),
    ({"--population": "MEMBERS"}, "--population: 40 record id(s) are also audited"),
    ({"--reference-recipe": "RECIPE:epoch: 3\n"}, "--reference-recipe:"),
    ({"--reference-recipe": "RECIPE:dp: {mode: client}\n"}, "mode must be none or record"),
    ({"--reference-recipe": "RECIPE:learning_rate: -1\n"}, "learning_rate"),
])
def test_bad_reference_options_exit_2_naming_the_option_and_write_nothing(
        external: ExternalLM, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        change: dict[str, str], message: str) -> None:
    args = _args(external, tmp_path / "run")
    for option, value in change.items():
        if value.startswith("RECIPE:"):
            (tmp_path / "bad.yaml").write_text(value.removeprefix("RECIPE:"))
            value = str(tmp_path / "bad.yaml")
        args[args.index(option) + 1] = {"MEMBERS": str(external.members)}.get(value, value)
    assert main(args) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert message in err
    assert not (tmp_path / "run").exists()


def test_references_need_the_adapter_they_are_shaped_like(
        external: ExternalLM, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(external, tmp_path / "run")
    del args[args.index("--adapter"):args.index("--adapter") + 2]
    assert main(args) == 2
    assert "--references: needs --adapter" in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "run").exists()


def test_a_classifier_s_references_run_rmia_with_the_population_as_its_points(
        tmp_path: Path) -> None:
    from tests.audit.test_audit_model import _classifier

    base, adapter, members, nonmembers = _classifier(tmp_path)
    recipe = tmp_path / "recipe.yaml"  # _classifier's: 5 epochs at lr 0.01, batches of 30
    recipe.write_text("epochs: 5\nbatch_size: 30\nlearning_rate: 0.01\n")
    assert main(["audit-model", "--base", str(base), "--adapter", str(adapter), "--task",
                 "classification", "--members", str(members), "--nonmembers", str(nonmembers),
                 "--population", str(tmp_path / "population.jsonl"), "--references", "2",
                 "--reference-recipe", str(recipe), "--out", str(tmp_path / "run")]) == 0
    report = read_report(tmp_path / "run" / "report.json")
    rmia = next(a for a in report.attacks if a.attack == "rmia")
    assert rmia.n_references == 2 and rmia.n_members == 30 and rmia.n_nonmembers == 30
    assert {a.attack for a in report.attacks} == {"loss", "rmia"}  # LiRA needs 4
    assert report.references is not None and report.references.utility_metric == "accuracy"
    assert report.references.population_size == 90
