"""Export a dossier as the published report: Markdown, a printable HTML page, or a structured JSON document.

The Markdown follows the sections and tables of the published reports (see
`shared/fixtures/reports/IN-lenalidomide.md`), so that every fact of an imported report comes back out.
Only evidence a curator included is exported.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import nh3
from django.utils.text import slugify
from markdown_it import MarkdownIt

from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    Dossier,
    DrugInteraction,
    GuardrailCondition,
    SafetyStatement,
)
from dossiers.selectors import DossierExportData, dossier_export_data

ExportFormat = Literal["md", "html", "json"]
FORMATS: tuple[str, ...] = get_args(ExportFormat)
CONTENT_TYPES: dict[str, str] = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
}
JSON_FORMAT_NAME = "portal.dossier-export/1"
DEFAULT_DISCLAIMER = (
    "This content is for research purposes only and does not constitute medical advice. "
    "Clinical validation is required before any clinical application."
)
NO_TRIALS = "There are currently no related clinical trials registered."
NO_PUBLICATIONS = "There are currently no related publications included."
SEVERITY_ORDER = [s.value for s in DrugInteraction.Severity]
STATEMENT_OPENINGS = {
    SafetyStatement.Kind.BOXED_WARNING: "Known Black Box Warnings include",
    SafetyStatement.Kind.CONTRAINDICATION: "Contraindications include",
    SafetyStatement.Kind.WARNING: "Warnings and precautions include",
    SafetyStatement.Kind.INTERACTION: "The label's drug interactions section says",
}


@dataclass(frozen=True)
class ReviewTrail:
    """Hook for the review workflow: signatures and decision history shown in a "Review and Sign-off" section.

    `dossiers` never imports `reviews`; the reviews app builds it (`reviews.selectors.review_trail_for`) and
    passes it to `render_dossier`. Each entry is one already formatted line.
    """

    signatures: tuple[str, ...] = field(default_factory=tuple)
    decision_history: tuple[str, ...] = field(default_factory=tuple)


def render_dossier(
    *,
    dossier: Dossier | int,
    candidate: Candidate | None = None,
    fmt: ExportFormat,
    review_trail: ReviewTrail | None = None,
) -> str:
    """Render the dossier with one candidate in full (the primary one by default) and list the others."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    data = dossier_export_data(dossier=dossier, candidate=candidate)
    return render_export(data, fmt=fmt, review_trail=review_trail)


def render_export(data: DossierExportData, *, fmt: ExportFormat, review_trail: ReviewTrail | None = None) -> str:
    """Render already loaded export data (see `dossier_export_data`)."""
    if fmt == "json":
        return json.dumps(export_document(data, review_trail), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    markdown = render_markdown(data, review_trail)
    if fmt == "html":
        return render_html(markdown, title=_page_title(data))
    return markdown


def export_file_name(data: DossierExportData, fmt: str) -> str:
    """A download name such as `lenalidomide-IN-myeloid-leukemia.md`."""
    parts = [slugify(data.dossier.drug.name), data.dossier.market.code]
    if data.candidate is not None:
        parts.append(slugify(data.candidate.disease))
    return "-".join(p for p in parts if p) + f".{fmt}"


def dossier_evidence_level(candidates: Iterable[Candidate]) -> str | None:
    """The dossier's level is its best candidate's (L1 best); None without candidates."""
    return min((c.evidence_level for c in candidates), default=None)


def format_count(total: int | None, capped: bool) -> str:
    """A reported total; a total that was a search page's cap reads "≥ 50"."""
    if total is None:
        return "Not available"
    return f"≥ {total}" if capped else str(total)


# Markdown


def render_markdown(data: DossierExportData, review_trail: ReviewTrail | None = None) -> str:
    dossier, candidate = data.dossier, data.candidate
    blocks: list[str] = [*_header(data)]
    if candidate is not None:
        blocks += _candidate_sections(data, candidate)
    else:
        blocks += ["No predicted indication has been added to this dossier yet."]
    blocks += _market_section(dossier)
    blocks += _cytotoxicity_section(dossier)
    blocks += _safety_section(dossier)
    blocks += _data_gap_section(dossier)
    if candidate is not None:
        blocks += _conclusion_section(candidate)
    blocks += _others_section(data)
    blocks += _review_section(review_trail)
    blocks += ["## Disclaimer", dossier.disclaimer or DEFAULT_DISCLAIMER]
    return "\n\n".join(blocks) + "\n"


def _header(data: DossierExportData) -> list[str]:
    dossier = data.dossier
    level = dossier_evidence_level(data.all_candidates) or "Not available"
    count = dossier.reported_indication_count
    if count is None:
        count = len(data.all_candidates)
    return [f"# {dossier.drug.name}", f"Evidence Level: **{level}** | Predicted Indications: **{count}**"]


def _candidate_sections(data: DossierExportData, candidate: Candidate) -> list[str]:
    dossier = data.dossier
    title = candidate.title or dossier.title or f"{dossier.drug.name}: {candidate.disease}"
    return [
        f"# {title}",
        "## One-Sentence Summary",
        candidate.summary or "Not available.",
        "## Quick Overview",
        _table(["Item", "Content"], _overview_rows(dossier, candidate)),
        "## Why is This Prediction Reasonable?",
        candidate.rationale or "Not available.",
        "## Clinical Trial Evidence",
        *_trial_blocks(candidate),
        "## Literature Evidence",
        *_publication_blocks(candidate),
    ]


def _overview_rows(dossier: Dossier, candidate: Candidate) -> list[list[str]]:
    term = dossier.market.registration_term or "registrations"
    registrations = "Not available" if dossier.registration_count is None else str(dossier.registration_count)
    return [
        ["Original Indication", dossier.drug.original_indications or "Not available"],
        ["Predicted New Indication", candidate.disease],
        ["TxGNN Prediction Score", candidate.score_percent],
        ["Evidence Level", candidate.evidence_level],
        [f"{dossier.market.name} Market Status", _market_status(dossier)],
        [f"Number of {term[:1].upper()}{term[1:]}", registrations],
        ["Recommended Decision", candidate.get_recommended_decision_display() or "Not decided"],
    ]


def _market_status(dossier: Dossier) -> str:
    marks: dict[str, str] = {Dossier.MarketStatus.MARKETED: "✓ ", Dossier.MarketStatus.NOT_MARKETED: "✗ "}
    return marks.get(dossier.market_status, "") + dossier.get_market_status_display()


def _trial_blocks(candidate: Candidate) -> list[str]:
    links: list[CandidateTrial] = list(candidate.trial_links.all())
    found = _found_line("Registered trials found", candidate.trials_reported_total, candidate.trials_total_capped)
    found += _note(candidate.trials_note)
    if not links:
        return [*found, NO_TRIALS]
    rows = [
        [
            f"[{link.trial.nct_id}]({link.trial.registry_url})",
            link.trial.phase,
            link.trial.status,
            "" if link.trial.enrollment is None else str(link.trial.enrollment),
            link.key_findings,
        ]
        for link in links
    ]
    return [*found, _table(["Trial Number", "Phase", "Status", "Enrollment", "Key Findings"], rows)]


def _publication_blocks(candidate: Candidate) -> list[str]:
    links: list[CandidatePublication] = list(candidate.publication_links.all())
    found = _found_line(
        "Publications found", candidate.publications_reported_total, candidate.publications_total_capped
    )
    found += _note(candidate.publications_note)
    if not links:
        return [*found, NO_PUBLICATIONS]
    rows = [
        [
            f"[{link.publication.pmid}]({link.publication.pubmed_url})",
            "" if link.publication.year is None else str(link.publication.year),
            link.publication.study_type,
            link.publication.journal,
            link.key_findings,
        ]
        for link in links
    ]
    return [*found, _table(["PMID", "Year", "Type", "Journal", "Key Findings"], rows)]


def _found_line(label: str, total: int | None, capped: bool) -> list[str]:
    return [] if total is None else [f"{label}: **{format_count(total, capped)}**"]


def _note(text: str) -> list[str]:
    """A section's own prose (imported beside its table), written before the table."""
    return [text.strip()] if text.strip() else []


def _market_section(dossier: Dossier) -> list[str]:
    heading = f"## {dossier.market.name} Market Information"
    if dossier.market_information:
        # Imported reports already name the approvals elsewhere in this text; listing them again repeats it.
        return [heading, dossier.market_information]
    approvals = list(dossier.drug.approvals.all())
    if not approvals:
        return [heading, "No market information recorded."]
    lines = "\n".join(f"- **{a.agency}:** {_one_line(a.indications)}" for a in approvals)
    return [heading, "Approvals elsewhere:", lines]


def _cytotoxicity_section(dossier: Dossier) -> list[str]:
    # Reports without cytotoxicity data have no such section; the export follows them.
    if not dossier.has_cytotoxicity:
        return ["## Cytotoxicity", dossier.cytotoxicity_note.strip()] if dossier.cytotoxicity_note.strip() else []
    rows = [
        ["Cytotoxicity Classification", dossier.cytotoxicity_classification],
        ["Myelosuppression Risk", dossier.myelosuppression_risk],
        ["Emetogenicity Classification", dossier.emetogenicity],
        ["Monitoring Items", dossier.monitoring_items],
        ["Handling Protection", dossier.handling_protection],
    ]
    table = _table(["Item", "Content"], [[k, v or "Not available"] for k, v in rows])
    return ["## Cytotoxicity", table, *_note(dossier.cytotoxicity_note)]


def _safety_section(dossier: Dossier) -> list[str]:
    interactions: list[DrugInteraction] = list(dossier.interactions.all())
    blocks = ["## Safety Considerations", _interaction_intro(dossier, interactions)]
    if interactions:
        blocks.append(_interaction_list(dossier, interactions))
    # The published reports end the safety note with the boxed warnings as one sentence; so does the export.
    sentences = _statement_sentences(list(dossier.safety_statements.all()))
    note = " ".join(part for part in [dossier.safety_note.strip(), sentences] if part)
    if note:
        blocks.append(_quote(note))
    return blocks


def _statement_sentences(statements: list[SafetyStatement]) -> str:
    """ "Known Black Box Warnings include: a, b, and c." and likewise for the other kinds."""
    sentences = []
    for kind, opening in STATEMENT_OPENINGS.items():
        texts = [_one_line(s.text).rstrip(".") for s in statements if s.kind == kind]
        if texts:
            sentences.append(f"{opening}: {_enumerate(texts)}.")
    return " ".join(sentences)


def _enumerate(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + f", and {items[-1]}"


def _interaction_intro(dossier: Dossier, interactions: list[DrugInteraction]) -> str:
    if dossier.interaction_total is None:
        total = "The total number of interactions is not available."
    else:
        total = f"{dossier.interaction_total} total interactions identified in the DDI database."
    tail = " Key interactions include:" if interactions else ""
    return f"**Drug Interactions:** {total}{tail}"


def _interaction_list(dossier: Dossier, interactions: list[DrugInteraction]) -> str:
    groups = {sev: [i for i in interactions if i.severity == sev] for sev in SEVERITY_ORDER}
    present = [sev for sev in SEVERITY_ORDER if groups[sev]]
    more = dossier.interaction_total is not None and dossier.interaction_total > len(interactions)
    lines = []
    for sev in present:
        group = groups[sev]
        names = ", ".join(i.interacting_drug for i in group)
        if more and sev == present[-1]:
            names += ", and others"
        qualifier, notes = _split_interaction_notes(group)
        note = f" — {'; '.join(notes)}" if notes else ""
        lines.append(f"- **{DrugInteraction.Severity(sev).label} severity{qualifier}:** {names}{note}")
    return "\n".join(lines)


def _split_interaction_notes(group: list[DrugInteraction]) -> tuple[str, list[str]]:
    """A leading "(…)" of the notes is the report's qualifier, written before the colon as in the seed."""
    qualifier, notes = "", []
    for interaction in group:
        note = interaction.note
        if match := re.match(r"^(\([^)]*\))\s*(.*)$", note, re.S):
            qualifier, note = f" {match.group(1)}", match.group(2)
        if note and note not in notes:
            notes.append(note)
    return qualifier, notes


def _data_gap_section(dossier: Dossier) -> list[str]:
    gaps = list(dossier.data_gaps.all())
    if not gaps:
        return []
    rows = [[g.code, g.description, g.get_severity_display(), g.get_status_display()] for g in gaps]
    return ["## Data Gaps", _table(["Code", "Missing", "Severity", "Status"], rows)]


def _conclusion_section(candidate: Candidate) -> list[str]:
    decision = candidate.get_recommended_decision_display() or "Not decided"
    blocks = ["## Conclusion and Next Steps", f"**Decision: {decision}**"]
    if candidate.conclusion_rationale:
        blocks.append(f"**Rationale:**\n{candidate.conclusion_rationale}")
    conditions: list[GuardrailCondition] = list(candidate.conditions.all())
    if conditions:
        blocks += ["**To proceed, the following is needed:**", "\n".join(_condition_line(c) for c in conditions)]
    return blocks


def _condition_line(condition: GuardrailCondition) -> str:
    detail = f" {_one_line(condition.detail)}" if condition.detail else ""
    return f"- **{condition.title}:**{detail} *(status: {condition.get_status_display().lower()})*"


def _others_section(data: DossierExportData) -> list[str]:
    if not data.others:
        return []
    rows = [
        [
            c.disease,
            c.score_percent,
            c.evidence_level,
            c.get_status_display(),
            c.get_recommended_decision_display() or "Not decided",
        ]
        for c in data.others
    ]
    return [
        "## Other Predicted Indications",
        _table(["Predicted Indication", "TxGNN Score", "Evidence Level", "Status", "Decision"], rows),
    ]


def _review_section(trail: ReviewTrail | None) -> list[str]:
    """The review workflow's section (signatures, decision history); empty until that workflow supplies it."""
    if trail is None:
        return []
    lines = [*(f"- {s}" for s in trail.signatures), *(f"- {d}" for d in trail.decision_history)]
    return ["## Review and Sign-off", "\n".join(lines) or "No review recorded yet."]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [_row(header), "|" + "|".join("---" for _ in header) + "|"]
    lines += [_row(r) for r in rows]
    return "\n".join(lines)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(_one_line(c).replace("|", "\\|") for c in cells) + " |"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quote(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in text.strip().splitlines())


# HTML

PRINT_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a1a1a;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 1.5rem 0 .5rem; } h2 { font-size: 1.25rem; margin-top: 1.8rem;
     border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
table { border-collapse: collapse; width: 100%; margin: .75rem 0; font-size: .9rem; }
th, td { border: 1px solid #bbb; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } blockquote { margin: .75rem 0; padding: .25rem 1rem;
     border-left: 4px solid #999; color: #333; background: #fafafa; }
a { color: #0645ad; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  h2 { break-after: avoid; } tr, blockquote, li { break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
  @page { size: A4; margin: 18mm 15mm; }
}
"""


def markdown_html(markdown: str) -> str:
    """Markdown (tables included) as sanitised HTML; raw HTML in stored text is never trusted."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    return nh3.clean(parser.render(markdown))


def render_html(markdown: str, *, title: str) -> str:
    """The Markdown as a standalone printable page."""
    body = markdown_html(markdown)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{PRINT_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def _page_title(data: DossierExportData) -> str:
    if data.candidate is None:
        return f"{data.dossier.drug.name} ({data.dossier.market.code})"
    return f"{data.dossier.drug.name} → {data.candidate.disease} ({data.dossier.market.code})"


# JSON


def export_document(data: DossierExportData, review_trail: ReviewTrail | None = None) -> dict[str, Any]:
    """Every exported field as plain JSON values; only included evidence."""
    dossier = data.dossier
    return {
        "format": JSON_FORMAT_NAME,
        "dossier": _dossier_doc(data),
        "drug": _drug_doc(dossier),
        "market": {
            "code": dossier.market.code,
            "name": dossier.market.name,
            "regulator": dossier.market.regulator,
            "registration_term": dossier.market.registration_term,
        },
        "candidate": None if data.candidate is None else _candidate_doc(data.candidate),
        "other_candidates": [_candidate_summary(c) for c in data.others],
        "review": None
        if review_trail is None
        else {"signatures": list(review_trail.signatures), "decision_history": list(review_trail.decision_history)},
    }


def _dossier_doc(data: DossierExportData) -> dict[str, Any]:
    dossier = data.dossier
    return {
        "id": dossier.pk,
        "title": dossier.title,
        "evidence_level": dossier_evidence_level(data.all_candidates),
        "predicted_indication_count": len(data.all_candidates),
        "reported_indication_count": dossier.reported_indication_count,
        "market_status": dossier.market_status,
        "registration_count": dossier.registration_count,
        "market_information": dossier.market_information,
        "cytotoxicity": {
            "classification": dossier.cytotoxicity_classification,
            "myelosuppression_risk": dossier.myelosuppression_risk,
            "emetogenicity": dossier.emetogenicity,
            "monitoring_items": dossier.monitoring_items,
            "handling_protection": dossier.handling_protection,
        }
        if dossier.has_cytotoxicity
        else None,
        "cytotoxicity_note": dossier.cytotoxicity_note,
        "interaction_total": dossier.interaction_total,
        "interactions": [_interaction_doc(i) for i in dossier.interactions.all()],
        "safety_note": dossier.safety_note,
        "safety_statements": [
            {"kind": s.kind, "text": s.text, "provenance": _provenance(s)} for s in dossier.safety_statements.all()
        ],
        "data_gaps": [
            {
                "code": g.code,
                "description": g.description,
                "severity": g.severity,
                "status": g.status,
                "provenance": _provenance(g),
            }
            for g in dossier.data_gaps.all()
        ],
        "disclaimer": dossier.disclaimer,
        "version": dossier.version,
        "created_at": dossier.created_at.isoformat(),
        "updated_at": dossier.updated_at.isoformat(),
    }


def _drug_doc(dossier: Dossier) -> dict[str, Any]:
    drug = dossier.drug
    return {
        "name": drug.name,
        "synonyms": drug.synonyms,
        "drugbank_id": drug.drugbank_id,
        "rxcui": drug.rxcui,
        "drug_class": drug.drug_class,
        "mechanism_of_action": drug.mechanism_of_action,
        "original_indications": drug.original_indications,
        "approvals": [{"agency": a.agency, "indications": a.indications} for a in drug.approvals.all()],
    }


def _interaction_doc(interaction: DrugInteraction) -> dict[str, Any]:
    return {
        "interacting_drug": interaction.interacting_drug,
        "severity": interaction.severity,
        "note": interaction.note,
        "provenance": _provenance(interaction),
    }


def _candidate_summary(candidate: Candidate) -> dict[str, Any]:
    return {
        "id": candidate.pk,
        "disease": candidate.disease,
        "txgnn_score": candidate.txgnn_score,
        "txgnn_rank": candidate.txgnn_rank,
        "evidence_level": candidate.evidence_level,
        "status": candidate.status,
        "recommended_decision": candidate.recommended_decision or None,
    }


def _candidate_doc(candidate: Candidate) -> dict[str, Any]:
    return {
        **_candidate_summary(candidate),
        "title": candidate.title,
        "source": candidate.source,
        "confidence": candidate.confidence,
        "decision_stage": candidate.decision_stage,
        "summary": candidate.summary,
        "rationale": candidate.rationale,
        "conclusion_rationale": candidate.conclusion_rationale,
        "trials_reported_total": candidate.trials_reported_total,
        "trials_total_capped": candidate.trials_total_capped,
        "publications_reported_total": candidate.publications_reported_total,
        "publications_total_capped": candidate.publications_total_capped,
        "trials_note": candidate.trials_note,
        "publications_note": candidate.publications_note,
        "trials": [_trial_doc(link) for link in candidate.trial_links.all()],
        "publications": [_publication_doc(link) for link in candidate.publication_links.all()],
        "conditions": [_condition_doc(c) for c in candidate.conditions.all()],
        "version": candidate.version,
        "updated_at": candidate.updated_at.isoformat(),
    }


def _trial_doc(link: CandidateTrial) -> dict[str, Any]:
    trial = link.trial
    return {
        "nct_id": trial.nct_id,
        "url": trial.registry_url,
        "title": trial.title,
        "phase": trial.phase,
        "status": trial.status,
        "why_stopped": trial.why_stopped,
        "enrollment": trial.enrollment,
        "start_date": trial.start_date,
        "completion_date": trial.completion_date,
        "conditions": trial.conditions,
        "interventions": trial.interventions,
        "brief_summary": trial.brief_summary,
        "has_results": trial.has_results,
        "last_update": trial.last_update,
        "key_findings": link.key_findings,
        "relevance": link.relevance or None,
        "provenance": _provenance(link),
    }


def _publication_doc(link: CandidatePublication) -> dict[str, Any]:
    pub = link.publication
    return {
        "pmid": pub.pmid,
        "url": pub.pubmed_url,
        "year": pub.year,
        "study_type": pub.study_type,
        "journal": pub.journal,
        "title": pub.title,
        "authors": pub.authors,
        "doi": pub.doi,
        "abstract": pub.abstract,
        "key_findings": link.key_findings,
        "tier": link.tier,
        "provenance": _provenance(link),
    }


def _condition_doc(condition: GuardrailCondition) -> dict[str, Any]:
    return {
        "title": condition.title,
        "detail": condition.detail,
        "category": condition.category,
        "status": condition.status,
        "due_date": condition.due_date.isoformat() if condition.due_date else None,
        "resolution_note": condition.resolution_note,
        "resolved_at": condition.resolved_at.isoformat() if condition.resolved_at else None,
    }


def _provenance(row: Any) -> dict[str, Any]:
    return {
        "origin": row.origin,
        "origin_name": row.origin_name,
        "origin_line": row.origin_line,
        "origin_query": row.origin_query,
        "retrieved_at": row.retrieved_at.isoformat() if row.retrieved_at else None,
    }
