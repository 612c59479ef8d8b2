"""The erase stage inside the pipeline: three requests (subject, record, client) served by
every method and the oracle on a run that memorises its records."""

from __future__ import annotations

import json

import torch

from privaudit.mechanisms.models import load_adapter, state_sha256
from privaudit.reports.schema import Report
from privaudit.unlearning.base import UnlearnedModel, available_unlearners
from tests.unlearning.conftest import ErasedRun

ASCENT = ("gradient_ascent", "graddiff", "npo")
ORDER = ("cli", "subj", "rec")


def _erased_after(run: ErasedRun, request: str) -> set[str]:
    """Every record erased once ``request`` is served (requests build on each other)."""
    upto = ORDER[: ORDER.index(request) + 1]
    return {i for r in upto for i in run.requests[r]}


def _results(run: ErasedRun, request: str) -> dict[str, object]:
    return {r.method: r for r in run.report.unlearning if r.request_id == request}


def test_every_request_is_served_by_every_method_and_the_oracle(erased_run: ErasedRun) -> None:
    methods = ["oracle", *available_unlearners()]
    got = [(r.request_id, r.method) for r in erased_run.report.unlearning]
    assert got == [(q, m) for q in ORDER for m in methods]
    on_disk = Report.from_file(erased_run.run_dir / "report.json")
    assert [r.model_dump() for r in on_disk.unlearning] == [
        r.model_dump() for r in erased_run.report.unlearning]
    for r in erased_run.report.unlearning:
        path = erased_run.run_dir / r.model_path
        assert r.model_path == f"models/{r.method}/{r.request_id}/adapter.safetensors"
        assert UnlearnedModel.load(path).sha256 == r.model_sha256_after
        assert r.seconds > 0 and r.examples_processed > 0
        assert r.oracle_seconds is not None and r.speedup_vs_oracle is not None
        assert r.retain.utility_metric == "accuracy" and 0 <= r.retain.utility <= 1
        assert r.exactness == ("exact" if r.method in ("oracle", "sisa") else "approximate")
    assert all(r.speedup_vs_oracle == 1.0 for r in erased_run.report.unlearning
               if r.method == "oracle")
    assert erased_run.report.run.seconds["erase"] > 0
    assert "sisa_train" in erased_run.report.run.seconds


def test_no_training_step_after_a_request_touches_an_erased_record(
    erased_run: ErasedRun,
) -> None:
    """Every batch built with gradients on during the erase stage was recorded per job."""
    for request in ORDER:
        erased = _erased_after(erased_run, request)
        for method in ["oracle", *available_unlearners()]:
            touched = erased_run.touched[(request, method)]
            assert touched, f"{request}/{method}: the recorder saw no training step"
            if method in ASCENT:  # ascent steps use this request's forget set, and only it
                assert touched & erased <= set(erased_run.requests[request]), (request, method)
            else:
                assert not touched & erased, (request, method)


def test_oracle_trains_on_exactly_the_retained_records(erased_run: ErasedRun) -> None:
    training = {r.id for r in erased_run.data.training}
    for request in ORDER:
        assert erased_run.touched[(request, "oracle")] == training - _erased_after(
            erased_run, request)


def test_lineage_names_models_trained_on_the_data_and_models_produced_after(
    erased_run: ErasedRun,
) -> None:
    lineage = json.loads((erased_run.run_dir / "unlearning/rec/lineage.json").read_text())
    before = {e["path"] for e in lineage["trained_on_erased_data"]}
    assert {"models/global/round-001/adapter.safetensors",
            "models/global/round-002/adapter.safetensors"} <= before
    assert "models/oracle/subj/adapter.safetensors" in before  # earlier requests' models
    assert "models/npo/cli/adapter.safetensors" in before
    assert any(p.startswith("models/sisa/") and "/shard-" in p for p in before)
    after = lineage["produced_after_request"]
    assert [e["method"] for e in after] == ["oracle", *available_unlearners()]
    assert all(e["erased_records_trained_on"] == 0 for e in after)
    assert {e["method"] for e in after if e["erased_records_used_for_ascent"]} == set(ASCENT)
    assert lineage["n_records"] == 1 and lineage["clients"] == ["client-1"]
    result = _results(erased_run, "rec")["oracle"]
    assert result.lineage_path == "unlearning/rec/lineage.json"  # type: ignore[attr-defined]


def test_gradient_methods_raise_forget_loss_to_the_nonmember_level_by_the_rule(
    erased_run: ErasedRun,
) -> None:
    for method in ASCENT:
        r = _results(erased_run, "subj")[method]
        forget = r.forget  # type: ignore[attr-defined]
        assert forget.nonmember_mean_loss is not None
        assert forget.mean_loss_before < forget.nonmember_mean_loss  # it memorised them
        assert forget.mean_loss_after >= forget.nonmember_mean_loss
        assert "stopping rule after" in r.stopping_reason  # type: ignore[attr-defined]


def test_federaser_on_a_client_request_ends_closer_to_the_oracle(erased_run: ErasedRun) -> None:
    root = erased_run.run_dir
    trained = load_adapter(root / "models/global/round-002/adapter.safetensors")
    oracle = load_adapter(root / "models/oracle/cli/adapter.safetensors")
    federaser = load_adapter(root / "models/federaser/cli/adapter.safetensors")

    def distance(a: dict[str, torch.Tensor]) -> float:
        return float(sum(((a[n] - oracle[n]) ** 2).sum() for n in oracle) ** 0.5)

    assert distance(federaser) < distance(trained)
    forget = _results(erased_run, "cli")["federaser"].forget  # type: ignore[attr-defined]
    assert forget.mean_loss_oracle is not None
    # the erased client's records are no longer fit as the trained model fit them (the
    # recovered model's forget loss can overshoot the oracle's: 2.31 vs 1.15 from 0.66 on
    # this fixture, so "closer in loss" is no claim FedEraser makes; closer in parameters is)
    assert forget.mean_loss_after > forget.mean_loss_before
    assert forget.n_records == len(erased_run.requests["cli"])
    assert state_sha256(trained) == _results(erased_run, "cli")[
        "federaser"].model_sha256_before  # type: ignore[attr-defined]


def test_sisa_in_the_pipeline_is_exact_and_faster_than_its_oracle(erased_run: ErasedRun) -> None:
    for request in ("subj", "rec"):
        r = _results(erased_run, request)["sisa"]
        assert any(f.startswith("exactness verified") for f in r.flags)  # type: ignore[attr-defined]
        assert r.forget.mean_loss_after == r.forget.mean_loss_oracle  # type: ignore[attr-defined]
