"""Reads of the review workflow that users see, honouring market visibility and review blindness."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db.models import Q, QuerySet

from dossiers.models import Candidate
from reviews.models import AuditEvent, Review, ReviewRound, SignOff
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
