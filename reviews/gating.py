"""Which decisions the evidence allows: computed in code, so a signer cannot argue past it."""

from __future__ import annotations

from dossiers.models import Candidate, DataGap, Decision, DecisionStage, GuardrailCondition

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
    return refusals_by_decision(candidate, decisions=[decision])[decision]


def refusals_by_decision(candidate: Candidate, decisions: list[str] | None = None) -> dict[str, list[str]]:
    """`decision_refusals` of several decisions (all by default), reading the evidence once."""
    incomplete = evidence_incomplete_reasons(candidate)
    conditions = list(candidate.conditions.all())
    return {d: _refusals(candidate, d, incomplete, conditions) for d in decisions or Decision.values}


def allowed_decisions(candidate: Candidate) -> list[str]:
    """The decisions a signer may choose now."""
    return [decision for decision, refusals in refusals_by_decision(candidate).items() if not refusals]


def _refusals(
    candidate: Candidate, decision: str, incomplete: list[str], conditions: list[GuardrailCondition]
) -> list[str]:
    label = Decision(decision).label
    reasons: list[str] = []
    if decision not in WHILE_INCOMPLETE:
        reasons += [f"{label} is refused (at most Hold): {why}" for why in incomplete]
    needed = MINIMUM_STAGE.get(decision)
    stage = candidate.decision_stage or DecisionStage.S0
    if needed and stage < needed:
        reasons.append(f"{label} needs decision stage {needed} or later; the candidate is at {stage}.")
    if decision == Decision.GUARDRAILS:
        reasons += _condition_refusals(conditions, label)
    return reasons


def _condition_refusals(conditions: list[GuardrailCondition], label: str) -> list[str]:
    """Guardrails are a remediation tracker: at least one condition, each open one owned and due."""
    if not conditions:
        return [f"{label} needs at least one condition."]
    return [
        f"{label} needs an owner and a due date for condition {condition.title!r}."
        for condition in conditions
        if condition.status == GuardrailCondition.Status.OPEN
        and (condition.owner_id is None or condition.due_date is None)
    ]
