"""``privaudit audit-model``: audit a model trained elsewhere, without retraining it.

Inputs: a local base model directory, optionally a peft LoRA adapter directory, the records
it was trained on (members) and records it never saw (non-members), optionally a declared DP
claim. Every input is checked before anything is written (exit 2 naming the option).

What runs, on the members against the non-members:

- the reference-free attacks: LOSS, and for a causal LM zlib, Min-K% and Min-K%++;
- the reference-to-base attack (the member's loss under the adapted model minus under the
  base model, ``reference_model: base``) when an adapter is given, since the base is then
  known exactly; without one there is no base to compare with and the report says so;
- with ``--references N --reference-recipe FILE [--population FILE]``, LiRA (online and
  offline, N >= 4) and, for a classifier, RMIA (``--population`` its population points) with N
  reference models that privaudit trains by the declared recipe on halves of the audited
  records and the population (:mod:`privaudit.audit.external_references`); the report's
  ``references`` section says how they were made;
- the blind baseline (:mod:`privaudit.attacks.blind`): if the texts alone separate members
  from non-members, the split leaks and the membership verdict is NOT INFORMATIVE;
- utility on the non-members (accuracy, or perplexity for a causal LM);
- a declared DP claim tested from below by the attacks (:mod:`privaudit.attacks.declared_dp`).

The report is the run's :class:`~privaudit.reports.schema.Report` with ``run.kind:
external``: same verdict, crosswalk, renderings, manifest and signature, so ``privaudit
gate`` and ``privaudit verify`` read it unchanged. What a model trained elsewhere cannot
show is NOT EVALUATED with the reason: no DP accounting, no secure aggregation, no erasure.
A supplied unlearned model is judged by :mod:`privaudit.audit.external_erasure`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import yaml

from privaudit.attacks.battery import AttackSetup, run_battery
from privaudit.attacks.config import AttacksConfig, AttackSpec
from privaudit.attacks.declared_dp import test_declared_claim
from privaudit.attacks.results import AttackResult, BlindBaseline, ReferenceModels
from privaudit.audit.external_erasure import (
    SUPPLIED,
    SuppliedErasure,
    adapter_weights,
    judge_supplied,
)
from privaudit.audit.external_model import ExternalModel, adapter_problems, load_external
from privaudit.audit.external_references import (
    ReferenceRequest,
    reference_request,
    train_external_references,
)
from privaudit.audit.outpaths import check_outputs, output_dir_problems
from privaudit.audit.stages.attack import split_check
from privaudit.audit.stages.utility import measure_utility
from privaudit.core.commitment import run_seed_commitment
from privaudit.core.errors import ConfigError
from privaudit.core.hashing import canonical_sha256, ordered_ids_sha256
from privaudit.core.params import format_validation_error
from privaudit.core.progress import PlainReporter, Reporter
from privaudit.core.provenance import capture_environment
from privaudit.core.rundir import RunDir, sha256_file, write_json_atomic, write_text_atomic
from privaudit.core.safe_yaml import load_yaml_file
from privaudit.mechanisms.data.records import Record, load_records
from privaudit.mechanisms.data.splits import RoleSummary
from privaudit.mechanisms.dp.results import DeclaredDP
from privaudit.mechanisms.model.config import ModelConfig
from privaudit.mechanisms.models import base_model_problems, state_sha256
from privaudit.mechanisms.tasks import EncodedSet, encode_records
from privaudit.reports.render import signing_info, write_report
from privaudit.reports.schema import (
    DataGovernance,
    DataRole,
    Provenance,
    Report,
    RunInfo,
    Utility,
)
from privaudit.unlearning.results import UnlearningResult

__all__ = ["MODEL_NAME", "TASKS", "audit_model"]

TASKS = ("causal-lm", "classification")
#: The audited model's name in ``attacks[].model``.
MODEL_NAME = "external"


def _battery(task: str, with_base: bool, refs: ReferenceRequest | None) -> list[AttackSpec]:
    names = ["loss"] + (["zlib", "min_k", "min_k_pp"] if task == "causal-lm" else [])
    if with_base and task == "causal-lm":
        names.append("reference")
    return [AttackSpec(name=n) for n in names] + [
        AttackSpec(name=n, params=p) for n, p in (refs.battery(task) if refs else [])]


def _load_claim(path: Path) -> DeclaredDP:
    from pydantic import ValidationError

    document = load_yaml_file(path, what=f"--dp-claim: {path}")
    try:
        return DeclaredDP.model_validate(document)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        raise ConfigError(f"--dp-claim: {path}: {problems[0]}",
                          [f"--dp-claim: {path}: {p}" for p in problems]) from None


def _check(base: Path, adapter: Path | None, task: str, out: Path) -> None:
    """Every problem with the options, before any work (one ConfigError listing them)."""
    if task not in TASKS:
        raise ConfigError(f"--task: must be one of {', '.join(TASKS)} (got {task!r})")
    problems = [p.replace("model.base:", "--base:")
                for p in base_model_problems(ModelConfig(base=str(base), task=task))]  # type: ignore[arg-type]
    if adapter is not None:
        problems += adapter_problems(adapter)
    problems += output_dir_problems(out, "--out")
    if out.is_dir() and any(out.iterdir()):
        problems.append(f"--out: must be a new or empty directory (got '{out}')")
    check_outputs(problems)


def _records(members: Path, nonmembers: Path, task: str) -> tuple[list[Record], list[Record]]:
    need = task == "classification"
    ins, outs = (load_records(members, need_label=need), load_records(nonmembers, need_label=need))
    both = sorted({r.id for r in ins} & {r.id for r in outs})
    if both:
        raise ConfigError(f"--nonmembers: {len(both)} record id(s) are also in --members "
                          f"(first: {both[:3]}); a record is a member or a non-member")
    for option, recs in (("--members", ins), ("--nonmembers", outs)):
        if len(recs) < 2:
            raise ConfigError(f"{option}: at least 2 records are needed (got {len(recs)})")
    return ins, outs


def _role(role: str, records: Sequence[Record], path: Path, preparation: str) -> DataRole:
    return DataRole(**vars(RoleSummary.of(role, records, source=path.name,
                                          preparation=preparation)))


def audit_model(
    base: str | Path,
    *,
    task: str,
    members: str | Path,
    nonmembers: str | Path,
    adapter: str | Path | None = None,
    dp_claim: str | Path | None = None,
    unlearned: str | Path | None = None,
    forget: str | Path | None = None,
    oracle: str | Path | None = None,
    population: str | Path | None = None,
    references: int = 0,
    reference_recipe: str | Path | None = None,
    out: str | Path = "runs/audit-model",
    sign_key: Path | None = None,
    max_length: int = 128,
    seed: int = 0,
    formats: Sequence[str] = ("html", "md"),
    reporter: Reporter | None = None,
) -> Report:
    """Audit the model in ``base`` (with ``adapter``) on ``members`` vs ``nonmembers`` and
    write the signed report into ``out`` (new or empty); returns the finalized report.
    ``unlearned`` (an adapter on ``base`` after erasing the ``forget`` records, which must be
    members) is judged against ``oracle`` (retrained without them) when given
    (:mod:`privaudit.audit.external_erasure`). ``references`` reference models trained by
    ``reference_recipe`` on halves of the audited records and ``population`` run LiRA and
    RMIA (:mod:`privaudit.audit.external_references`)."""
    reporter = reporter or PlainReporter()
    base, out = Path(base), Path(out)
    adapter = Path(adapter) if adapter is not None else None
    _check(base, adapter, task, out)
    try:
        signing_info(sign_key)
    except ConfigError as exc:
        raise ConfigError(f"--sign: {exc}") from None
    ins, outs = _records(Path(members), Path(nonmembers), task)
    claim = _load_claim(Path(dp_claim)) if dp_claim is not None else None
    refs = reference_request(
        references, None if reference_recipe is None else Path(reference_recipe),
        None if population is None else Path(population), adapter=adapter,
        need_label=task == "classification", audited=[*ins, *outs])
    erased = _forget_records(ins, adapter, unlearned, forget, oracle, task)
    t0 = time.perf_counter()
    every = [*ins, *outs, *(refs.population if refs else ())]
    labels_found = sorted({r.label or "" for r in every}) if task == "classification" else ()
    external = load_external(base, task=task, adapter=adapter, labels_found=labels_found)
    seconds = {"load": time.perf_counter() - t0}
    erasure = None
    if erased is not None and unlearned is not None and forget is not None:
        model = external.bundle.model
        erasure = SuppliedErasure(
            request_id=Path(forget).stem, forget=erased, unlearned_path=Path(unlearned),
            unlearned=adapter_weights(model, Path(unlearned), option="--unlearned"),
            oracle=None if oracle is None else adapter_weights(model, Path(oracle),
                                                               option="--oracle"),
            oracle_path=None if oracle is None else Path(oracle))
    inputs = {"base": base, "adapter": adapter, "members": Path(members),
              "nonmembers": Path(nonmembers), "dp_claim": Path(dp_claim) if dp_claim else None,
              "forget": Path(forget) if forget else None,
              "unlearned": Path(unlearned) if unlearned else None,
              "oracle": Path(oracle) if oracle else None,
              "population": Path(population) if population else None,
              "reference_recipe": Path(reference_recipe) if reference_recipe else None}
    return _audit(RunDir(out).create(), external, ins=ins, outs=outs, claim=claim,
                  erasure=erasure, refs=refs, seconds=seconds, inputs=inputs, task=task,
                  max_length=max_length, seed=seed, formats=formats, sign_key=sign_key,
                  reporter=reporter)


def _forget_records(members: list[Record], adapter: str | Path | None,
                    unlearned: str | Path | None, forget: str | Path | None,
                    oracle: str | Path | None, task: str) -> list[Record] | None:
    """The ``--forget`` records (members all), checked with the options they come with."""
    if unlearned is None and forget is None and oracle is None:
        return None
    if unlearned is None or forget is None:
        raise ConfigError("--unlearned and --forget come together (the model after erasing "
                          "the --forget records); --oracle is optional")
    if adapter is None:
        raise ConfigError("--unlearned: needs --adapter (the model before the erasure; the "
                          "unlearned model and the oracle are adapters of its shape)")
    for option, value in (("--unlearned", unlearned), ("--oracle", oracle)):
        if value is not None:
            check_outputs(p.replace("--adapter:", f"{option}:")
                          for p in adapter_problems(Path(value)))
    records = load_records(Path(forget), need_label=task == "classification")
    known = {r.id for r in members}
    strangers = [r.id for r in records if r.id not in known]
    if strangers:
        raise ConfigError(f"--forget: {len(strangers)} record id(s) are not in --members "
                          f"(first: {strangers[:3]}); only a record the model was trained on "
                          "can be erased from it")
    return records


def _record_inputs(run: RunDir, inputs: dict[str, Path | None], external: ExternalModel, *,
                   task: str, max_length: int, seed: int, battery: list[AttackSpec],
                   ins: list[Record], outs: list[Record],
                   refs: ReferenceRequest | None) -> str:
    """``audit-model.yaml`` (what was audited, each file by name and sha256) and the ids of
    the two sets under ``data/``; returns the inputs' hash (the report's config_sha256)."""
    files = {k: {"name": v.name, "sha256": sha256_file(v)} for k, v in inputs.items()
             if v is not None and v.is_file()}
    resolved = {
        "command": "audit-model", "task": task, "max_length": max_length, "seed": seed,
        "base": {"path": str(inputs["base"]), "sha256": external.bundle.base_sha256},
        "adapter": None if inputs["adapter"] is None else {
            "path": str(inputs["adapter"]),
            "adapter_config_sha256": external.bundle.adapter_config_sha256},
        "files": files, "attacks": [spec.key for spec in battery],
        "references": None if refs is None else {
            "count": refs.count, "recipe": refs.recipe.model_dump(mode="json")},
    }
    write_text_atomic(run.path("audit-model.yaml"), yaml.safe_dump(resolved, sort_keys=False))
    roles = [("audit-members", ins), ("audit-nonmembers", outs)]
    if refs is not None and refs.population:
        roles.append(("reference-population", refs.population))
    for role, recs in roles:
        ids = [r.id for r in recs]
        write_json_atomic(run.path("data", f"{role}.json"),
                          {"ids": ids, "sha256": ordered_ids_sha256(ids)})
    return canonical_sha256({k: v for k, v in resolved.items() if k != "seed"})


def _setup(run: RunDir, external: ExternalModel, *, ins: list[Record], outs: list[Record],
           refs: ReferenceRequest | None, battery: list[AttackSpec], task: str,
           max_length: int, seed: int, inputs: dict[str, Path | None],
           reporter: Reporter) -> AttackSetup:
    """What every attacked model shares, with the references trained (when asked)."""
    bundle = external.bundle
    context = canonical_sha256({"base": bundle.base_sha256, "adapter":
                                bundle.adapter_config_sha256, "task": task,
                                "max_length": max_length})

    def encode(records: list[Record]) -> EncodedSet:
        return encode_records(records, bundle.tokenizer, labels=external.labels,
                              max_length=max_length)

    setup = AttackSetup(
        cfg=AttacksConfig(battery=battery, reference_model="base"), task=task, members=ins,
        nonmembers=outs, population=list(refs.population) if refs else [], encode=encode,
        cache_dir=run.path("signals"), seed=seed, context_sha256=context,
        base_state=external.base_state or {}, population_kind="supplied")
    if refs is not None and external.base_state is not None:
        setup.references = train_external_references(
            refs.recipe, count=refs.count, bundle=bundle, base=Path(str(inputs["base"])),
            task=task, population=[*ins, *outs, *refs.population], encode=setup.encoded,
            base_state=external.base_state, seed=seed,
            cache_root=run.path("models", "references"), reporter=reporter)
    return setup


def _audit(run: RunDir, external: ExternalModel, *, ins: list[Record], outs: list[Record],
           claim: DeclaredDP | None, erasure: SuppliedErasure | None,
           refs: ReferenceRequest | None, seconds: dict[str, float],
           inputs: dict[str, Path | None], task: str, max_length: int, seed: int,
           formats: Sequence[str], sign_key: Path | None, reporter: Reporter) -> Report:
    bundle = external.bundle
    battery = _battery(task, external.base_state is not None, refs)
    config_sha = _record_inputs(run, inputs, external, task=task, max_length=max_length,
                                seed=seed, battery=battery, ins=ins, outs=outs, refs=refs)
    t0 = time.perf_counter()
    setup = _setup(run, external, ins=ins, outs=outs, refs=refs, battery=battery, task=task,
                   max_length=max_length, seed=seed, inputs=inputs, reporter=reporter)
    if setup.references is not None:
        seconds["references"] = time.perf_counter() - t0
        t0 = time.perf_counter()
    attacks = run_battery(setup, model=bundle.model, model_name=MODEL_NAME, reporter=reporter,
                          state=external.state).attacks
    measured = measure_utility(bundle.model, setup.encoded(outs), task=task, train=ins,
                               test=outs, base_state=external.base_state, seed=seed)
    metric, value = measured.metric, measured.value
    unlearning = []
    if erasure is not None:
        unlearning.append(judge_supplied(bundle.model, erasure, original=external.state,
                                         utility_before=value, encode=setup.encoded,
                                         nonmembers=outs, task=task, cfg=setup.cfg,
                                         seed=seed))
        erased_ids = frozenset(r.id for r in erasure.forget)
        for name, state in ((f"{SUPPLIED}/{erasure.request_id}", erasure.unlearned),
                            (f"oracle/{erasure.request_id}", erasure.oracle)):
            if state is not None:  # every model is attacked on the records it kept
                attacks += run_battery(setup, model=bundle.model, model_name=name, state=state,
                                       reporter=reporter, exclude_members=erased_ids).attacks
    blind = split_check(setup, reporter)
    seconds["attack"] = time.perf_counter() - t0
    if external.base_state is None:
        reporter.info("[attack] no --adapter: the reference-to-base attack needs the base "
                      "model without the fine-tuning, which a full model does not give")
    report = _report(run, external, inputs=inputs, ins=ins, outs=outs, refs=refs, task=task,
                     seed=seed, config_sha=config_sha, seconds=seconds,
                     utility=Utility(metric=metric, value=value,  # type: ignore[arg-type]
                                     n_records=measured.n_records,
                                     baselines=measured.baselines,
                                     per_model={MODEL_NAME: value}),
                     attacks=attacks, blind=blind, unlearning=unlearning, claim=claim,
                     references=setup.references_section(
                         trained_by=refs.described() if refs else None))
    t0 = time.perf_counter()
    rendered = write_report(report, run, formats=formats, sign_key=sign_key)
    reporter.info(f"[report] {run.root / 'report.html'} in {time.perf_counter() - t0:.1f} s")
    return rendered.report or report


def _report(run: RunDir, external: ExternalModel, *, inputs: dict[str, Path | None],
            ins: list[Record], outs: list[Record], refs: ReferenceRequest | None, task: str,
            seed: int, config_sha: str, seconds: dict[str, float], utility: Utility,
            attacks: list[AttackResult], blind: BlindBaseline | None,
            unlearning: list[UnlearningResult], claim: DeclaredDP | None,
            references: ReferenceModels | None) -> Report:
    bundle = external.bundle
    env = capture_environment()
    roles = [_role("audit-members", ins, inputs["members"] or Path(),
                   "supplied: records the model was trained on"),
             _role("audit-nonmembers", outs, inputs["nonmembers"] or Path(),
                   "supplied: records the model never saw")]
    if refs is not None and refs.population and refs.population_path is not None:
        roles.append(_role("reference-population", refs.population, refs.population_path,
                           "supplied: records the model never saw; the references train on "
                           "halves of them with the audited records, and RMIA compares "
                           "with them"))
    return Report(
        title=f"privaudit audit of {Path(str(inputs['base'])).name}",
        run=RunInfo(
            name=run.root.name, kind="external", config_sha256=config_sha,
            seed_commitment=run_seed_commitment(run, seed, seed_file="audit-model.yaml"),
            engine="none", task=task,  # type: ignore[arg-type]
            base_model=str(inputs["base"]), base_model_sha256=bundle.base_sha256,
            adapter_config_sha256=None if inputs["adapter"] is None
            else bundle.adapter_config_sha256,
            final_adapter_sha256=None if inputs["adapter"] is None
            else state_sha256(external.state),
            seconds=seconds),
        utility=utility, attacks=attacks, blind_baseline=blind, unlearning=unlearning,
        references=references,
        declared_dp=None if claim is None else test_declared_claim(
            claim, [a for a in attacks if a.model == MODEL_NAME]),
        data=DataGovernance(source="user files", labels=external.labels,
                            max_records_per_subject=_most_per_subject(ins), roles=roles),
        provenance=Provenance(package_versions=env["package_versions"], python=env["python"],
                              platform=env["platform"], git_commit=env["git_commit"],
                              git_dirty=env["git_dirty"],
                              data_sha256={r.role: r.sha256 for r in roles}),
    )


def _most_per_subject(records: Sequence[Record]) -> int:
    return max(Counter(r.subject_id for r in records).values(), default=0)
