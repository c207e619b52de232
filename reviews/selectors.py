"""Reads of the review workflow that users see, honouring market visibility and review blindness."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.shortcuts import get_object_or_404
from django.utils import timezone

from dossiers.models import Candidate, Decision, Dossier, GuardrailCondition, Market
from dossiers.permissions import sees_all_markets
from dossiers.report import ReviewTrail
from dossiers.selectors import candidates_visible_to, markets_visible_to, new_evidence_count
from portal.roles import Role, has_role
from reviews.gating import refusals_by_decision
from reviews.models import Assignment, AuditEvent, Comment, ConflictResolution, Review, ReviewRound, SignOff, Watch
from reviews.permissions import (
    allowed_actions,
    can_mark_condition_met,
    can_view,
    round_is_complete,
)
from reviews.signatures import content_hash

User = AuthUser | AnonymousUser
Consensus = Literal["single", "consistent", "conflict", "resolved"]


def reviews_visible_to(user: User, candidate: Candidate) -> QuerySet[Review]:
    """Reviews of every round this user may read: their own always, others' once the round is complete."""
    if not can_view(user, candidate):
        return Review.objects.none()
    # can_see_other_reviews of each round, as a subquery: the page costs the same however many rounds
    return (
        Review.objects.filter(round__candidate=candidate)
        .filter(Q(round__in=complete_rounds(candidate)) | Q(reviewer_id=user.pk))
        .select_related("reviewer", "round")
        .order_by("round__number", "submitted_at", "id")
    )


def complete_rounds(candidate: Candidate) -> QuerySet[ReviewRound]:
    """Rounds in which every assigned reviewer has submitted: `permissions.round_is_complete` as one query."""
    assigned = Assignment.objects.filter(round=OuterRef("pk"))
    missing = assigned.exclude(Exists(Review.objects.filter(round=OuterRef("round"), reviewer=OuterRef("reviewer"))))
    return candidate.review_rounds.filter(Exists(assigned)).exclude(Exists(missing))


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


@dataclass(frozen=True)
class ReviewState:
    round: int | None
    assigned: int
    submitted: int
    blind: bool
    consensus: Consensus | None


def review_state(candidate: Candidate) -> ReviewState:
    """How far the latest round's voting is, and its consensus once every vote is in."""
    round_ = latest_round(candidate)
    if round_ is None:
        return ReviewState(round=None, assigned=0, submitted=0, blind=False, consensus=None)
    assigned = set(round_.assignments.values_list("reviewer_id", flat=True))
    submitted = set(round_.reviews.values_list("reviewer_id", flat=True))
    return ReviewState(
        round=round_.number,
        assigned=len(assigned),
        submitted=len(submitted & assigned),
        blind=bool(assigned) and not assigned <= submitted,
        consensus=consensus_state(candidate, round_),
    )


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
        history += _round_lines(candidate, round_)
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


def _round_lines(candidate: Candidate, round_: ReviewRound) -> list[str]:
    """The votes of a complete round and its conflict resolution; nothing of an incomplete one (blind)."""
    if not round_is_complete(round_):
        return []
    lines = [
        f"Round {round_.number} review by {_name(r.reviewer)} on {_when(r.submitted_at)}: "
        f"{r.get_recommendation_display()}, {r.evidence_level}, {r.decision_stage} — {' '.join(r.rationale.split())}"
        for r in round_.reviews.all()
    ]
    lines.append(f"Round {round_.number} consensus: {consensus_state(candidate, round_)}")
    resolution = ConflictResolution.objects.filter(round=round_).select_related("resolved_by").first()
    if resolution is not None:
        lines.append(
            f"Round {round_.number} conflict resolved by {_name(resolution.resolved_by)} on "
            f"{_when(resolution.resolved_at)}: {resolution.get_decision_display()}, {resolution.level}, "
            f"{resolution.stage} — {' '.join(resolution.note.split())}"
        )
    return lines


# ---------------------------------------------------------------- pages: candidate workflow, dashboard, board


@dataclass(frozen=True)
class WorkflowPage:
    """What the candidate page shows of the workflow, already filtered for the user (blindness included)."""

    actions: set[str]
    round: ReviewRound | None
    consensus: Consensus | None
    assignments: list[Assignment]
    submitted_ids: set[int]
    blind: bool
    reviews: list[Review]
    resolution: ConflictResolution | None
    signoffs: list[SignOff]
    signature: SignatureStatus | None
    conditions: list[GuardrailCondition]
    markable_conditions: set[int]
    comments: list[Comment]
    watching: bool
    events: list[AuditEvent]
    # (decision label, why it may not be signed now) of each refused decision; only for a user who may sign
    refusals: list[tuple[str, list[str]]]


def candidate_workflow(user: AuthUser, candidate: Candidate) -> WorkflowPage:
    """The workflow panel of a visible candidate in a constant number of queries (conditions aside)."""
    actions = allowed_actions(user, candidate)
    round_ = latest_round(candidate)
    assignments: list[Assignment] = []
    submitted: set[int] = set()
    resolution = None
    if round_ is not None:
        assignments = list(round_.assignments.select_related("reviewer").order_by("assigned_at", "id"))
        # who has voted is not blind, only what they voted
        submitted = set(round_.reviews.values_list("reviewer_id", flat=True))
        resolution = ConflictResolution.objects.filter(round=round_).select_related("resolved_by").first()
    conditions = list(candidate.conditions.select_related("owner", "resolved_by"))
    for condition in conditions:
        condition.candidate = candidate  # the permission check reaches the market without a query
    markable = set()
    if "condition_mark_met" in actions:
        markable = {
            c.pk for c in conditions if c.status == GuardrailCondition.Status.OPEN and can_mark_condition_met(user, c)
        }
    return WorkflowPage(
        actions=actions,
        round=round_,
        consensus=consensus_state(candidate, round_),
        assignments=assignments,
        submitted_ids=submitted,
        blind=bool(assignments) and not {a.reviewer_id for a in assignments} <= submitted,
        reviews=list(reviews_visible_to(user, candidate)),
        resolution=resolution,
        signoffs=list(signoffs_for(candidate)),
        signature=signature_status(candidate),
        conditions=conditions,
        markable_conditions=markable,
        comments=list(
            Comment.objects.filter(candidate=candidate).select_related("author").prefetch_related("mentions")
        ),
        watching=Watch.objects.filter(candidate=candidate, user_id=user.pk).exists(),
        events=list(audit_events_for(candidate)),
        refusals=_refused_decisions(candidate) if "sign_off" in actions else [],
    )


def _refused_decisions(candidate: Candidate) -> list[tuple[str, list[str]]]:
    refusals = refusals_by_decision(candidate)
    return [(Decision(decision).label, reasons) for decision, reasons in refusals.items() if reasons]


def eligible_reviewers(candidate: Candidate) -> QuerySet[AuthUser]:
    """Active reviewers of the candidate's market, minus the curator of its open round (assign form)."""
    reviewers = candidate.dossier.market.members.filter(is_active=True).filter(
        Q(groups__name=Role.REVIEWER.value) | Q(groups__name=Role.ADMIN.value) | Q(is_superuser=True)
    )
    round_ = ReviewRound.open_for(candidate)
    if round_ is not None and round_.curated_by_id is not None:
        reviewers = reviewers.exclude(pk=round_.curated_by_id)
    return reviewers.distinct().order_by("last_name", "first_name", "username")


AUDIT_CSV_HEADER = ["at", "actor", "actor_name", "action", "object", "from_state", "to_state", "reason", "changes"]


def audit_csv_rows(candidate: Candidate) -> Iterator[list[str]]:
    """The candidate's audit trail as CSV rows (header first); times in ISO 8601 with their offset."""
    yield AUDIT_CSV_HEADER
    for event in audit_events_for(candidate).iterator(chunk_size=500):
        actor = event.actor
        yield [
            event.at.isoformat(),
            actor.get_username() if actor else "system",
            (actor.get_full_name() or actor.get_username()) if actor else "",
            event.action,
            f"{event.object_type}#{event.object_id}",
            event.from_state,
            event.to_state,
            event.reason,
            json.dumps(event.changes, sort_keys=True, ensure_ascii=False, default=str) if event.changes else "",
        ]


@dataclass(frozen=True)
class Dashboard:
    """The dashboard's lists for one user; sections the user's roles have no use for are None."""

    assignments: list[Assignment] | None
    awaiting_signature: list[Candidate] | None
    overdue: list[Assignment]
    conflicts: list[Candidate] | None
    conditions: list[GuardrailCondition]
    new_evidence: list[Candidate]
    recent: list[Candidate]
    markets: list[Market]


def _with_dossier(candidates: QuerySet[Candidate]) -> QuerySet[Candidate]:
    return candidates.select_related("dossier__drug", "dossier__market")


def _with_new_evidence(user: AuthUser, visible: QuerySet[Candidate]) -> QuerySet[Candidate]:
    """Candidates whose evidence changed since the user last reviewed them (suggestions, diffs), newest first."""
    flagged = visible.exclude(status=Candidate.Status.DEPRIORITIZED).annotate(new_evidence=new_evidence_count(user))
    return _with_dossier(flagged.filter(new_evidence__gt=0)).order_by(
        F("evidence_refreshed_at").desc(nulls_last=True), "-id"
    )


def dashboard_for(user: AuthUser, *, recent: int = 15) -> Dashboard:
    """Everything the dashboard lists, scoped to the user's markets, in a constant number of queries."""
    visible = candidates_visible_to(user)
    open_assignments = Assignment.objects.filter(
        round__closed_at__isnull=True,
        round__candidate__status=Candidate.Status.IN_REVIEW,
        round__candidate__in=visible,
    ).exclude(Exists(Review.objects.filter(round_id=OuterRef("round_id"), reviewer_id=OuterRef("reviewer_id"))))
    open_assignments = open_assignments.select_related(
        "reviewer", "round__candidate__dossier__drug", "round__candidate__dossier__market"
    ).order_by(F("due_date").asc(nulls_last=True), "id")
    is_approver = has_role(user, Role.APPROVER)
    awaiting = None
    if is_approver:
        # Set-based form of permissions.took_part: who curated or reviewed a candidate may not sign it.
        took_part = (
            Q(review_rounds__curated_by=user)
            | Q(review_rounds__assignments__reviewer=user)
            | Q(review_rounds__conflict_resolution__resolved_by=user)
        )
        awaiting = list(
            _with_dossier(visible.filter(status=Candidate.Status.DECISION_PENDING).exclude(took_part))
            .distinct()
            .order_by("updated_at", "id")
        )
    conflicts = None
    if is_approver or has_role(user, Role.REVIEWER):
        conflicts = list(_with_dossier(visible.filter(status=Candidate.Status.IN_CONFLICT)).order_by("updated_at"))
    conditions = (
        GuardrailCondition.objects.filter(owner=user, status=GuardrailCondition.Status.OPEN, candidate__in=visible)
        .select_related("candidate__dossier__drug", "candidate__dossier__market")
        .order_by(F("due_date").asc(nulls_last=True), "id")
    )
    return Dashboard(
        assignments=list(open_assignments.filter(reviewer=user)) if has_role(user, Role.REVIEWER) else None,
        awaiting_signature=awaiting,
        overdue=list(open_assignments.filter(due_date__lt=timezone.localdate())),
        conflicts=conflicts,
        conditions=list(conditions),
        new_evidence=list(_with_new_evidence(user, visible)[:recent]),
        recent=list(_with_dossier(visible).order_by("-updated_at", "-id")[:recent]),
        markets=list(markets_visible_to(user).order_by("code")),
    )


@dataclass(frozen=True)
class BoardColumn:
    status: str
    label: str
    count: int
    candidates: list[Candidate]


@dataclass(frozen=True)
class Board:
    market: Market
    columns: list[BoardColumn]
    total: int


def market_board(user: User, code: str, *, per_column: int = 8) -> Board:
    """Counts per status of a visible market and its latest-changed candidates per status; else Http404."""
    market = get_object_or_404(markets_visible_to(user), code=code)
    in_market = Candidate.objects.filter(dossier__market=market)
    counts = dict(in_market.values_list("status").annotate(n=Count("id")).order_by())
    latest = (
        in_market.annotate(
            place=Window(RowNumber(), partition_by=[F("status")], order_by=[F("updated_at").desc(), F("id").desc()])
        )
        .filter(place__lte=per_column)
        .select_related("dossier__drug")
        .order_by("status", "place")
    )
    by_status: dict[str, list[Candidate]] = {}
    for candidate in latest:
        candidate.dossier.market = market
        by_status.setdefault(candidate.status, []).append(candidate)
    columns = [
        BoardColumn(status=value, label=label, count=counts.get(value, 0), candidates=by_status.get(value, []))
        for value, label in Candidate.Status.choices
    ]
    return Board(market=market, columns=columns, total=sum(counts.values()))
