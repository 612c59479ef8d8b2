"""The sections of the HTML report: what each shows, in which order, from which data.

A :class:`Section` names the JSON pointer(s) of its data in report.json and a template under
``templates/sections/``; without a template the data is drawn by the generic renderer (a
table of every field). The renderer walks :func:`registered_sections` in order; a section
whose data is absent, null or empty shows NOT EVALUATED with the reason, never an empty table.
Top-level report fields that no section claims are drawn generically under "Additional
evidence", so data added to the Report model shows up even before it has a section.

To add a section: add its typed field to :class:`~privaudit.reports.schema.Report`, then
``register_section(Section(...))`` here with a template under ``templates/sections/`` (or
none, for the generic table). The renderer itself does not change.
"""

from __future__ import annotations

from dataclasses import dataclass

from privaudit.core.registry import Registry


@dataclass(frozen=True)
class Section:
    """One block of the report. ``group`` is the numbered heading it sits under."""

    id: str
    group: str
    title: str
    order: int
    pointers: tuple[str, ...]
    template: str | None = None
    intro: str = ""
    always: bool = False  # render even when its data is missing (the template handles it)


#: The report's sections, by id (:class:`~privaudit.core.registry.Registry`).
SECTIONS: Registry[Section] = Registry(
    "report section", where="report sections", unknown="{where}: unknown report section {name}; "
    "registered: {names}")


def register_section(section: Section) -> Section:
    return SECTIONS.register(section.id, section)


def get_section(section_id: str) -> Section:
    return SECTIONS.get(section_id)


def registered_sections() -> list[Section]:
    return sorted(SECTIONS.values(), key=lambda s: (s.order, s.id))


def section_of(pointer: str) -> str | None:
    """The id of the section that draws ``pointer`` (the longest registered pointer that is
    it or contains it), or None; the crosswalk links its evidence there."""
    found = [(len(p), s.id) for s in SECTIONS.values() for p in s.pointers
             if p and (pointer == p or pointer.startswith(p + "/"))]
    return max(found)[1] if found else None


def claimed_fields() -> set[str]:
    """Top-level report fields that some section (or the page header) draws."""
    header = {"schema_version", "report_id", "created_at", "title", "report_sha256", "privacy"}
    return header | {p.split("/")[1] for s in SECTIONS.values() for p in s.pointers if p}


_MECH, _EMP, _CONTEXT = "Privacy mechanisms", "Empirical privacy", "Utility, data and limits"

for _s in (
    Section("verdict", "Verdict", "Verdict", 10, ("/verdict",), "sections/verdict.html.j2",
            "One line per control, in plain language. NOT EVALUATED means the evidence was not "
            "collected — never that it passed; NOT INFORMATIVE, that the test could not have "
            "failed.", always=True),
    Section("scope", "Verdict", "What was audited", 11, ("/run",), "sections/scope.html.j2",
            always=True),
    Section("epsilon", "Verdict", "What the privacy guarantee means for one person", 12,
            ("/privacy/dp",), "sections/epsilon.html.j2"),
    Section("not-tested", "Verdict", "What was not tested", 14, (),
            "sections/not_tested.html.j2", always=True),
    Section("verdict-details", "Verdict in full", "Verdict in full", 18, ("/verdict",),
            "sections/verdict_details.html.j2", "Each control's full reasoning, with the "
            "report.json pointers of its evidence.", always=True),
    Section("crosswalk", "Regulatory crosswalk", "Regulatory crosswalk", 20, ("/crosswalk",),
            "sections/crosswalk.html.j2",
            "Each row names a legal or standards requirement, where its evidence lies in "
            "report.json (JSON pointers) and which verdict controls judge it. SUPPORTED: the "
            "evidence is there and those controls passed; CONTRADICTED: one of them failed; "
            "INCONCLUSIVE: evidence only in part, or a control warned, was not informative or "
            "not run; NOT EVALUATED: no evidence. None of these is a finding of compliance, "
            "which is for the controller and the supervisory authority.", always=True),
    Section("dp", _MECH, "Differential privacy", 30, ("/privacy/dp",), "sections/dp.html.j2",
            "The formal guarantee: how much any one unit of privacy (a record, or a whole "
            "client) can change what the model reveals. Smaller ε is stronger."),
    Section("secure-aggregation", _MECH, "Secure aggregation", 31, ("/secure_aggregation",),
            "sections/secure_aggregation.html.j2",
            "Homomorphic encryption of client updates: the server adds ciphertexts and never "
            "sees one client's update."),
    Section("attacks", _EMP, "Membership inference", 40, ("/attacks",),
            "sections/attacks.html.j2",
            "Attacks that try to tell whether a given record was in the training data, run "
            "with black-box access to its outputs against every model the run produced: the "
            "federated model, each unlearned model and each oracle."),
    Section("dp-audit", _EMP, "Empirical audit of the DP claim", 41, ("/dp_audit",),
            "sections/dp_audit.html.j2",
            "Canaries inserted at random test the DP claim: the lower bound on ε measured "
            "must not exceed the claimed ε."),
    Section("exposure", _EMP, "Canary exposure", 42, ("/exposure",),
            "sections/exposure.html.j2",
            "How much more likely the model finds a planted secret than random alternatives, "
            "in bits (Secret Sharer). 0 bits is ideal."),
    Section("references", _EMP, "Reference models", 43, ("/references",), None,
            "The shadow models that reference-based attacks (LiRA, RMIA) compare against, "
            "trained on random halves of a population with the same recipe."),
    Section("unlearning", "Unlearning certificates", "Unlearning certificates", 50,
            ("/unlearning",), "sections/unlearning.html.j2",
            "One certificate per erasure request: what was erased, how, how exactly, and the "
            "evidence that the model no longer reflects the erased data."),
    Section("utility", _CONTEXT, "Utility", 60, ("/utility",), "sections/utility.html.j2"),
    Section("data-governance", _CONTEXT, "Data governance", 61, ("/data",),
            "sections/data.html.j2",
            "Each data role with its size, fingerprint, origin and preparation (EU AI Act "
            "Art. 10)."),
    Section("threat-model", _CONTEXT, "Threat model and limitations", 62, (),
            "sections/threat_model.html.j2", always=True),
    Section("provenance", "Provenance", "Provenance", 70, ("/provenance", "/run"),
            "sections/provenance.html.j2",
            "What produced this report: code, packages, platform, configuration and data "
            "fingerprints. Seeds appear only as a hash commitment."),
    Section("signatures", "Signatures", "Signatures", 80, ("/artifacts",),
            "sections/signatures.html.j2", always=True),
    Section("glossary", "Glossary", "Glossary", 90, (), "sections/glossary.html.j2",
            "The report's terms in plain words; each is linked from its first use in a "
            "verdict line or section introduction.", always=True),
):
    register_section(_s)
