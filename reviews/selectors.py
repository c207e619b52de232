"""Reads of the review workflow that users see, honouring market visibility and review blindness."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from dossiers.models import Candidate, Dossier, GuardrailCondition
from dossiers.permissions import sees_all_markets
from dossiers.report import ReviewTrail
from dossiers.selectors import markets_visible_to
from reviews.models import Assignment, AuditEvent, Comment, ConflictResolution, Review, ReviewRound, SignOff, Watch
from reviews.permissions import can_see_other_reviews, can_view, round_is_complete
from reviews.signatures import content_hash

User = AuthUser | AnonymousUser
Consensus = Literal["single", "consistent", "conflict", "resolved"]


def reviews_visible_to(user: User, candidate: Candidate) -> QuerySet[Review]:
    """Reviews of every round this user may read: their own always, others' once the round is complete."""
    if not can_view(user, candidate):
        return Review.objects.none()
    rounds = list(candidate.review_rounds.all())
    open_rounds = [r.pk for r in rounds if can_see_other_reviews(user, candidate, r)]
    return (
        Review.objects.filter(round__candidate=candidate)
        .filter(Q(round_id__in=open_rounds) | Q(reviewer_id=user.pk))
        .select_related("reviewer", "round")
        .order_by("round__number", "submitted_at", "id")
    )


def latest_round(candidate: Candidate) -> ReviewRound | None:
    return candidate.review_rounds.order_by("-number").first()


def consensus_state(candidate: Candidate, round_: ReviewRound | None = None) -> Consensus | None:
    """Agreement of the round's reviewers; None while votes are missing (blind) or there is no round."""
    round_ = round_ or latest_round(candidate)
    if round_ is None or not round_is_complete(round_):
        return None
    votes = list(round_.reviews.values_list("recommendation", "evidence_level"))
    if len(votes) == 1:
        return "single"
    if len(set(votes)) == 1:
        return "consistent"
    return "resolved" if hasattr(round_, "conflict_resolution") else "conflict"


def audit_events_for(candidate: Candidate) -> QuerySet[AuditEvent]:
    """The candidate's timeline: its own events and those of its dossier (data gaps, interactions…)."""
    return (
        AuditEvent.objects.filter(Q(candidate=candidate) | Q(candidate__isnull=True, dossier_id=candidate.dossier_id))
        .select_related("actor")
        .order_by("at", "id")
    )


@dataclass(frozen=True)
class SignatureStatus:
    signoff: SignOff
    content_unchanged: bool


def signature_status(candidate: Candidate) -> SignatureStatus | None:
    """The valid signature of the open round and whether the content still matches it (read-time check).

    A page that finds `content_unchanged` False shows the signature as void and should call
    `reviews.services.signature_check`, which records the invalidation.
    """
    signoff = (
        SignOff.objects.filter(candidate=candidate, valid=True, round__closed_at__isnull=True)
        .select_related("signer")
        .first()
    )
    if signoff is None:
        return None
    return SignatureStatus(signoff=signoff, content_unchanged=signoff.content_hash == content_hash(candidate))


def signoffs_for(candidate: Candidate) -> QuerySet[SignOff]:
    """Every signature ever made on the candidate, valid or not, oldest first."""
    return SignOff.objects.filter(candidate=candidate).select_related("signer", "round").order_by("signed_at", "id")


def audit_events_visible_to(user: User) -> QuerySet[AuditEvent]:
    """Audit rows of candidates and dossiers in the user's markets (every row for admins), oldest first."""
    events = AuditEvent.objects.select_related("actor").order_by("at", "id")
    if sees_all_markets(user):
        return events
    markets = markets_visible_to(user)
    dossiers = Dossier.objects.filter(market__in=markets).values("pk")
    return events.filter(Q(candidate__dossier__market__in=markets) | Q(candidate__isnull=True, dossier_id__in=dossiers))


def assignments_for(candidate: Candidate) -> QuerySet[Assignment]:
    """Who is asked to review the open round (assignments say nothing of votes: not blind)."""
    return (
        Assignment.objects.filter(round__candidate=candidate, round__closed_at__isnull=True)
        .select_related("round", "reviewer")
        .order_by("assigned_at", "id")
    )


def conditions_for(candidate: Candidate) -> QuerySet[GuardrailCondition]:
    return GuardrailCondition.objects.filter(candidate=candidate).select_related("owner", "resolved_by")


def comments_for(candidate: Candidate) -> QuerySet[Comment]:
    return (
        Comment.objects.filter(candidate=candidate)
        .select_related("author")
        .prefetch_related("mentions")
        .order_by("created_at", "id")
    )


def is_watching(user: User, candidate: Candidate) -> bool:
    return user.is_authenticated and Watch.objects.filter(candidate=candidate, user=user).exists()


# ---------------------------------------------------------------- exports

# Workflow actions that make the decision history of an export (not curation edits or comments).
HISTORY_ACTIONS = (
    "candidate.",
    "condition.",
)


def review_trail_for(candidate: Candidate | None) -> ReviewTrail | None:
    """Signatures and decision history of a candidate for the dossier exports; None when it has none.

    Exports have no reader to ask, so the blind rule is applied for everyone: votes of a round appear
    only once every assigned reviewer of that round has submitted.
    """
    if candidate is None:
        return None
    signatures = tuple(_signature_line(s) for s in signoffs_for(candidate))
    history = [_event_line(e) for e in _history_events(candidate)]
    rounds = ReviewRound.objects.filter(candidate=candidate).prefetch_related(
        Prefetch("reviews", Review.objects.select_related("reviewer").order_by("submitted_at", "id"))
    )
    for round_ in rounds.order_by("number"):
        history += _round_lines(round_)
    if not signatures and not history:
        return None
    return ReviewTrail(signatures=signatures, decision_history=tuple(history))


def _history_events(candidate: Candidate) -> QuerySet[AuditEvent]:
    starts = Q()
    for prefix in HISTORY_ACTIONS:
        starts |= Q(action__startswith=prefix)
    return AuditEvent.objects.filter(starts, candidate=candidate).select_related("actor").order_by("at", "id")


def _when(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "unknown time"


def _name(user: AuthUser | None) -> str:
    if user is None:
        return "the system"
    return user.get_full_name() or user.get_username()


def _signature_line(signoff: SignOff) -> str:
    state = "valid" if signoff.valid else f"INVALID since {_when(signoff.invalidated_at)}: {signoff.invalidated_reason}"
    return (
        f"{signoff.meaning} — signed by {signoff.signer_name} ({signoff.signer.get_username()}) "
        f"on {_when(signoff.signed_at)} ({signoff.signed_timezone}), round {signoff.round.number}; "
        f"content sha256 {signoff.content_hash}; {state}"
    )


def _event_line(event: AuditEvent) -> str:
    move = f": {event.from_state} → {event.to_state}" if event.from_state or event.to_state else ""
    reason = f" — {event.reason}" if event.reason else ""
    return f"{_when(event.at)} {event.action}{move} by {_name(event.actor)}{reason}"


def _round_lines(round_: ReviewRound) -> list[str]:
    """The votes of a complete round and its conflict resolution; nothing of an incomplete one (blind)."""
    if not round_is_complete(round_):
        return []
    lines = [
        f"Round {round_.number} review by {_name(r.reviewer)} on {_when(r.submitted_at)}: "
        f"{r.get_recommendation_display()}, {r.evidence_level}, {r.decision_stage} — {' '.join(r.rationale.split())}"
        for r in round_.reviews.all()
    ]
    resolution = ConflictResolution.objects.filter(round=round_).select_related("resolved_by").first()
    if resolution is not None:
        lines.append(
            f"Round {round_.number} conflict resolved by {_name(resolution.resolved_by)} on "
            f"{_when(resolution.resolved_at)}: {resolution.get_decision_display()}, {resolution.level}, "
            f"{resolution.stage} — {' '.join(resolution.note.split())}"
        )
    return lines
