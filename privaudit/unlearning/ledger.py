"""What the run directory remembers about erasures: the ledger, lineage and DP bound.

``unlearning/ledger.json`` lists the requests served so far (their record ids, in order), the
latest model of each method and which requests it covers, SISA's shard checkpoints, and every
model produced after a request. ``unlearning/results.json`` holds every
:class:`UnlearningResult`. ``unlearning/<request-id>/lineage.json`` says which models were
trained on the request's records and which were produced after it (see ``stage.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from privaudit.core.rundir import RunDir, write_json_atomic
from privaudit.mechanisms.dp.accounting import group_privacy
from privaudit.mechanisms.dp.group import group_delta_is_vacuous, subject_epsilon
from privaudit.mechanisms.federated.privacy import PrivacyOutcome
from privaudit.unlearning.requests import ResolvedRequest
from privaudit.unlearning.results import DPBound, UnlearningResult

LEDGER = ("unlearning", "ledger.json")
RESULTS = ("unlearning", "results.json")


def read_ledger(run: RunDir) -> dict[str, Any]:
    path = run.path(*LEDGER)
    if path.is_file():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    return {"requests": [], "methods": {}, "produced": []}


def write_ledger(run: RunDir, ledger: Mapping[str, Any]) -> None:
    write_json_atomic(run.path(*LEDGER), ledger)


def read_results(run: RunDir) -> list[UnlearningResult]:
    path = run.path(*RESULTS)
    if not path.is_file():
        return []
    return [UnlearningResult.model_validate(r) for r in json.loads(path.read_text("utf-8"))]


def append_results(run: RunDir, results: Iterable[UnlearningResult]) -> None:
    every = [*read_results(run), *results]
    write_json_atomic(run.path(*RESULTS), [r.model_dump(mode="json") for r in every])


def reset(run: RunDir) -> None:
    """A fresh (not resumed) run forgets requests a previous run in this directory served."""
    for rel in (LEDGER, RESULTS):
        run.path(*rel).unlink(missing_ok=True)


def erased_so_far(ledger: Mapping[str, Any]) -> dict[str, str]:
    """Record id → the request that erased it."""
    return {i: r["id"] for r in ledger["requests"] for i in r["record_ids"]}


def covered_ids(ledger: Mapping[str, Any], method: str) -> set[str]:
    """The erased records the method's latest model no longer holds."""
    entry = ledger["methods"].get(method)
    if not entry:
        return set()
    return {i for r in ledger["requests"] if r["id"] in entry["covered"] for i in r["record_ids"]}


def trained_on(run: RunDir, req: ResolvedRequest, ledger: Mapping[str, Any]
               ) -> list[dict[str, str]]:
    """Models trained on the request's records before it: the global rounds its clients took
    part in, SISA checkpoints from the slice holding them on, every earlier unlearned model."""
    out = []
    summary = run.path("models", "global", "training.json")
    rounds = json.loads(summary.read_text())["rounds"] if summary.is_file() else []
    for r in rounds:
        took_part = sorted(set(r.get("participants", [])) & set(req.clients))
        if took_part or not r.get("participants"):
            path = run.relative(run.global_adapter(int(r["round"])))
            out.append({"path": path, "why": f"round {r['round']}: {took_part} trained on them"})
    sisa = ledger.get("sisa")
    if sisa:
        from privaudit.unlearning.sisa import SisaLayout

        layout = SisaLayout.from_json(json.loads(run.path(sisa["layout"]).read_text()))
        for k, first in layout.first_slices(frozenset(req.record_ids)).items():
            for path in sisa["shards"][k]["slices"][first:]:
                out.append({"path": path, "why": f"SISA shard {k}: the slice holding them, "
                                                 "or a later one"})
    for path in ledger.get("produced", []):
        out.append({"path": path, "why": "produced before this request, from data holding them"})
    return out


def dp_guarantee(privacy: PrivacyOutcome | None) -> tuple[float, float] | None:
    """The training run's (ε, δ), None without DP."""
    if privacy is None:
        return None
    epsilon = privacy.epsilon()
    if epsilon is None or privacy.delta is None:
        return None
    return float(epsilon), float(privacy.delta)


def dp_bound(
    guarantee: tuple[float, float] | None, req: ResolvedRequest, *, client_level: bool,
    privacy: PrivacyOutcome | None = None, holders: Mapping[str, int] | None = None,
) -> DPBound | None:
    """What the training run's DP guarantee says about the erased data, at the run's δ.

    Record mode with the run's accountants: the erased records accounted directly as a group
    (:func:`privaudit.mechanisms.dp.group.subject_epsilon`) — every holding client's history
    composed, each with the most erased records any one client holds (``holders``: client →
    erased records there). Otherwise (client mode, or no accountants) group privacy over the
    k units, whose δ passes 1 at common ε: then the bound says there is no guarantee."""
    if guarantee is None:
        return None
    eps, delta = guarantee
    k = len(req.clients) if client_level else len(req.record_ids)
    unit = "client" if client_level else "record"
    accountants = privacy.accountants if privacy is not None else {}
    held = {c: n for c, n in (holders or {}).items() if n > 0 and c in accountants}
    if not client_level and held and 0 < delta < 1:
        history = tuple(tuple(h) for c in sorted(held) for h in accountants[c].history)
        group_eps = max(eps, subject_epsilon(history, max(held.values()), delta))  # type: ignore[arg-type]
        return DPBound(
            records=len(req.record_ids), record_epsilon=eps, record_delta=delta,
            epsilon=group_eps, delta=delta, method="direct",
            statement=(
                f"the training run is ({eps:.3g}, {delta:.3g})-DP per record; accounting the "
                f"{k} erased records together (direct group accounting over the "
                f"{len(held)} client(s) holding them), every model it released is "
                f"({group_eps:.3g}, {delta:.3g})-indistinguishable from one trained without "
                "them"),
        )
    group_eps, group_delta = group_privacy(eps, delta, k)
    if group_delta_is_vacuous(group_delta):
        statement = (f"the training run is ({eps:.3g}, {delta:.3g})-DP per {unit}; group "
                     f"privacy over {k} {unit}s gives δ = {group_delta:.3g} ≥ 1, which rules "
                     "out nothing: DP gives no guarantee about the erased data")
    else:
        statement = (f"the training run is ({eps:.3g}, {delta:.3g})-DP per {unit}; by group "
                     f"privacy over {k} {unit}(s), every model it released is "
                     f"({group_eps:.3g}, {group_delta:.3g})-indistinguishable from one trained "
                     "without the erased data")
    return DPBound(
        records=len(req.record_ids), record_epsilon=eps, record_delta=delta,
        epsilon=group_eps, delta=group_delta, method="group_privacy", statement=statement,
    )
