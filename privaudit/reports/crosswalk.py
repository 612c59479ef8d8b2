"""Regulation clause → evidence in report.json, and what the controls judging it found.

Each :class:`Clause` names the framework, the clause, what it asks for in plain words, the
JSON pointers (RFC 6901) into report.json that hold the evidence, the verdict controls that
judge that evidence, and what the evidence cannot establish on its own.
:func:`evaluate_crosswalk` resolves the pointers against one report and reads the controls'
statuses from its verdict:

* no pointer resolves to evidence → ``NOT EVALUATED``;
* a control judging the clause FAILed → ``CONTRADICTED``;
* every pointer holds evidence and every applicable control judging it PASSed →
  ``SUPPORTED``;
* anything else (evidence only in part, a control that WARNs, is NOT INFORMATIVE or was
  not evaluated, no applicable control) → ``INCONCLUSIVE``.

Presence alone is never SUPPORTED: a clause is supported only by a test that passed and
could have failed (#15's NOT INFORMATIVE). SUPPORTED is still not a finding of compliance,
which is for the controller and the supervisory authority. A pointer holds no evidence when
it is missing, ``null``, an empty list/object/string, or lies inside a section with
``"enabled": false``. Reports of schema < 0.7 carry the older presence-only statuses
(``EVIDENCED``, ``PARTIAL``); they are still read, never written.
To cover a new clause, add a row to :data:`CLAUSES`; to let a new report section count as
evidence, add its pointer to the rows it supports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from privaudit.core.errors import ConfigError

Status = Literal["SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "NOT EVALUATED",
                 "EVIDENCED", "PARTIAL"]  # the last two: read in reports of schema < 0.7
STATUSES = ("SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "NOT EVALUATED")


class Clause(BaseModel):
    """One clause of one framework and where its evidence lives in report.json."""

    model_config = ConfigDict(frozen=True)

    framework: str
    clause: str
    requirement: str
    evidence: tuple[str, ...]
    limitation: str
    #: the verdict controls (``/verdict/controls/*/id``) that judge this clause's evidence
    controls: tuple[str, ...] = ()


class CrosswalkRow(BaseModel):
    """A clause evaluated against one report (the ``crosswalk`` items of report.json)."""

    model_config = ConfigDict(frozen=True)

    framework: str
    clause: str
    requirement: str
    evidence: list[str]
    status: Status
    reason: str
    limitation: str
    controls: list[str] = []


_GDPR, _EDPB, _AIA = "GDPR", "EDPB", "EU AI Act"
_DP, _HE = "/privacy/dp", "/secure_aggregation"

CLAUSES: tuple[Clause, ...] = (
    Clause(framework=_GDPR, clause="Art. 17", controls=("erasure",),
           evidence=("/unlearning",),
           requirement="Personal data is erased on request. For each erasure request: what "
           "was erased, by which method, whether exactly or approximately, when, and evidence "
           "that the model no longer reflects the erased data.",
           limitation="Shows the model side only; erasure from data stores and backups is "
           "outside this report."),
    Clause(framework=_GDPR, clause="Art. 25", controls=("dp-guarantee", "secure-aggregation"),
           evidence=(_DP, _HE),
           requirement="Data protection by design and by default: technical measures such "
           "as differential privacy and encrypted aggregation are built in, with their "
           "parameters stated.",
           limitation="Covers the training pipeline; organisational measures are not "
           "assessed."),
    Clause(framework=_GDPR, clause="Art. 35(7)(a)", controls=("traceability",),
           evidence=("/run", "/data", "/provenance"),
           requirement="Impact assessment: a systematic description of the processing — "
           "what model is trained on which data, by whom, with which software.",
           limitation="Purposes and legitimate interests must be described by the "
           "controller."),
    Clause(framework=_GDPR, clause="Art. 35(7)(b)", controls=("utility", "dp-guarantee"),
           evidence=("/utility", "/privacy/dp/epsilon"),
           requirement="Impact assessment: necessity and proportionality — the utility "
           "obtained set against the privacy cost paid for it.",
           limitation="Gives the measured trade-off; judging necessity and proportionality "
           "is for the controller and the supervisory authority."),
    Clause(framework=_GDPR, clause="Art. 35(7)(c)", controls=("membership-inference", "dp-audit"),
           evidence=("/attacks", "/dp_audit"),
           requirement="Impact assessment: the risks to data subjects — how well an "
           "attacker can tell whether someone's data was used to train the model.",
           limitation="Covers membership inference and the empirical DP audit; other "
           "risks (bias, misuse of outputs) are not assessed."),
    Clause(framework=_GDPR, clause="Art. 35(7)(d)",
           controls=("dp-guarantee", "secure-aggregation", "erasure"),
           evidence=(_DP, _HE, "/unlearning"),
           requirement="Impact assessment: the measures that address those risks — "
           "safeguards, security measures, and the means to honour erasure requests.",
           limitation="Technical measures only."),
    Clause(framework=_EDPB, clause="Opinion 28/2024 (anonymity of AI models)",
           controls=("membership-inference", "dp-audit"),
           evidence=("/attacks", "/dp_audit"),
           requirement="A model can be considered anonymous only if extracting personal "
           "data from it or inferring membership is insignificant: attacks run, attacker "
           "access, true-positive rate at low false-positive rate, residual risk.",
           limitation="Evidence is for the attacks run here; the likelihood of other means "
           "of extraction is for the controller to assess."),
    Clause(framework=_AIA, clause="Art. 10", controls=("traceability",),
           evidence=("/data/roles", "/provenance/data_sha256"),
           requirement="Data governance: origin, preparation and size of the training, "
           "validation and test data, identified so they can be re-checked.",
           limitation="Data quality and representativeness are not assessed."),
    Clause(framework=_AIA, clause="Art. 15(3)", controls=("utility",),
           evidence=("/utility",),
           requirement="Accuracy: the levels of accuracy and the metrics used are declared.",
           limitation="Accuracy on the audit's own test split only."),
    Clause(framework=_AIA, clause="Art. 15(5)", controls=("membership-inference", "dp-audit"),
           evidence=("/attacks", "/dp_audit"),
           requirement="Cybersecurity: resilience to confidentiality attacks on the model, "
           "measured with attacks.",
           limitation="Data poisoning and adversarial examples are not tested."),
    Clause(framework=_AIA, clause="Annex IV 2(g)", controls=("traceability",),
           evidence=("/created_at", "/attacks", "/utility", "/artifacts", "/provenance"),
           requirement="Technical documentation: validation and testing procedures, metrics "
           "and test reports, dated and signed.",
           limitation="The signature is manifest.sig next to report.json (check it with "
           "`privaudit verify RUN --public-key KEY`); the key holder must be a named "
           "responsible person."),
    Clause(framework="NIST SP 800-226", clause="Evaluating DP guarantees",
           controls=("dp-guarantee", "dp-audit"),
           evidence=("/privacy/dp/epsilon", "/privacy/dp/delta", "/privacy/dp/unit_of_privacy",
                     "/privacy/dp/accountant", "/privacy/dp/noise_multiplier",
                     "/privacy/dp/max_grad_norm", "/privacy/dp/sample_rate",
                     "/privacy/dp/steps", "/dp_audit"),
           requirement="A differential-privacy claim states its unit of privacy, ε, δ, the "
           "accountant and the mechanism's parameters, and is checked empirically.",
           limitation="An empirical audit gives a lower bound on ε; it cannot prove the "
           "claimed upper bound."),
    Clause(framework="UK ICO", clause="PETs guidance",
           controls=("dp-guarantee", "secure-aggregation"),
           evidence=(_DP, _HE, "/secure_aggregation/threat_model", "/attacks"),
           requirement="For each privacy-enhancing technology: its purpose, its parameters, "
           "its maturity and the residual risks it leaves.",
           limitation="Maturity is stated, not measured."),
    Clause(framework="ISO/IEC TR 29119-11", clause="Adversarial testing",
           controls=("membership-inference",),
           evidence=("/attacks",),
           requirement="AI-based systems are tested with adversarial techniques: attacks run "
           "against every model released (here: the federated model, each unlearned model and "
           "each oracle), with the attacker's access, the metrics and their confidence "
           "intervals recorded.",
           limitation="Confidentiality attacks only (membership inference, canary exposure); "
           "evasion and poisoning attacks are not run."),
)


# ---------------------------------------------------------------- RFC 6901 pointers


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of an RFC 6901 JSON pointer.

    >>> parse_pointer("/a~1b/m~0n/0")
    ['a/b', 'm~n', '0']
    """
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ConfigError(f"JSON pointer must be empty or start with '/'; got {pointer!r}")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if "~" in token.replace("~0", "").replace("~1", ""):
            raise ConfigError(f"JSON pointer {pointer!r}: '~' must be followed by 0 or 1")
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def _step(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        return node.get(token, MISSING)
    # in a list, "-" (the element after the last) and leading zeros name no element
    if (isinstance(node, list) and token.isdigit() and (token == "0" or token[0] != "0")
            and int(token) < len(node)):
        return node[int(token)]
    return MISSING


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value ``pointer`` refers to in ``document``, or :data:`MISSING`.

    >>> resolve_pointer({"a": [{"b": 1}]}, "/a/0/b")
    1
    >>> resolve_pointer({"a": [1]}, "/a/01")
    MISSING
    """
    node = document
    for token in parse_pointer(pointer):
        node = _step(node, token)
        if node is MISSING:
            break
    return node


def evidence_gap(document: Any, pointer: str) -> str | None:
    """Why ``pointer`` holds no evidence in ``document``, or None when it does.

    >>> evidence_gap({"dp": {"enabled": False, "epsilon": 8.0}}, "/dp/epsilon")
    'section disabled (enabled: false)'
    """
    node = document
    for token in [*parse_pointer(pointer), None]:
        if isinstance(node, dict) and node.get("enabled") is False:
            return "section disabled (enabled: false)"
        if token is None:
            break
        node = _step(node, token)
        if node is MISSING:
            return "missing"
    if node is None:
        return "null"
    if isinstance(node, (list, dict, str)) and len(node) == 0:
        return "empty"
    return None


def _judged(clause: Clause, controls: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
    """What the clause's controls say: 'fail', 'pass' or 'open', and the words for it."""
    mine = [controls[c] for c in clause.controls if c in controls]
    applicable = [c for c in mine if c.get("applicable", True)]
    failed = [c["id"] for c in applicable if c.get("status") == "FAIL"]
    if failed:
        return "fail", "control(s) failed: " + ", ".join(failed)
    if not applicable:
        return "open", "no applicable control judges this evidence"
    open_ = [f"{c['id']} {c.get('status')}" for c in applicable if c.get("status") != "PASS"]
    if open_:
        return "open", "not passed: " + ", ".join(open_)
    return "pass", "control(s) passed: " + ", ".join(c["id"] for c in applicable)


def evaluate_clause(clause: Clause, report: dict[str, Any],
                    controls: Mapping[str, Mapping[str, Any]] | None = None) -> CrosswalkRow:
    """One clause against one report and its verdict's ``controls`` by id (see the module
    docstring for the rule)."""
    gaps = {p: g for p in clause.evidence if (g := evidence_gap(report, p)) is not None}
    present = [p for p in clause.evidence if p not in gaps]
    missing = "; ".join(f"{p}: {g}" for p, g in gaps.items())
    judged, words = _judged(clause, controls or {})
    status: Status
    if not present:
        status, reason = "NOT EVALUATED", f"no evidence at {missing}"
    elif judged == "fail":
        status, reason = "CONTRADICTED", words
    elif judged == "pass" and not gaps:
        status, reason = "SUPPORTED", f"{words}; evidence at " + ", ".join(present)
    else:
        status = "INCONCLUSIVE"
        reason = "; ".join(x for x in (words if judged == "open" else "",
                                        f"no evidence at {missing}" if gaps else "") if x)
    return CrosswalkRow(framework=clause.framework, clause=clause.clause,
                        requirement=clause.requirement, evidence=list(clause.evidence),
                        status=status, reason=reason, limitation=clause.limitation,
                        controls=list(clause.controls))


def evaluate_crosswalk(report: dict[str, Any], clauses: Sequence[Clause] = CLAUSES, *,
                       verdict: Mapping[str, Any] | None = None) -> list[CrosswalkRow]:
    """Every clause evaluated against ``report`` (a parsed report.json) and ``verdict`` (its
    verdict, as JSON; without one no clause is SUPPORTED), in table order."""
    if not isinstance(report, dict):
        raise ConfigError(f"report must be a JSON object; got {type(report).__name__}")
    controls = {c["id"]: c for c in (verdict or {}).get("controls", [])}
    return [evaluate_clause(clause, report, controls) for clause in clauses]
