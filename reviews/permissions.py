"""Yes/no rules over (user, candidate) for the review workflow, shared by services, pages and the API.

Every predicate first requires that the user can see the candidate's market; callers turn an
invisible candidate into 404 (through a selector) before they ask, so False here means 403.
Predicates say *who* may act; `allowed_actions` adds *when* (the state table in `reviews.models`).
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser

from dossiers.models import Candidate, GuardrailCondition
from dossiers.permissions import can_curate as can_curate_market
from dossiers.permissions import can_view_market
from portal.roles import Role, has_role
from reviews.models import TRANSITIONS, Assignment, ConflictResolution, Review, ReviewRound

User = AuthUser | AnonymousUser


def can_view(user: User, candidate: Candidate) -> bool:
    return can_view_market(user, candidate.dossier.market)


def can_triage(user: User, candidate: Candidate) -> bool:
    """Triage, deprioritize and revive are a curator's calls."""
    return can_curate_market(user, candidate.dossier.market)


def can_curate(user: User, candidate: Candidate) -> bool:
    return can_curate_market(user, candidate.dossier.market)


def can_assign(user: User, candidate: Candidate) -> bool:
    """Curators and approvers of the market assign reviewers and send the candidate to review."""
    return can_view(user, candidate) and (has_role(user, Role.CURATOR) or has_role(user, Role.APPROVER))


def is_eligible_reviewer(user: User, candidate: Candidate) -> bool:
    """A reviewer of the market who did not curate the candidate in the current round."""
    if not (has_role(user, Role.REVIEWER) and can_view(user, candidate)):
        return False
    round_ = ReviewRound.open_for(candidate)
    return round_ is None or round_.curated_by_id != user.pk


def can_review(user: User, candidate: Candidate) -> bool:
    """An assigned reviewer of the current round who has not submitted yet."""
    round_ = ReviewRound.open_for(candidate)
    if round_ is None or not is_eligible_reviewer(user, candidate):
        return False
    assigned = Assignment.objects.filter(round=round_, reviewer_id=user.pk).exists()
    return assigned and not Review.objects.filter(round=round_, reviewer_id=user.pk).exists()


def round_is_complete(round_: ReviewRound) -> bool:
    """Every assigned reviewer of the round has submitted."""
    assigned = set(round_.assignments.values_list("reviewer_id", flat=True))
    submitted = set(round_.reviews.values_list("reviewer_id", flat=True))
    return bool(assigned) and assigned <= submitted


def can_see_other_reviews(user: User, candidate: Candidate, round_: ReviewRound | None = None) -> bool:
    """Reviews are blind to everyone (approvers too) until every assigned reviewer has submitted."""
    round_ = round_ or ReviewRound.open_for(candidate)
    return round_ is not None and can_view(user, candidate) and round_is_complete(round_)


def can_resolve_conflict(user: User, candidate: Candidate) -> bool:
    """An approver, or a third reviewer: neither the curator nor an assigned reviewer of the round."""
    if not can_view(user, candidate):
        return False
    if has_role(user, Role.APPROVER):
        return True
    round_ = ReviewRound.open_for(candidate)
    return (
        round_ is not None
        and is_eligible_reviewer(user, candidate)
        and not round_.assignments.filter(reviewer_id=user.pk).exists()
    )


def took_part(user: User, candidate: Candidate) -> bool:
    """Curated, reviewed or settled a conflict of this candidate in any round: such a person may not sign it."""
    rounds = candidate.review_rounds.all()
    return (
        rounds.filter(curated_by_id=user.pk).exists()
        or Assignment.objects.filter(round__in=rounds, reviewer_id=user.pk).exists()
        or Review.objects.filter(round__in=rounds, reviewer_id=user.pk).exists()
        or ConflictResolution.objects.filter(round__in=rounds, resolved_by_id=user.pk).exists()
    )


def can_sign_off(user: User, candidate: Candidate) -> bool:
    """An approver of the market who neither curated nor reviewed the candidate."""
    return has_role(user, Role.APPROVER) and can_view(user, candidate) and not took_part(user, candidate)


def can_mark_condition_met(user: User, condition: GuardrailCondition) -> bool:
    """The condition's owner, a curator or an approver of the market."""
    candidate = condition.candidate
    if not can_view(user, candidate):
        return False
    return condition.owner_id == user.pk or has_role(user, Role.CURATOR) or has_role(user, Role.APPROVER)


def can_waive_condition(user: User, candidate: Candidate) -> bool:
    return has_role(user, Role.APPROVER) and can_view(user, candidate)


def can_reopen(user: User, candidate: Candidate) -> bool:
    return has_role(user, Role.APPROVER) and can_view(user, candidate)


def can_comment(user: User, candidate: Candidate) -> bool:
    """Anyone who can see the candidate may comment on it and watch it."""
    return can_view(user, candidate)


# action -> who-rule; the action names are the keys of reviews.models.TRANSITIONS
_RULES = {
    "triage": can_triage,
    "deprioritize": can_triage,
    "revive": can_triage,
    "start_curation": can_curate,
    "review_assign": can_assign,
    "send_to_review": can_assign,
    "review_submit": can_review,
    "conflict_resolve": can_resolve_conflict,
    "sign_off": can_sign_off,
    "condition_mark_met": lambda user, candidate: (
        can_view(user, candidate)
        and (
            has_role(user, Role.CURATOR)
            or has_role(user, Role.APPROVER)
            or candidate.conditions.filter(owner_id=user.pk).exists()
        )
    ),
    "condition_waive": can_waive_condition,
    "reopen": can_reopen,
    "comment": can_comment,
    "watch": can_comment,
}


def allowed_actions(user: User, candidate: Candidate) -> set[str]:
    """The actions this user may take on this candidate now: both the state and the rule allow it."""
    if not can_view(user, candidate):
        return set()
    return {
        action
        for action, rule in _RULES.items()
        if candidate.status in TRANSITIONS[action][0] and rule(user, candidate)
    }
