"""Reference models: balanced keep masks, the run's own training recipe, and the cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from privaudit.attacks import references as references_module
from privaudit.attacks.reference_plan import ReferencePlan, reference_plan
from privaudit.attacks.references import balanced_keep
from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.audit.pipeline import run_audit
from privaudit.core.errors import ConfigError
from privaudit.core.progress import PlainReporter
from tests.attacks.helpers import attack_setup
from tests.conftest import merge

QUIET = PlainReporter(quiet=True)


@pytest.mark.parametrize("count", [2, 4, 8, 16])
def test_every_record_is_in_for_exactly_half_of_any_even_prefix_of_references(count) -> None:
    keep = balanced_keep(count, 101, seed=3)
    for prefix in range(2, count + 1, 2):
        assert (keep[:prefix].sum(axis=0) == prefix // 2).all()
    assert (keep[0::2] == ~keep[1::2]).all()  # complementary pairs
    assert (np.abs(keep.sum(axis=1) - 101 / 2) <= 0.5).all()  # each trains on a half


def test_keep_masks_are_a_function_of_the_seed_and_nested_across_counts() -> None:
    assert (balanced_keep(8, 50, seed=1)[:4] == balanced_keep(4, 50, seed=1)).all()
    assert not (balanced_keep(4, 50, seed=1) == balanced_keep(4, 50, seed=2)).all()


def test_an_odd_reference_count_is_refused() -> None:
    with pytest.raises(ConfigError, match="even"):
        balanced_keep(3, 10, seed=0)
    with pytest.raises(ConfigError) as err:
        config_from_dict({"attacks": {"references": {"count": 3}}})
    assert err.value.problems[0].startswith("attacks.references: count must be even")


def _plan(cfg: AuditConfig, noise_multiplier: float | None = None) -> ReferencePlan:
    return reference_plan(cfg.recipe, cfg.attacks.references, model=cfg.model,
                          partition=cfg.data.partition, noise_multiplier=noise_multiplier)


def test_reference_recipe_is_the_run_recipe_with_overrides_and_without_encryption(
    tiny_config_dict,
) -> None:
    raw = merge(tiny_config_dict, {
        "privacy": {"dp": {"mode": "client", "noise_multiplier": 0.5}},
        "secure_aggregation": {"enabled": True},
        "attacks": {"references": {"count": 2, "overrides": {"federation": {"rounds": 1}}}},
    })
    cfg = config_from_dict(raw)
    ref = _plan(cfg).recipe
    assert ref.dp == cfg.privacy.dp
    assert ref.federation.rounds == 1
    assert ref.federation.model_copy(update={"rounds": cfg.federation.rounds}) == cfg.federation
    assert (ref.task, ref.seed) == (cfg.model.task, cfg.seed)
    assert not ref.secure_aggregation.enabled
    assert ref.secure_aggregation.model_copy(update={"enabled": True}) == cfg.secure_aggregation


def test_dp_references_reuse_the_targets_calibrated_noise(tiny_config_dict) -> None:
    dp = {"mode": "record", "target_epsilon": 8.0, "delta": 1e-5}
    cfg = config_from_dict(merge(tiny_config_dict, {"privacy": {"dp": dp},
                                                    "attacks": {"references": {"count": 2}}}))
    ref = _plan(cfg, noise_multiplier=0.91).recipe
    assert (ref.dp.noise_multiplier, ref.dp.target_epsilon) == (0.91, None)
    assert ref.dp.max_grad_norm == cfg.privacy.dp.max_grad_norm
    own = merge(tiny_config_dict, {"privacy": {"dp": dp}, "attacks": {"references": {
        "count": 2, "overrides": {"privacy": {"dp": {"target_epsilon": 4.0}}}}}})
    ref = _plan(config_from_dict(own), noise_multiplier=0.91).recipe
    assert ref.dp.target_epsilon == 4.0  # an explicit override wins


def test_bad_overrides_name_the_field(tiny_config_dict) -> None:
    raw = merge(tiny_config_dict, {"attacks": {"references": {
        "count": 2, "overrides": {"federation": {"rounds": 0}}}}})
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert any(p.startswith("attacks.references.overrides: federation.rounds")
               for p in err.value.problems)


def _with_refs(raw: dict[str, Any], count: int = 2) -> dict[str, Any]:
    return merge(raw, {"attacks": {"references": {"count": count}, "battery": [
        {"name": "loss"}, {"name": "rmia"}]}})


def test_references_train_through_train_federation_with_the_run_config(
    tiny_config_dict, run_dir: Path, monkeypatch
) -> None:
    seen: list[Any] = []
    real = references_module.train_federation

    def spy(cfg, bundle, clients, test, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((cfg, clients, kwargs))
        return real(cfg, bundle, clients, test, **kwargs)

    monkeypatch.setattr(references_module, "train_federation", spy)
    cfg = config_from_dict(_with_refs(tiny_config_dict))
    outcome = run_audit(cfg, run_dir, reporter=QUIET)
    assert len(seen) == 2
    training = [json.loads((run_dir / "data" / f"client-{i}.json").read_text())["ids"]
                for i in range(cfg.federation.clients)]
    held_out = [json.loads((run_dir / "data" / f"{role}.json").read_text())["ids"]
                for role in ("audit-nonmembers", "test")]
    population = set().union(*training, *held_out)  # every training and held-out record
    trained_on = [set().union(*(c.record_ids for c in clients.values())) for _, clients, _ in seen]
    assert trained_on[0] | trained_on[1] == population
    assert not trained_on[0] & trained_on[1]
    for ref_cfg, clients, kwargs in seen:  # ref_cfg: the TrainingRecipe trained with
        assert ref_cfg.federation == cfg.federation and ref_cfg.dp == cfg.privacy.dp
        assert len(clients) == cfg.federation.clients
        assert kwargs["engine"] == "inprocess"
    assert outcome.report.references is not None
    assert outcome.report.references.count == 2


def test_a_second_run_reuses_the_cached_references(tiny_config_dict, run_dir: Path) -> None:
    cfg = config_from_dict(_with_refs(tiny_config_dict, count=4))
    first = run_audit(cfg, run_dir, reporter=QUIET).report.references
    second = run_audit(cfg, run_dir, reporter=QUIET, resume=True).report.references
    assert first is not None and second is not None
    assert (first.reused, second.reused) == (0, 4)
    assert second.seconds == 0.0 and first.seconds > 0.0
    assert second.adapter_sha256 == first.adapter_sha256
    stored = list((run_dir / "models" / "references").glob("*/keep.json"))
    assert len(stored) == 1
    keep = json.loads(stored[0].read_text())
    assert len(keep["keep"]) == 4 and len(keep["keep"][0]) == len(keep["population_ids"])

    more = config_from_dict(_with_refs(tiny_config_dict, count=6))
    # another config cannot run into this directory (a run writes only into a new one, or
    # resumes its own config); the cache is read as a later stage of this run would read it
    third = attack_setup(more, run_dir)[1].references
    assert third is not None and third.reused == 4  # the first four are a valid subset

    changed = config_from_dict(merge(_with_refs(tiny_config_dict, count=4), {
        "attacks": {"references": {"overrides": {"federation": {"learning_rate": 0.002}}}}}))
    fourth = attack_setup(changed, run_dir)[1].references
    assert fourth is not None and fourth.reused == 0
    assert fourth.recipe_sha256 != first.recipe_sha256


def test_a_reference_whose_clients_are_too_small_for_dp_names_the_references(
    tiny_config_dict, run_dir: Path
) -> None:
    # the target's clients (67 and 69 records) take DP batches of 64; a reference's (~54) not
    dp = {"mode": "record", "noise_multiplier": 1.0, "delta": 1e-5, "batch_size": 64}
    cfg = config_from_dict(merge(_with_refs(tiny_config_dict), {"privacy": {"dp": dp}}))
    with pytest.raises(ConfigError) as err:
        run_audit(cfg, run_dir, reporter=QUIET)
    assert err.value.problems[0].startswith("attacks.references: reference 0 trains on half")
