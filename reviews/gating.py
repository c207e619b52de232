"""Which decisions the evidence allows: computed in code, so a signer cannot argue past it."""

from __future__ import annotations

from dossiers.models import Candidate, DataGap, Decision, DecisionStage

# The least decision stage each decision needs; Research Question and No-Go need none.
MINIMUM_STAGE: dict[str, str] = {
    Decision.GO: DecisionStage.S3,
    Decision.GUARDRAILS: DecisionStage.S2,
    Decision.HOLD: DecisionStage.S1,
}
# Decisions allowed while the evidence is incomplete: "at most Hold".
WHILE_INCOMPLETE = frozenset({Decision.HOLD, Decision.RESEARCH, Decision.NO_GO})


def evidence_incomplete_reasons(candidate: Candidate) -> list[str]:
    """Why the evidence pack is incomplete: open blocking data gaps, interactions never checked."""
    dossier = candidate.dossier
    reasons = [
        f"Data gap {gap.code} is open and blocking: {gap.description}"
        for gap in dossier.data_gaps.filter(severity=DataGap.Severity.BLOCKING, status=DataGap.Status.OPEN)
    ]
    if dossier.interaction_total is None and not dossier.interactions.exists():
        reasons.append("Drug interactions were never checked for this dossier.")
    return reasons


def decision_refusals(candidate: Candidate, decision: str) -> list[str]:
    """Every reason the decision may not be signed for this candidate now; empty when it may."""
    label = Decision(decision).label
    reasons: list[str] = []
    if decision not in WHILE_INCOMPLETE:
        reasons += [f"{label} is refused (at most Hold): {why}" for why in evidence_incomplete_reasons(candidate)]
    needed = MINIMUM_STAGE.get(decision)
    stage = candidate.decision_stage or DecisionStage.S0
    if needed and stage < needed:
        reasons.append(f"{label} needs decision stage {needed} or later; the candidate is at {stage}.")
    if decision == Decision.GUARDRAILS and not candidate.conditions.exists():
        reasons.append(f"{label} needs at least one condition.")
    return reasons


def allowed_decisions(candidate: Candidate) -> list[str]:
    """The decisions a signer may choose now, for the sign-off form."""
    return [choice for choice in Decision.values if not decision_refusals(candidate, choice)]
