"""The evidence level of a candidate, L1 (strongest) to L5, from its INCLUDED evidence by fixed rules.

Only links a curator included count; suggested and excluded ones never do. Each trial and publication
gets a level by the first rule that matches it; the candidate's level is the best (lowest) of them,
and the reasons are the items that produced it. No included evidence gives L5 (prediction only).

Trials (by the registry's phase and design allocation; a WITHDRAWN trial never enrolled anyone and is
ignored):
    Phase 3 (incl. Phase 2/3), randomized            → L1  (a Phase 3 RCT)
    Phase 3 not randomized, or allocation unknown    → L2  (a trial beyond Phase 2, but not shown an RCT)
    Phase 2 (incl. Phase 1/2) or Phase 4             → L2
    Phase 1, Early Phase 1, or no phase (observational, "N/A") → L3
The allocation is the registry's `designInfo.allocation` (RANDOMIZED, NON_RANDOMIZED, NA for one arm),
stored by every refresh that sees the trial; a trial only imported from a report has none until then.
Publications (by study type, keywords checked in this order; else by the curator's tier):
    meta-analysis, systematic review                 → L1
    Phase 3 ("phase 3", "phase iii") and randomised (randomized, RCT) → L1
    randomised / randomized controlled trial, RCT, Phase 3 or Phase 2 trial → L2
    cohort, prospective, retrospective, observational, case-control, registry, Phase 1, clinical trial → L3
    case report, case series, basic science, preclinical, in vitro, animal, review → L4
    no recognised type: tier 1 → L2, tier 2 → L3, tier 3 or none → L4
PubMed's types become one study type (dossiers.services.refresh.study_type): a paper typed both
"Randomized Controlled Trial" and "Clinical Trial, Phase III" is "Randomized Controlled Trial, Phase III".

The level is recomputed after every successful refresh of the candidate, whenever a refresh changes a
trial it includes (phase, status, allocation), and on every curation decision.

The seed (lenalidomide → myeloid leukemia, India) computes to L1 by its meta-analyses PMID 30271212 and
31221030; its completed Phase 3 NCT01029262 grades L2 until a refresh reads its allocation. Its report
states L2 because its author discounted evidence outside AML (the Phase 3 is in lower-risk MDS). This
rule set deliberately does not grade indirectness: that is a judgement, which a reviewer records as a
different level with a rationale on the review form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dossiers.models import Candidate, CandidatePublication, ClinicalTrial, CurationStatus, EvidenceLevel

LEVEL_ORDER = [EvidenceLevel.L1, EvidenceLevel.L2, EvidenceLevel.L3, EvidenceLevel.L4, EvidenceLevel.L5]

# (keywords, level) in the order they are tried; the first publication rule that matches wins.
PHASE3_WORDS = ("phase 3", "phase iii")
RANDOMISED_WORDS = ("randomized", "randomised", "rct")
PUBLICATION_RULES: list[tuple[tuple[str, ...], EvidenceLevel]] = [
    (("meta-analysis", "meta analysis", "metaanalysis", "systematic review"), EvidenceLevel.L1),
    (("randomized", "randomised", "rct", "phase 3", "phase iii", "phase 2", "phase ii"), EvidenceLevel.L2),
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


def is_randomized(trial: ClinicalTrial) -> bool:
    return trial.allocation.strip().upper() == "RANDOMIZED"


def trial_level(trial: ClinicalTrial) -> EvidenceLevel | None:
    """The level a trial supports by its phase and allocation; None for a withdrawn trial."""
    if trial.status.strip().upper() == "WITHDRAWN":
        return None
    phases = trial_phase_numbers(trial.phase)
    if 3 in phases and is_randomized(trial):
        return EvidenceLevel.L1
    if phases & {2, 3, 4}:
        return EvidenceLevel.L2
    return EvidenceLevel.L3


def _trial_reason(trial: ClinicalTrial, level: EvidenceLevel) -> str:
    """ "NCT…: Phase 3 randomized trial (Completed) → L1"; a Phase 3 below L1 says why."""
    kind, status = f"{trial.phase or 'no phase'} trial", trial.status or "status unknown"
    if 3 in trial_phase_numbers(trial.phase):
        if is_randomized(trial):
            kind = f"{trial.phase} randomized trial"
        elif trial.allocation.strip():
            kind += ", not randomized"
        else:
            kind += ", allocation not recorded"
    return f"{trial.nct_id}: {kind} ({status}) → {level}"


def publication_level(link: CandidatePublication) -> EvidenceLevel:
    """The level a publication supports by its study type, else by the curator's tier."""
    kind = link.publication.study_type.lower()
    if any(_has_word(kind, w) for w in PHASE3_WORDS) and any(_has_word(kind, w) for w in RANDOMISED_WORDS):
        return EvidenceLevel.L1
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
            graded.append((level, _trial_reason(trial, level)))
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
