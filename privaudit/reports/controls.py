"""The verdict's controls, registered in the order the verdict lists them (thresholds and
their meaning: :mod:`privaudit.reports.verdict`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privaudit.reports.attack_words import judge_attack, pct
from privaudit.reports.control_registry import WEAK_EPSILON, Document, control
from privaudit.reports.control_registry import get as _get
from privaudit.reports.control_registry import make as _c
from privaudit.reports.probe_words import probes_said
from privaudit.reports.schema import Control

# ---------------------------------------------------------------- controls

_MIA = "Can an attacker tell whose data trained the model?"


@control("membership-inference")
def _membership_inference(doc: Document) -> Control:
    attacks = _get(doc, "/attacks") or []
    if not attacks:
        return _c("membership-inference", _MIA, "NOT EVALUATED",
                  "No membership-inference attack was run.", ["/attacks"])
    blind = _get(doc, "/blind_baseline")
    if blind and blind.get("leaks"):
        top = max(attacks, key=lambda a: float(a.get("auc") or 0))
        return _c("membership-inference", _MIA, "NOT INFORMATIVE", "Members can be told from "
                  "non-members without looking at the model: a classifier of the texts alone "
                  f"reaches AUC {blind['auc']:.2f} [{blind['auc_ci_low']:.2f}, "
                  f"{blind['auc_ci_high']:.2f}] (p = {blind['p_value']:.1e}). The two sets "
                  "differ, so the attacks' AUCs (strongest "
                  f"{float(top.get('auc') or 0):.2f}, {top.get('attack')} on {top.get('model')})"
                  " mix what the model remembers with how the sets differ and are not "
                  "evidence about the model. Draw non-members from the same pool as members.",
                  ["/blind_baseline", "/attacks"])
    judged = [judge_attack(a) for a in attacks]
    rank = {"FAIL": 0, "WARN": 1, "NOT INFORMATIVE": 2, "PASS": 3}
    worst = min((s for s, _ in judged), key=rank.__getitem__)
    strongest: dict[str, tuple[float, str]] = {}  # per model, its strongest attack's words
    for a, (status, reason) in zip(attacks, judged, strict=True):
        if status == worst and float(a.get("auc") or 0) >= strongest.get(
                a.get("model"), (-1.0, ""))[0]:
            strongest[a.get("model")] = (float(a.get("auc") or 0), reason)
    n = sum(s == worst for s, _ in judged)
    note = f" ({n} attack × model results are {worst}; the strongest per model is named.)"
    split = (f" A classifier of the texts alone does not tell the two sets apart (blind "
             f"baseline AUC {blind['auc']:.2f}, p = {blind['p_value']:.2g} ≥ "
             f"{blind['alpha']:g}), so the split itself is not what the attacks detect."
             if blind else "")
    return _c("membership-inference", _MIA, worst, " ".join(r for _, r in strongest.values())
              + (note if n > len(strongest) else "") + split,
              ["/attacks", *(["/blind_baseline"] if blind else [])])


_DP = "Is there a mathematical limit on what the model reveals about one person?"


@control("dp-guarantee")
def _dp_guarantee(doc: Document) -> Control:
    dp = _get(doc, "/privacy/dp")
    ev = ["/privacy/dp"]
    if not dp and _external(doc):
        declared = (_get(doc, "/declared_dp") or {}).get("claim")
        if declared:
            return _c("dp-guarantee", _DP, "NOT EVALUATED", "The model was trained outside "
                      f"privaudit; its trainer declares ε = {declared['epsilon']:.3g}, δ = "
                      f"{declared['delta']:g} per {declared['unit_of_privacy']}. privaudit did "
                      "not see the training or its accounting, so it cannot confirm the "
                      "guarantee; the DP-audit line says whether the attacks contradict it.",
                      ["/declared_dp/claim"])
        return _c("dp-guarantee", _DP, "NOT EVALUATED", "The model was trained outside "
                  "privaudit and no DP claim was declared for it (audit-model --dp-claim): "
                  "nothing is known to bound what it reveals about one person.", ev)
    if not dp:
        return _c("dp-guarantee", _DP, "NOT EVALUATED",
                  "The report holds no differential-privacy section.", ev)
    if not dp.get("enabled"):
        return _c("dp-guarantee", _DP, "WARN", "The model was trained without differential "
                  "privacy: nothing bounds what it can reveal about one person.", ev)
    eps, delta = dp.get("epsilon"), dp.get("delta")
    if eps is None or delta is None:
        return _c("dp-guarantee", _DP, "FAIL", "Differential privacy is on but the report "
                  "states no ε or δ: the guarantee cannot be checked.", ev)
    vs_n = dp.get("delta_vs_1_over_n") or {}
    unit = dp.get("unit_of_privacy") or "record"
    if vs_n.get("delta_below_1_over_n") is False:
        return _c("dp-guarantee", _DP, "FAIL", f"δ = {delta:g} is not below 1/N "
                  f"(= {vs_n.get('one_over_n', float('nan')):.2g}): the guarantee allows one "
                  f"{unit} in the data to be revealed outright.", ev)
    extra = _subject_words(dp)
    if eps > WEAK_EPSILON:
        return _c("dp-guarantee", _DP, "WARN", f"ε = {eps:.3g} per {unit} (δ = {delta:g}) is "
                  f"above {WEAK_EPSILON:g}: the guarantee is weak{extra}.", ev)
    return _c("dp-guarantee", _DP, "PASS", f"Each {unit} is protected by differential privacy "
              f"with ε = {eps:.3g}, δ = {delta:g}{extra}.", ev)


def _subject_words(dp: dict[str, Any]) -> str:
    """The subject-level guarantee with its δ, or that there is none; never ε alone."""
    if dp.get("subject_level_none"):
        return f"; for one data subject with all their records: {dp['subject_level_none']}"
    subject, subject_delta = dp.get("subject_level_epsilon"), dp.get("subject_level_delta")
    if subject is None or subject_delta is None:
        return ""
    if not subject_delta < 1:
        return "; for one data subject with all their records there is no guarantee (δ ≥ 1)"
    k = dp.get("max_records_per_subject")
    who = f"one data subject with all {k} of their records" if k else "one data subject"
    return f"; {who} is protected at ε = {subject:.3g}, δ = {subject_delta:g}"


_AUDIT = "Does the privacy claim survive an empirical test?"


@control("dp-audit")
def _dp_audit(doc: Document) -> Control:
    dp, audit = _get(doc, "/privacy/dp"), _get(doc, "/dp_audit")
    ev = ["/dp_audit", "/privacy/dp/epsilon"]
    if not dp and not audit and _external(doc):
        return _declared_dp_test(doc)
    if dp and not dp.get("enabled"):
        return _c("dp-audit", _AUDIT, "NOT EVALUATED", "No differential-privacy claim to test "
                  "(DP is off).", ev, applicable=False)
    if not audit:
        return _c("dp-audit", _AUDIT, "NOT EVALUATED", "No empirical DP audit was run.", ev)
    lb, claimed = audit.get("epsilon_lower_bound"), audit.get("claimed_epsilon")
    if audit.get("violation"):
        return _c("dp-audit", _AUDIT, "FAIL", f"The test shows ε is at least {lb:.3g}, above "
                  f"the claimed {claimed:.3g}: the measured leakage is impossible under the "
                  "claimed guarantee: the DP implementation or its accounting is broken.", ev)
    if audit.get("informative") is False:
        return _c("dp-audit", _AUDIT, "NOT INFORMATIVE", "The test cannot reach the claim: "
                  f"with {audit.get('n_canaries')} canaries it can show at most ε ≥ "
                  f"{audit.get('max_provable_epsilon', float('nan')):.3g}, and the claimed ε "
                  f"is {claimed:.3g}, so it could not have failed — a training with no noise "
                  "at all would pass it too. It neither confirms nor refutes the claim. "
                  + _needed(audit), [*ev, "/dp_audit/max_provable_epsilon"])
    if audit.get("estimate_above_claim"):
        low, high = audit["gaussian_epsilon_interval"]
        return _c("dp-audit", _AUDIT, "WARN", f"No rigorous bound exceeds the claimed ε "
                  f"({claimed:.3g}; largest {lb:.3g}), but the Gaussian estimate "
                  f"({audit['gaussian_epsilon_estimate']:.3g}, [{low:.3g}, {high:.3g}]) lies "
                  "above it: no proof (it assumes Gaussian scores), a reason to check the DP "
                  "implementation.", [*ev, "/dp_audit/gaussian_epsilon_estimate"])
    return _c("dp-audit", _AUDIT, "PASS", f"The test's lower bound on ε ({lb:.3g}) does not "
              f"exceed the claimed ε ({claimed:.3g}). A test can only bound ε from below.", ev)


def _external(doc: Document) -> bool:
    """A model trained outside privaudit (``privaudit audit-model``)."""
    return bool(_get(doc, "/run/kind") == "external")


def _declared_dp_test(doc: Document) -> Control:
    """The dp-audit line of an external model: its declared claim against the attacks."""
    check = _get(doc, "/declared_dp")
    ev = ["/declared_dp"]
    if not check:
        return _c("dp-audit", _AUDIT, "NOT EVALUATED", "No DP claim was declared for this "
                  "model, so there is none to test.", ev, applicable=False)
    claim = check["claim"]
    eps, delta = claim["epsilon"], claim["delta"]
    hits = [r for r in check.get("rows") or [] if r.get("contradicts")]
    if hits:
        r = max(hits, key=lambda r: r["tpr_ci_low"] - r["max_tpr_allowed"])
        return _c("dp-audit", _AUDIT, "FAIL", f"The {r['attack']} attack finds at least "
                  f"{pct(r['tpr_ci_low'])} of the members at a false-positive rate of "
                  f"{r['fpr']}, where the declared ε = {eps:.3g}, δ = {delta:g} allows at most "
                  f"{pct(r['max_tpr_allowed'])}: the claim is contradicted (if the members "
                  "were drawn at random from the non-members' pool).", ev)
    if not check.get("informative"):
        need = check.get("nonmembers_needed")
        return _c("dp-audit", _AUDIT, "NOT INFORMATIVE", "At every false-positive rate this "
                  f"audit can measure, the declared ε = {eps:.3g} allows an attack to find "
                  "(nearly) every member, so no result could contradict it: the test could "
                  "not have failed."
                  + (f" About {need:,} held-out non-members (and as many members) are needed "
                     "to test it." if need else ""), ev)
    return _c("dp-audit", _AUDIT, "PASS", f"No attack exceeds what the declared ε = {eps:.3g}, "
              f"δ = {delta:g} allows, with confidence. A test can only bound ε from below, and "
              "only for members drawn at random from the non-members' pool.", ev)


def _needed(audit: Mapping[str, Any]) -> str:
    needed, every = audit.get("canaries_needed"), audit.get("canaries_needed_all_guessed")
    return (f"Testing the claim needs about {needed} canaries." if needed else
            f"Testing the claim needs about {every} canaries, every one guessed correctly "
            "(more guesses than this audit makes)." if every else
            "No one-run canary audit of this size can test the claim.")


_HE = "Is each organisation's contribution hidden from the server?"


@control("secure-aggregation")
def _secure_aggregation(doc: Document) -> Control:
    sa = _get(doc, "/secure_aggregation")
    ev = ["/secure_aggregation"]
    if not sa and _external(doc):
        return _c("secure-aggregation", _HE, "NOT EVALUATED", "The model was trained outside "
                  "privaudit: how (or whether) its updates were aggregated was not observed, and "
                  "this report makes no claim about it.", ["/run/kind"], applicable=False)
    if not sa:
        return _c("secure-aggregation", _HE, "NOT EVALUATED",
                  "The report holds no secure-aggregation section.", ev)
    if not sa.get("enabled"):
        return _c("secure-aggregation", _HE, "WARN", "Updates were not encrypted: the server "
                  "sees each client's model update in clear.", ev)
    bits = sa.get("security_bits")
    if sa.get("insecure") or not bits or bits < 128:
        return _c("secure-aggregation", _HE, "FAIL", "Updates were encrypted with parameters "
                  f"below 128-bit security (security_bits = {bits}).", ev)
    if sa.get("masking") == "pairwise":
        return _c("secure-aggregation", _HE, "PASS", f"No single party sees a client's update: "
                  f"updates are pairwise-masked under BFV ({bits}-bit) with the key holder's "
                  "public key, so the server, the key holder, one client, or fewer than "
                  f"{sa.get('min_clients')} colluding clients learn only the sum, and "
                  "unsigned, altered or replayed updates are refused; not against "
                  f"{sa.get('min_clients')} or more colluding clients, nor a server that drops "
                  "updates (a dropout; see its threat model).", ev)
    return _c("secure-aggregation", _HE, "PASS", f"Against a server colluding with no "
              f"client: updates encrypted ({(sa.get('scheme') or 'HE').upper()}, {bits}-bit), "
              "the server only adds ciphertexts; not against one colluding with a client or "
              "dropping or altering updates (see its threat model).", ev)


_ERASE = "Were erasure requests honoured?"


@control("erasure")
def _erasure(doc: Document) -> Control:
    items = _get(doc, "/unlearning")
    ev = ["/unlearning"]
    if items is None:
        return _c("erasure", _ERASE, "NOT EVALUATED",
                  "The report holds no erasure (unlearning) section.", ev)
    if not items:
        return _c("erasure", _ERASE, "NOT EVALUATED", "No erasure request was served in this "
                  "run.", ev, applicable=False)
    judged = [u for u in items if u.get("method") != "oracle"]  # the yardstick is not judged
    if not judged:
        return _c("erasure", _ERASE, "NOT EVALUATED", "Only the oracle (retraining) served the "
                  "requests: there is no unlearning method to judge.", ev, applicable=False)
    fails: list[str] = []
    warns: list[str] = []
    blind: list[str] = []
    floors: list[float] = []
    for u in judged:
        who = f"request {u.get('request_id')} ({u.get('method')})"
        f = u.get("forget") or {}
        verification = u.get("verification_flags") or []
        messages = {v.get("message") for v in verification}
        for v in verification:
            (fails if v.get("name") != "utility_collapse" else warns).append(
                f"{who}: {v.get('message')}")
        warns += [f"{who}: {flag}" for flag in u.get("flags") or [] if flag not in messages]
        if f.get("informative") is False:
            floor = f.get("privleak_floor")
            reach = (f"can show PrivLeak beyond ±{floor:.0f}% only" if floor is not None else
                     "leave PrivLeak undefined (the oracle's forget AUC is 1)")
            blind.append(f"{who}: {f.get('n_records')} forget and {f.get('n_nonmembers')} "
                         f"held-out records {reach} (at least "
                         f"{f.get('records_needed')} forget records needed)")
        elif f.get("privleak") is None:
            blind.append(f"{who}: no PrivLeak (no oracle ran, or it is undefined)")
        elif f.get("privleak_floor") is not None:
            floors.append(float(f["privleak_floor"]))
    if fails:
        return _c("erasure", _ERASE, "FAIL", "The erased data is still distinguishable from "
                  "never having been trained on: " + "; ".join(fails) + ".", ev)
    if warns:
        return _c("erasure", _ERASE, "WARN", "; ".join(warns) + ".", ev)
    if blind:
        return _c("erasure", _ERASE, "NOT INFORMATIVE", "The erasure test could not have "
                  "failed, since not even a model that still remembers every erased record "
                  "could be told from retraining at this size: " + "; ".join(blind) + ".", ev)
    band = next((f.get("privleak_band") for u in judged
                 if (f := u.get("forget") or {}).get("privleak_band") is not None), None)
    within = f" beyond ±{band:g}" if band is not None else ""
    reach = (f" At this size the test can show departures beyond ±{max(floors):.0f}% only."
             if floors else "")
    estimated = [u for u in judged if (u.get("forget") or {}).get("retrain_low") is not None]
    how = (" The oracle's own variability was estimated from extra retrainings for "
           f"{len(estimated)} of {len(judged)}." if estimated else " The oracle's own "
           "variability was not estimated (unlearning.verify.oracle_replicates: 0), so the "
           "comparison covers the sampling of records only.")
    return _c("erasure", _ERASE, "PASS", f"{len(judged)} erasure(s) judged; no unlearned model "
              f"departs from retraining without the data (PrivLeak{within} and a paired test "
              "of the forget AUC against the oracle's on the same records)." + reach + how
              + probes_said(judged), ev)


_UTIL = "Is the model still useful?"


@control("utility")
def _utility(doc: Document) -> Control:
    u = _get(doc, "/utility")
    ev = ["/utility/value"]
    if not u or u.get("value") is None:
        return _c("utility", _UTIL, "NOT EVALUATED", "No utility was measured.", ev)
    metric, value = u.get("metric"), float(u["value"])
    baselines = u.get("baselines") or {}
    if metric == "accuracy" and "majority_class" in baselines:
        return _accuracy_against_baselines(value, baselines, u.get("n_records"))
    if metric == "perplexity" and "base_model" in baselines:
        base = float(baselines["base_model"])
        ev = [*ev, "/utility/baselines"]
        if value >= base:
            return _c("utility", _UTIL, "FAIL", f"Perplexity on held-out data is {value:.3g}, "
                      f"no better than the base model's {base:.3g} before fine-tuning: the "
                      "fine-tuning learned nothing usable, and privacy results on it say "
                      "little.", ev)
        return _c("utility", _UTIL, "PASS", f"Perplexity on held-out data is {value:.3g}, "
                  f"against the base model's {base:.3g} before fine-tuning.", ev)
    labels = _get(doc, "/data/labels") or []
    if metric == "accuracy" and labels:  # a report without baselines (schema < 0.11)
        chance = 1 / len(labels)
        if value <= chance + 0.02:
            return _c("utility", _UTIL, "WARN", f"Accuracy on held-out data is {pct(value)}, "
                      f"no better than guessing among {len(labels)} classes "
                      f"({pct(chance)}): privacy results on a model that learned nothing "
                      "say little.", [*ev, "/data/labels"])
        return _c("utility", _UTIL, "PASS", f"Accuracy on held-out data is {pct(value)} "
                  f"(guessing: {pct(chance)}).", [*ev, "/data/labels"])
    return _c("utility", _UTIL, "NOT INFORMATIVE", f"{str(metric).capitalize()} on held-out "
              f"data is {value:.3g}, with no baseline to compare it with.", ev)


#: a bag-of-words model this much more accurate makes the utility line a WARN
BOW_MARGIN = 0.10


def _accuracy_against_baselines(value: float, baselines: dict[str, Any],
                                n: int | None) -> Control:
    """The accuracy against always answering the majority class (FAIL when no better, WARN
    when not shown better at 95%) and against TF-IDF + logistic regression (WARN when that
    bag-of-words model is more than ``BOW_MARGIN`` more accurate)."""
    from privaudit.mechanisms.utility_baselines import accuracy_interval

    ev = ["/utility/value", "/utility/baselines"]
    majority = float(baselines["majority_class"])
    bow = baselines.get("tfidf_logreg")
    context = f"always the most common class: {pct(majority)}" + (
        f"; TF-IDF + logistic regression: {pct(float(bow))}" if bow is not None else "")
    if value <= majority:
        return _c("utility", _UTIL, "FAIL", f"Accuracy on held-out data is {pct(value)}, no "
                  f"better than {context}: the model learned nothing usable, and privacy "
                  "results on it say little.", ev)
    low = accuracy_interval(value, n, 0.95)[0] if n else 0.0
    if low <= majority:
        return _c("utility", _UTIL, "WARN", f"Accuracy on held-out data is {pct(value)} "
                  f"(95% CI from {pct(low)}) on {n} records, not shown to beat {context}.", ev)
    if bow is not None and float(bow) > value + BOW_MARGIN:
        return _c("utility", _UTIL, "WARN", f"Accuracy on held-out data is {pct(value)}; a "
                  f"bag-of-words model does more than {BOW_MARGIN:.0%} better ({context}).", ev)
    short = f"majority class {pct(majority)}" + (
        f", TF-IDF {pct(float(bow))}" if bow is not None else "")
    return _c("utility", _UTIL, "PASS", f"Accuracy {pct(value)} (≥ {pct(low)} at 95%); "
              f"{short}.", ev)


_REPRO = "Can the run be traced to its code, configuration and data?"


@control("traceability")
def _traceability(doc: Document) -> Control:
    ev = ["/run/config_sha256", "/run/base_model_sha256", "/provenance"]
    prov = _get(doc, "/provenance") or {}
    missing = [p for p in ("/run/config_sha256", "/run/base_model_sha256",
                           "/provenance/data_sha256") if not _get(doc, p)]
    if missing:
        return _c("traceability", _REPRO, "WARN", "Missing fingerprints: "
                  + ", ".join(missing) + ".", ev)
    if prov.get("git_dirty"):
        return _c("traceability", _REPRO, "WARN", "privaudit ran from a checkout with "
                  f"uncommitted changes: commit {str(prov.get('git_commit'))[:12]} does not "
                  "reproduce it exactly.", ev)
    code = (f"commit {str(prov['git_commit'])[:12]}" if prov.get("git_commit")
            else "installed package versions")
    return _c("traceability", _REPRO, "PASS", "The configuration, base model and every data "
              f"split are identified by sha256; the code by {code}.", ev)


