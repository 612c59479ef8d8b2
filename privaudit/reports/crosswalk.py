"""Regulation clause → evidence in report.json, and whether that evidence is there.

Each :class:`Clause` names the framework, the clause, what it asks for in plain words, the
JSON pointers (RFC 6901) into report.json that hold the evidence, and what the evidence
cannot establish on its own. :func:`evaluate_crosswalk` resolves the pointers against one
report:

* every pointer resolves to evidence → ``EVIDENCED``;
* some do → ``PARTIAL``;
* none does → ``NOT EVALUATED``.

A pointer holds no evidence when it is missing, ``null``, an empty list/object/string, or
lies inside a section with ``"enabled": false``. The status says whether evidence exists,
never whether it is good: PASS/FAIL is the verdict's job (``/verdict/controls``).
To cover a new clause, add a row to :data:`CLAUSES`; to let a new report section count as
evidence, add its pointer to the rows it supports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from privaudit.core.errors import ConfigError

Status = Literal["EVIDENCED", "PARTIAL", "NOT EVALUATED"]


class Clause(BaseModel):
    """One clause of one framework and where its evidence lives in report.json."""

    model_config = ConfigDict(frozen=True)

    framework: str
    clause: str
    requirement: str
    evidence: tuple[str, ...]
    limitation: str


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


_GDPR, _EDPB, _AIA = "GDPR", "EDPB", "EU AI Act"
_DP, _HE = "/privacy/dp", "/secure_aggregation"

CLAUSES: tuple[Clause, ...] = (
    Clause(framework=_GDPR, clause="Art. 17", evidence=("/unlearning",),
           requirement="Personal data is erased on request. For each erasure request: what "
           "was erased, by which method, whether exactly or approximately, when, and evidence "
           "that the model no longer reflects the erased data.",
           limitation="Shows the model side only; erasure from data stores and backups is "
           "outside this report."),
    Clause(framework=_GDPR, clause="Art. 25", evidence=(_DP, _HE),
           requirement="Data protection by design and by default: technical measures such "
           "as differential privacy and encrypted aggregation are built in, with their "
           "parameters stated.",
           limitation="Covers the training pipeline; organisational measures are not "
           "assessed."),
    Clause(framework=_GDPR, clause="Art. 35(7)(a)",
           evidence=("/run", "/data", "/provenance"),
           requirement="Impact assessment: a systematic description of the processing — "
           "what model is trained on which data, by whom, with which software.",
           limitation="Purposes and legitimate interests must be described by the "
           "controller."),
    Clause(framework=_GDPR, clause="Art. 35(7)(b)", evidence=("/utility", "/privacy/dp/epsilon"),
           requirement="Impact assessment: necessity and proportionality — the utility "
           "obtained set against the privacy cost paid for it.",
           limitation="Gives the measured trade-off; judging necessity and proportionality "
           "is for the controller and the supervisory authority."),
    Clause(framework=_GDPR, clause="Art. 35(7)(c)", evidence=("/attacks", "/dp_audit"),
           requirement="Impact assessment: the risks to data subjects — how well an "
           "attacker can tell whether someone's data was used to train the model.",
           limitation="Covers membership inference and the empirical DP audit; other "
           "risks (bias, misuse of outputs) are not assessed."),
    Clause(framework=_GDPR, clause="Art. 35(7)(d)", evidence=(_DP, _HE, "/unlearning"),
           requirement="Impact assessment: the measures that address those risks — "
           "safeguards, security measures, and the means to honour erasure requests.",
           limitation="Technical measures only."),
    Clause(framework=_EDPB, clause="Opinion 28/2024 (anonymity of AI models)",
           evidence=("/attacks", "/dp_audit"),
           requirement="A model can be considered anonymous only if extracting personal "
           "data from it or inferring membership is insignificant: attacks run, attacker "
           "access, true-positive rate at low false-positive rate, residual risk.",
           limitation="Evidence is for the attacks run here; the likelihood of other means "
           "of extraction is for the controller to assess."),
    Clause(framework=_AIA, clause="Art. 10", evidence=("/data/roles", "/provenance/data_sha256"),
           requirement="Data governance: origin, preparation and size of the training, "
           "validation and test data, identified so they can be re-checked.",
           limitation="Data quality and representativeness are not assessed."),
    Clause(framework=_AIA, clause="Art. 15(3)", evidence=("/utility",),
           requirement="Accuracy: the levels of accuracy and the metrics used are declared.",
           limitation="Accuracy on the audit's own test split only."),
    Clause(framework=_AIA, clause="Art. 15(5)", evidence=("/attacks", "/dp_audit"),
           requirement="Cybersecurity: resilience to confidentiality attacks on the model, "
           "measured with attacks.",
           limitation="Data poisoning and adversarial examples are not tested."),
    Clause(framework=_AIA, clause="Annex IV 2(g)",
           evidence=("/created_at", "/attacks", "/utility", "/artifacts", "/provenance"),
           requirement="Technical documentation: validation and testing procedures, metrics "
           "and test reports, dated and signed.",
           limitation="The signature is manifest.sig next to report.json (check it with "
           "`privaudit verify RUN --public-key KEY`); the key holder must be a named "
           "responsible person."),
    Clause(framework="NIST SP 800-226", clause="Evaluating DP guarantees",
           evidence=("/privacy/dp/epsilon", "/privacy/dp/delta", "/privacy/dp/unit_of_privacy",
                     "/privacy/dp/accountant", "/privacy/dp/noise_multiplier",
                     "/privacy/dp/max_grad_norm", "/privacy/dp/sample_rate",
                     "/privacy/dp/steps", "/dp_audit"),
           requirement="A differential-privacy claim states its unit of privacy, ε, δ, the "
           "accountant and the mechanism's parameters, and is checked empirically.",
           limitation="An empirical audit gives a lower bound on ε; it cannot prove the "
           "claimed upper bound."),
    Clause(framework="UK ICO", clause="PETs guidance",
           evidence=(_DP, _HE, "/secure_aggregation/threat_model", "/attacks"),
           requirement="For each privacy-enhancing technology: its purpose, its parameters, "
           "its maturity and the residual risks it leaves.",
           limitation="Maturity is stated, not measured."),
    Clause(framework="ISO/IEC TR 29119-11", clause="Adversarial testing",
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


def evaluate_clause(clause: Clause, report: dict[str, Any]) -> CrosswalkRow:
    """One clause against one report (see the module docstring for the rule)."""
    gaps = {p: g for p in clause.evidence if (g := evidence_gap(report, p)) is not None}
    present = [p for p in clause.evidence if p not in gaps]
    status: Status
    if not gaps:
        status, reason = "EVIDENCED", "all evidence present: " + ", ".join(present)
    else:
        missing = "; ".join(f"{p}: {g}" for p, g in gaps.items())
        if present:
            status, reason = "PARTIAL", f"present: {', '.join(present)}; no evidence at {missing}"
        else:
            status, reason = "NOT EVALUATED", f"no evidence at {missing}"
    return CrosswalkRow(framework=clause.framework, clause=clause.clause,
                        requirement=clause.requirement, evidence=list(clause.evidence),
                        status=status, reason=reason, limitation=clause.limitation)


def evaluate_crosswalk(report: dict[str, Any],
                       clauses: Sequence[Clause] = CLAUSES) -> list[CrosswalkRow]:
    """Every clause evaluated against ``report`` (a parsed report.json), in table order."""
    if not isinstance(report, dict):
        raise ConfigError(f"report must be a JSON object; got {type(report).__name__}")
    return [evaluate_clause(clause, report) for clause in clauses]
