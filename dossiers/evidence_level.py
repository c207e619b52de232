"""The evidence level of a candidate, L1 (strongest) to L5, from its INCLUDED evidence by fixed rules.

Only links a curator included count; suggested and excluded ones never do. Each trial and publication
gets a level by the first rule that matches it; the candidate's level is the best (lowest) of them,
and the reasons are the items that produced it. No included evidence gives L5 (prediction only).

Trials (by the registry's phase; a WITHDRAWN trial never enrolled anyone and is ignored):
    Phase 3 (incl. Phase 2/3)                        → L1  (counted as an RCT: we store no allocation)
    Phase 2 (incl. Phase 1/2) or Phase 4             → L2
    Phase 1, Early Phase 1, or no phase (observational, "N/A") → L3
Publications (by study type, keywords checked in this order; else by the curator's tier):
    meta-analysis, systematic review                 → L1
    randomised / randomized controlled trial, RCT, Phase 3 trial → L1 when "phase 3"/"phase iii", else L2
    Phase 2 trial                                    → L2
    cohort, prospective, retrospective, observational, case-control, registry, Phase 1, clinical trial → L3
    case report, case series, basic science, preclinical, in vitro, animal, review → L4
    no recognised type: tier 1 → L2, tier 2 → L3, tier 3 or none → L4

The seed (lenalidomide → myeloid leukemia, India) computes to L1: it includes the completed Phase 3
NCT01029262 and the meta-analyses PMID 30271212 and 31221030. Its report states L2 because its author
discounted evidence outside AML (the Phase 3 is in lower-risk MDS). This rule set deliberately does
not grade indirectness: that is a judgement, which a reviewer records as a different level with a
rationale on the review form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dossiers.models import Candidate, CandidatePublication, ClinicalTrial, CurationStatus, EvidenceLevel

LEVEL_ORDER = [EvidenceLevel.L1, EvidenceLevel.L2, EvidenceLevel.L3, EvidenceLevel.L4, EvidenceLevel.L5]

# (keywords, level) in the order they are tried; the first publication rule that matches wins.
PUBLICATION_RULES: list[tuple[tuple[str, ...], EvidenceLevel]] = [
    (("meta-analysis", "meta analysis", "metaanalysis", "systematic review"), EvidenceLevel.L1),
    (("phase 3", "phase iii"), EvidenceLevel.L1),
    (("randomized", "randomised", "rct", "phase 2", "phase ii"), EvidenceLevel.L2),
    (
        (
            "cohort",
            "prospective",
            "retrospective",
            "observational",
            "case-control",
            "case control",
            "registry",
            "phase 1",
            "phase i",
            "clinical trial",
        ),
        EvidenceLevel.L3,
    ),
    (
        ("case report", "case series", "basic science", "preclinical", "in vitro", "animal", "review"),
        EvidenceLevel.L4,
    ),
]
TIER_LEVELS = {1: EvidenceLevel.L2, 2: EvidenceLevel.L3, 3: EvidenceLevel.L4}


@dataclass(frozen=True)
class LevelResult:
    """A computed level and the reasons (one per item at that level) that produced it."""

    level: EvidenceLevel
    reasons: list[str]


def trial_phase_numbers(phase: str) -> set[int]:
    """Phase numbers a registry phase names: "Phase 2/3" → {2, 3}, "PHASE1|PHASE2" → {1, 2}, "N/A" → {}."""
    text = phase.upper()
    if "PHASE" not in text:
        return set()
    return {int(d) for d in re.findall(r"[1-4]", text)}


def trial_level(trial: ClinicalTrial) -> EvidenceLevel | None:
    """The level a trial supports by its phase; None for a withdrawn trial."""
    if trial.status.strip().upper() == "WITHDRAWN":
        return None
    phases = trial_phase_numbers(trial.phase)
    if 3 in phases:
        return EvidenceLevel.L1
    if phases & {2, 4}:
        return EvidenceLevel.L2
    return EvidenceLevel.L3


def publication_level(link: CandidatePublication) -> EvidenceLevel:
    """The level a publication supports by its study type, else by the curator's tier."""
    kind = link.publication.study_type.lower()
    for keywords, level in PUBLICATION_RULES:
        if any(_has_word(kind, word) for word in keywords):
            return level
    return TIER_LEVELS.get(link.tier or 3, EvidenceLevel.L4)


def _has_word(text: str, phrase: str) -> bool:
    # whole words, so that "phase i" does not match "phase ii" and "rct" not "direct"
    return re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", text) is not None


def evidence_level_compute(candidate: Candidate) -> LevelResult:
    """Apply the module's rules to the candidate's included trials and publications (two queries)."""
    graded: list[tuple[EvidenceLevel, str]] = []
    trial_links = candidate.trial_links.filter(curation_status=CurationStatus.INCLUDED).select_related("trial")
    for trial_link in trial_links:
        trial = trial_link.trial
        level = trial_level(trial)
        if level is not None:
            phase = trial.phase or "no phase"
            graded.append((level, f"{trial.nct_id}: {phase} trial ({trial.status or 'status unknown'}) → {level}"))
    pub_links = candidate.publication_links.filter(curation_status=CurationStatus.INCLUDED).select_related(
        "publication"
    )
    for pub_link in pub_links:
        level = publication_level(pub_link)
        kind = pub_link.publication.study_type or (f"tier {pub_link.tier}" if pub_link.tier else "untyped")
        graded.append((level, f"PMID {pub_link.publication.pmid}: {kind} → {level}"))
    if not graded:
        return LevelResult(EvidenceLevel.L5, ["no included trials or publications: prediction only → L5"])
    best = min((level for level, _ in graded), key=LEVEL_ORDER.index)
    return LevelResult(best, [reason for level, reason in graded if level == best])
