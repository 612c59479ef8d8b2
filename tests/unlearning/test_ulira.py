"""U-LiRA (``unlearning/ulira.py``): the per-example test on hand-made arrays, and on the
memorising tiny run where the answer is known — a model that unlearned nothing."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
from pydantic import ValidationError

from privaudit.attacks.metrics import evaluate_scores
from privaudit.audit.config import VerifyConfig, config_from_dict
from privaudit.audit.erase_run import open_run_context
from privaudit.audit.pipeline import run_audit
from privaudit.audit.stages.references import references_needed
from privaudit.core.progress import PlainReporter
from privaudit.core.rundir import RunDir
from privaudit.unlearning.base import UnlearnedModel, UnlearningContext, get_unlearner
from privaudit.unlearning.requests import ErasureRequest, ResolvedRequest, resolve_requests
from privaudit.unlearning.ulira import pooled_sigma, ulira_scores
from privaudit.unlearning.verify import Verifier
from tests.conftest import OVERFIT_PATCH, TINY, check_memorises, merge
from tests.unlearning.conftest import best_fit_subjects


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def test_ulira_scores_on_hand_made_arrays_match_the_hand_computed_values() -> None:
    # Four records (a, b forget; c, d held out), one pair of references: reference 0 unlearned
    # a and c, reference 1 unlearned b and d; each record's other reference never saw it.
    ref = np.array([[1.0, 0.0, 2.0, 0.0],
                    [0.0, 3.0, 0.0, 1.0]])
    unlearned = np.array([[True, False, True, False],
                          [False, True, False, True]])
    # never-seen means μ_n = (0, 0, 0, 0); paired differences s_u − s_n = (1, 3, 2, 1):
    # mean 1.75, Var (ddof 1) = (0.5625 + 1.5625 + 0.0625 + 0.5625) / 3 = 0.916667,
    # σ² = ½ · 0.916667 = 0.458333 (one pair: no within-record residuals).
    sigma = math.sqrt(0.458333333)
    assert pooled_sigma(ref, unlearned) == pytest.approx(sigma)
    target = np.array([0.9, 0.3, 0.2, 0.6])
    expected = [math.log(_phi(s / sigma)) for s in target]  # log Φ((s − 0)/σ)
    got = ulira_scores(target, ref, unlearned)
    assert got == pytest.approx(expected, rel=1e-6)
    # AUC of forget (a, b) vs held out (c, d): a > c, a > d, b > c, b < d → 3 of 4 pairs
    auc = evaluate_scores(got, [1, 1, 0, 0], n_bootstrap=20).auc
    assert auc == pytest.approx(0.75)


def test_ulira_with_enough_pairs_is_the_two_sided_likelihood_ratio() -> None:
    # Record 0: unlearned φ (2, 4), never seen (−1, 1): μ_u 3, μ_n 0, σ_u = σ_n = √2.
    # Record 1: unlearned φ (0, 0.5), never seen (0, 1): μ_u .25, μ_n .5, σ_u = √.125, σ_n = √.5.
    ref = np.array([[2.0, 0.0], [4.0, 0.5], [-1.0, 0.0], [1.0, 1.0]])
    unlearned = np.array([[True, True], [True, True], [False, False], [False, False]])
    target = np.array([3.0, 0.25])
    got = ulira_scores(target, ref, unlearned, per_example_min=2)
    # record 0: s = μ_u, so Λ = 0 + ½·((3 − 0)/√2)² = 2.25;
    # record 1: s = μ_u, so Λ = log(σ_n/σ_u) + ½·((0.25 − 0.5)/√.5)² = ½·ln 4 + 0.0625 = 0.755647
    assert got == pytest.approx([2.25, 0.755647], abs=1e-6)
    with pytest.raises(ValueError, match="unseen by >= 1"):
        ulira_scores(target, ref, np.ones_like(unlearned))


def test_bad_ulira_settings_are_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="ulira_methods"):
        VerifyConfig(ulira_methods=["sisa"])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="ulira_references"):
        VerifyConfig(ulira_references=-1)


@dataclass
class Memorised:
    ctx: UnlearningContext
    run: RunDir
    request: ResolvedRequest
    forget_ids: frozenset[str]


def _with_verify(ctx: UnlearningContext, **verify: object) -> UnlearningContext:
    v = ctx.ucfg.verify.model_copy(update=verify)
    ucfg = ctx.ucfg.model_copy(update={"verify": v})
    return replace(ctx, ucfg=ucfg)


@pytest.fixture(scope="module")
def memorised(tmp_path_factory: pytest.TempPathFactory) -> Memorised:
    """The memorising tiny run, two U-LiRA pairs, the best-fit third of its subjects to forget."""
    path = tmp_path_factory.mktemp("ulira") / "run"
    cfg = merge(TINY, merge(OVERFIT_PATCH, {"unlearning": {"verify": {"ulira_references": 2}}}))
    report = run_audit(config_from_dict(cfg), path, reporter=PlainReporter(quiet=True)).report
    check_memorises(next(a.auc for a in report.attacks if a.attack == "loss"))
    run = RunDir(path)
    ctx, _ = open_run_context(run)  # serving a request needs U-LiRA's 2 pairs: trained here
    ids = best_fit_subjects(ctx)
    (request,) = resolve_requests([ErasureRequest(id="thirds", kind="record", ids=ids)],
                                  ctx.data)
    return Memorised(ctx, run, request, frozenset(ids))


def test_the_untouched_original_model_judged_as_unlearned_has_ulira_auc_clearly_above_half(
    memorised: Memorised,
) -> None:
    """The trained model, passed off as gradient ascent's answer: its forget records sit far
    above what references that never saw them give them, record by record."""
    ctx = memorised.ctx
    verifier = Verifier(ctx)
    method = "gradient_ascent"
    u = verifier.ulira.evaluate(
        method=method, unlearner=get_unlearner(method)(ctx.ucfg), request=memorised.request,
        model=UnlearnedModel([ctx.trained_state]), forget=ctx.records(memorised.forget_ids))
    assert u.reason is None and u.references == 4
    assert u.auc is not None and u.auc > 0.65, u
    assert u.ci_low is not None and u.ci_low > 0.5, u
    assert u.n_forget == len(memorised.forget_ids)
    assert u.n_nonmembers == min(len(memorised.forget_ids), len(ctx.nonmembers))
    # the references were unlearned once each and cached in the run directory
    cached = sorted(memorised.run.path("unlearning", "thirds", "ulira", method).glob("*/meta.json"))
    assert len(cached) == 4


def test_ulira_references_are_trained_once_and_loaded_when_the_run_is_opened_again(
    memorised: Memorised,
) -> None:
    """Opening the run again (another request, ``privaudit erase``) finds U-LiRA's
    references in ``models/references`` instead of training them again."""
    first = Verifier(memorised.ctx).ulira.references()
    assert first.count == 4 and first.reused == 0 and first.seconds > 0.0
    again, _ = open_run_context(memorised.run)
    refs = Verifier(again).ulira.references()
    assert refs.count == 4 and refs.reused == refs.count and refs.seconds == 0.0
    assert refs.sha256 == first.sha256


def test_ulira_off_leaves_the_auc_none_and_says_why(memorised: Memorised) -> None:
    ctx = _with_verify(memorised.ctx, ulira_references=0)
    forget = ctx.records(memorised.forget_ids)
    blank = _blank_result(ctx, "gradient_ascent")
    verifier = Verifier(ctx)
    judged = verifier.verify(
        blank, model=UnlearnedModel([ctx.trained_state]), oracle=None, forget=forget,
        erased=memorised.forget_ids, unlearner=get_unlearner("gradient_ascent")(ctx.ucfg),
        request=memorised.request)
    assert judged.ulira_auc is None and judged.ulira_references is None
    assert judged.ulira_reason is not None and "ulira_references is 0" in judged.ulira_reason
    off = config_from_dict(merge(TINY, {"unlearning": {"verify": {"ulira_references": 0}}}))
    assert references_needed(off, ["gradient_ascent"], serving=True) == 0  # none trained for it


def test_ulira_is_not_applied_to_methods_that_retrain(memorised: Memorised) -> None:
    ulira = Verifier(memorised.ctx).ulira
    one = UnlearnedModel([memorised.ctx.trained_state])
    for method in ("oracle", "sisa", "federaser"):
        reason = ulira.skip_reason(method, one)
        assert reason is not None and reason.startswith(f"not applied to {method}")
    narrowed = Verifier(_with_verify(memorised.ctx, ulira_methods=["npo"])).ulira
    assert "not in unlearning.verify.ulira_methods" in (narrowed.skip_reason("graddiff", one)
                                                        or "")
    assert narrowed.skip_reason("npo", one) is None


def _blank_result(ctx: UnlearningContext, method: str):  # type: ignore[no-untyped-def]
    from privaudit.reports.schema import ForgetEvidence, RetainEvidence, UnlearningResult

    return UnlearningResult(
        request_id="thirds", kind="record", method=method, exactness="approximate",
        seconds=0.0, examples_processed=0, executed_at="2026-01-01T00:00:00+00:00",
        request_ids_sha256="0" * 64, model_sha256_before="0" * 64,
        model_sha256_after="0" * 64, model_path="none",
        forget=ForgetEvidence(n_records=0, mean_loss_before=0.0, mean_loss_after=0.0),
        retain=RetainEvidence(utility_metric="accuracy", utility=0.5))


def test_gate_metric_ulira_auc_resolves_once_evaluated() -> None:
    from privaudit.gate.metrics import resolve_metric

    doc = {"unlearning": [{"request_id": "r1", "method": "npo", "ulira_auc": 0.62,
                           "ulira_auc_ci_low": 0.51, "ulira_auc_ci_high": 0.73}]}
    (obs,) = resolve_metric(doc, "unlearning.npo.ulira_auc")
    assert (obs.point, obs.ci_low, obs.ci_high) == (0.62, 0.51, 0.73)


def test_erasing_a_canary_carrier_reports_its_exposure_before_after_and_under_the_oracle(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A causal LM whose forget set holds every carrier of one secret canary: the certificate
    gives the canary's exposure under the trained model, the unlearned one and the oracle."""
    from privaudit.audit.stages.erase import run_erase
    from privaudit.mechanisms.data import prepare_data
    from privaudit.reports.html import render_html

    lm = merge(TINY, {
        "data": {"public_records": 20},
        "model": {"task": "causal-lm"},
        "attacks": {"canaries": {"count": 2, "insertions": [4], "candidates": 200,
                                 "method": "normal"}}})
    cfg = config_from_dict(lm)
    data = prepare_data(cfg.data, task="causal-lm", k=cfg.federation.clients, seed=cfg.seed,
                        canaries=cfg.attacks.canaries)
    carriers = list(data.canaries[0].carriers)
    path = tmp_path_factory.mktemp("canary") / "run"
    run_audit(cfg, path, reporter=PlainReporter(quiet=True))
    ctx, report = open_run_context(RunDir(path))
    request = ErasureRequest(id="pin", kind="record", ids=carriers)
    results, _ = run_erase(ctx, [request], ["gradient_ascent"], PlainReporter(quiet=True))
    for r in results:
        f = r.forget
        assert f.exposure_canaries == 1
        assert f.exposure_bits_before is not None and f.exposure_bits is not None
        assert f.exposure_bits_oracle is not None
        assert 0.0 <= f.exposure_bits_oracle <= math.log2(10**6)
    (oracle,) = [r for r in results if r.method == "oracle"]
    assert oracle.forget.exposure_bits == oracle.forget.exposure_bits_oracle  # same model
    html = render_html(report.model_copy(update={"unlearning": results}))
    assert "Secret canaries in the forget set" in html
