"""Typed sample reports for the report and gate tests (nothing is trained)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from privaudit.attacks.resolution import min_resolvable_fpr, resolves
from privaudit.reports.schema import (
    AttackResult,
    DataGovernance,
    DataRole,
    Provenance,
    RateCI,
    Report,
    RocCurve,
    RoundUtility,
    RunInfo,
    Utility,
)

H = "ab" * 32


def _rate(value: float, low: float, high: float, nonmembers: int, fpr: float) -> RateCI:
    """The rate as the metrics write it: no point where the non-members cannot resolve fpr."""
    if resolves(nonmembers, fpr):
        return RateCI(value=value, ci_low=low, ci_high=high)
    return RateCI(value=None, ci_low=low, ci_high=high, estimable=False,
                  reason=f"{nonmembers} non-members resolve FPRs down to "
                         f"{min_resolvable_fpr(nonmembers):.3g} only")


def sample_report(*, auc: float = 0.52, tpr: float = 0.012, ci: tuple[float, float] = (0.0,
                  0.03), nonmembers: int = 2000) -> Report:
    """A classification run with one LOSS attack; numbers chosen by the caller."""
    fpr = [0.0005 * 1.6**i for i in range(20)] + [1.0]
    return Report(
        report_id="00000000-0000-4000-8000-000000000001",
        created_at="2026-01-02T03:04:05+00:00",
        title="Privacy audit of federated fine-tuning",
        run=RunInfo(name="sample", config_sha256=H, seed_commitment=H, engine="inprocess",
                    task="classification", base_model="tiny", base_model_sha256=H,
                    adapter_config_sha256=H, final_adapter_sha256=H, rounds=2, clients=2,
                    seconds={"train": 1.5}),
        utility=Utility(metric="accuracy", value=0.71, per_model={"federated": 0.71},
                        n_records=200, baselines={"majority_class": 0.3, "tfidf_logreg": 0.7},
                        per_round=[RoundUtility(round=1, value=0.6, seconds=0.5,
                                                global_sha256=H),
                                   RoundUtility(round=2, value=0.71, seconds=0.5,
                                                global_sha256=H)]),
        attacks=[AttackResult(
            attack="loss", model="federated", auc=auc, auc_ci_low=auc - 0.03,
            auc_ci_high=auc + 0.03,
            tpr_at_fpr={"0.01": _rate(tpr, ci[0], ci[1], nonmembers, 0.01),
                        "0.001": _rate(tpr / 5, 0.0, ci[1] / 2, nonmembers, 0.001)},
            n_members=2000, n_nonmembers=nonmembers,
            min_resolvable_fpr=min_resolvable_fpr(nonmembers),
            roc=RocCurve(fpr=[min(f, 1.0) for f in fpr],
                         tpr=[min(1.0, f * (1 + 4 * (auc - 0.5))) for f in fpr]))],
        data=DataGovernance(source="synthetic", labels=["billing", "it", "hr", "legal"],
                            max_records_per_subject=3,
                            roles=[DataRole(role="client-0", n_records=100, n_subjects=40,
                                            sha256=H, source="synthetic",
                                            preparation="tokenized")]),
        provenance=Provenance(package_versions={"privaudit": "0.1.0"}, python="3.11.7",
                              platform="Linux", git_commit=None, git_dirty=None,
                              data_sha256={"client-0": H}),
    )


FULL_SECTIONS: dict[str, Any] = {
    "privacy": {"dp": {"enabled": True, "epsilon": 3.2, "delta": 1e-5, "unit_of_privacy": "record",
                       "subject_level_epsilon": 9.6, "accountant": "prv",
                       "noise_multiplier": 1.1, "max_grad_norm": 1.0, "sample_rate": 0.05,
                       "steps": 400,
                       "delta_vs_1_over_n": {"n": 500, "one_over_n": 0.002,
                                             "delta_times_n": 0.005,
                                             "delta_below_1_over_n": True},
                       "clients": [{"client_id": "client-0", "epsilon": 3.2, "steps": 400,
                                    "sample_rate": 0.05, "noise_multiplier": 1.1,
                                    "n_records": 500}]}},
    "secure_aggregation": {"enabled": True, "scheme": "CKKS", "poly_modulus_degree": 8192,
                           "coeff_mod_bit_sizes": [60, 40], "scale_bits": 40,
                           "security_bits": 128, "expansion_ratio": 8.1,
                           "max_abs_error": 3e-9, "threat_model": ["All clients share one key."]},
    "dp_audit": {"method": "one-run", "claimed_epsilon": 3.2, "epsilon_lower_bound": 0.4,
                 "n_canaries": 1000, "guesses": 100, "correct": 60, "violation": False},
    "unlearning": [{"request_id": "req-1", "kind": "subject", "method": "sisa",
                    "exactness": "exact", "seconds": 2.0, "speedup_vs_oracle": 3.5,
                    "examples_processed": 120, "executed_at": "2026-01-02T04:00:00+00:00",
                    "request_ids_sha256": H, "model_path": "models/sisa/req-1",
                    "model_sha256_before": H, "model_sha256_after": "cd" * 32,
                    "forget": {"n_records": 3, "mean_loss_before": 0.4,
                               "mean_loss_after": 1.3, "mia_auc": 0.5, "privleak": 2.0,
                               "ks_pvalue": 0.7, "exposure_bits": 0.1, "n_nonmembers": 200,
                               "privleak_band": 10.0, "privleak_floor": 74.0,
                               "records_needed": 3, "informative": True},
                    "retain": {"utility_metric": "accuracy", "utility": 0.7, "mia_auc": 0.52},
                    "flags": []}],
}


def full_document(**changes: Any) -> dict[str, Any]:
    """The sample report as a document with every section of DESIGN.md filled in."""
    doc = sample_report(nonmembers=20000).model_dump(mode="json")
    doc.update(copy.deepcopy(FULL_SECTIONS))
    doc.update(changes)
    return doc


def write_sample_run(root: Path, *, formats: tuple[str, ...] = ("html", "md"),
                     sign_key: Path | None = None, report: Report | None = None) -> Path:
    """A run directory: an adapter, a config, the finalized report, renderings, manifest."""
    from privaudit.core.rundir import RunDir
    from privaudit.reports.render import write_report

    run = RunDir(root).create()
    adapter = run.global_adapter(1)
    adapter.parent.mkdir(parents=True, exist_ok=True)
    adapter.write_bytes(bytes(range(256)) * 8)
    run.path("config.yaml").write_text("name: sample\n")
    write_report(report or sample_report(), run, formats=formats, sign_key=sign_key)
    return run.root
