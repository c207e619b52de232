"""What an electronic signature covers: the candidate's canonical content and its sha256.

The signed content is, in this order of keys (sorted JSON, UTF-8):
- `candidate`: disease, title, summary, rationale, trials_note, publications_note, conclusion_rationale,
  evidence_level, decision_stage, recommended_decision, TxGNN score/rank/source/confidence, trial and
  publication totals;
- `trials` / `publications`: the *included* evidence links (NCT id / PMID, key findings,
  relevance / tier), in NCT id / PMID order;
- `conditions`: title, detail and category of each guardrail condition (not their status, owner or due
  date: tracking a condition to "met" must not void the decision it belongs to);
- `data_gaps`: code, description, severity and status of the dossier's data gaps.
Workflow bookkeeping (status, version, timestamps) is not content.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dossiers.models import Candidate, CurationStatus, Decision

CANDIDATE_FIELDS = (
    "disease",
    "title",
    "summary",
    "rationale",
    "trials_note",
    "publications_note",
    "conclusion_rationale",
    "evidence_level",
    "decision_stage",
    "recommended_decision",
    "txgnn_score",
    "txgnn_rank",
    "source",
    "confidence",
    "trials_reported_total",
    "trials_total_capped",
    "publications_reported_total",
    "publications_total_capped",
)


def candidate_content(candidate: Candidate) -> dict[str, Any]:
    """The canonical, JSON-ready content a signature covers (read fresh from the database)."""
    included = CurationStatus.INCLUDED
    trials = candidate.trial_links.filter(curation_status=included).select_related("trial")
    publications = candidate.publication_links.filter(curation_status=included).select_related("publication")
    return {
        "candidate": {name: getattr(candidate, name) for name in CANDIDATE_FIELDS},
        "trials": sorted(
            ([link.trial.nct_id, link.key_findings, link.relevance] for link in trials), key=lambda row: row[0]
        ),
        "publications": sorted(
            ([link.publication.pmid, link.key_findings, link.tier] for link in publications),
            key=lambda row: row[0],
        ),
        "conditions": sorted([c.title, c.detail, c.category] for c in candidate.conditions.all()),
        "data_gaps": [
            [gap.code, gap.description, gap.severity, gap.status]
            for gap in candidate.dossier.data_gaps.order_by("code")
        ],
    }


def content_hash(candidate: Candidate) -> str:
    """sha256 (hex) of `candidate_content`, serialized with sorted keys and no whitespace."""
    payload = json.dumps(candidate_content(candidate), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def signature_meaning(decision: str) -> str:
    """What a signature of this decision means, as the signer reads it and the record keeps it."""
    return f"Approved: {Decision(decision).label}"
