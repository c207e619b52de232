"""Every write of the review workflow: one function per transition.

Each service is keyword-only, runs in one transaction, locks the candidate row, checks the permission
(`reviews.permissions`) and the allowed source states (`reviews.models.TRANSITIONS`), and appends its
own `AuditEvent` in the same transaction. Events that someone must hear about also get `Notification`
outbox rows (event, recipient) in that transaction; delivery (email, digest) reads the outbox later.
Errors: `PermissionDenied` when the user may not act, `ValidationError` when the state or input is wrong;
either way nothing is written.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, ParamSpec, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from dossiers.models import Candidate, Decision, DecisionStage, EvidenceLevel, GuardrailCondition
from dossiers.permissions import can_view_market
from portal.roles import Role
from reviews import permissions as perms
from reviews.gating import decision_refusals
from reviews.models import (
    TRANSITIONS,
    Assignment,
    AuditEvent,
    Comment,
    ConflictResolution,
    Deprioritization,
    DeprioritizationReason,
    Notification,
    Review,
    ReviewRound,
    SignOff,
    Watch,
)
from reviews.signatures import candidate_content, content_hash, signature_meaning
from webhooks.services import audit_event_publish

Status = Candidate.Status
P = ParamSpec("P")
R = TypeVar("R")


# ---------------------------------------------------------------- plumbing


def _owns_audit(func: Callable[P, R]) -> Callable[P, R]:
    """Mark the transaction as audited by a service, so the PostgreSQL row triggers stand aside."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _row_triggers_off():
            return func(*args, **kwargs)

    return wrapper


@contextmanager
def _row_triggers_off() -> Iterator[None]:
    # A depth counter per connection: nested services leave the setting on for their caller.
    depth = getattr(connection, "_reviews_service_depth", 0)
    if depth == 0:
        _set_local("reviews.in_service", "on")
    connection._reviews_service_depth = depth + 1  # type: ignore[attr-defined]
    try:
        yield
    finally:
        connection._reviews_service_depth = depth  # type: ignore[attr-defined]
    # Not reached on error: the rollback of the service's savepoint undoes the setting by itself.
    if depth == 0:
        _set_local("reviews.in_service", "off")


def _set_local(name: str, value: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def _lock(candidate_id: int) -> Candidate:
    try:
        return Candidate.objects.select_for_update(of=("self",)).select_related("dossier__market").get(pk=candidate_id)
    except Candidate.DoesNotExist:
        raise ValidationError(f"Candidate {candidate_id} does not exist.") from None


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


def _check_state(candidate: Candidate, action: str) -> None:
    sources = TRANSITIONS[action][0]
    if candidate.status not in sources:
        allowed = ", ".join(sorted(sources))
        raise ValidationError(
            f"Cannot {action.replace('_', ' ')} candidate {candidate.pk}: it is {candidate.status}; "
            f"allowed from: {allowed}."
        )


def _open_round(candidate: Candidate) -> ReviewRound:
    round_ = ReviewRound.open_for(candidate)
    if round_ is None:
        raise ValidationError(f"Candidate {candidate.pk} has no open review round; start curation first.")
    return round_


def _object_type(obj: models.Model) -> str:
    return f"{obj._meta.app_label}.{obj._meta.model_name}"


def _audit(
    *,
    by: User | None,
    candidate: Candidate,
    action: str,
    obj: models.Model | None = None,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    changes: dict[str, list[Any]] | None = None,
) -> AuditEvent:
    target = obj if obj is not None else candidate
    event = AuditEvent.objects.create(
        actor=by,
        candidate=candidate,
        dossier_id=candidate.dossier_id,
        object_type=_object_type(target),
        object_id=str(target.pk),
        action=action,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        changes=changes or {},
    )
    if from_state != to_state:
        # Webhooks (status changed, signed off): the delivery rows are written in this transaction (an outbox),
        # so they commit with the event; sending starts after commit and the webhook sweep repairs a lost send.
        audit_event_publish(event_id=event.pk)
    return event


def _update_candidate(candidate: Candidate, **values: Any) -> dict[str, list[Any]]:
    """Write the given fields (and a raised version), returning {field: [before, after]} of real changes."""
    changes = {name: [getattr(candidate, name), value] for name, value in values.items()}
    changes = {name: pair for name, pair in changes.items() if pair[0] != pair[1]}
    for name, value in values.items():
        setattr(candidate, name, value)
    candidate.version += 1
    candidate.save(update_fields=[*values, "version", "updated_at"])
    return changes


def _move(
    candidate: Candidate,
    *,
    by: User | None,
    action: str,
    to: str,
    reason: str = "",
    obj: models.Model | None = None,
    **values: Any,
) -> AuditEvent:
    """Change the candidate's status (and other fields), audit it and tell the watchers."""
    before = candidate.status
    changes = _update_candidate(candidate, status=to, **values)
    event = _audit(
        by=by,
        candidate=candidate,
        action=f"candidate.{action}",
        obj=obj,
        from_state=before,
        to_state=to,
        reason=reason,
        changes=changes,
    )
    recipients = list(_watchers(candidate))
    if to in (Status.IN_CONFLICT, Status.DECISION_PENDING):
        recipients += _market_role_members(candidate, Role.APPROVER)
    _notify(event, recipients, Notification.Reason.STATUS_CHANGE)
    return event


def _watchers(candidate: Candidate) -> Iterable[User]:
    return get_user_model().objects.filter(watches__candidate=candidate)


def _market_role_members(candidate: Candidate, role: Role) -> list[User]:
    return list(candidate.dossier.market.members.filter(groups__name=role.value, is_active=True))


def _notify(event: AuditEvent, recipients: Iterable[User], reason: str) -> None:
    """Queue one outbox row per recipient who can see the candidate, never the actor."""
    market = event.candidate.dossier.market if event.candidate else None
    rows = {
        user.pk: Notification(event=event, recipient=user, reason=reason)
        for user in recipients
        if user.pk != event.actor_id and user.is_active and (market is None or can_view_market(user, market))
    }
    Notification.objects.bulk_create(rows.values(), ignore_conflicts=True)
    if rows:
        # Delivery only after commit: the worker must see the rows, and a rollback must send nothing.
        ids = list(Notification.objects.filter(event=event, recipient_id__in=rows).values_list("pk", flat=True))
        # robust: a broker outage must not fail the committed request; the beat sweep sends what was missed
        transaction.on_commit(functools.partial(_deliver_later, ids), robust=True)


def _deliver_later(notification_ids: list[int]) -> None:
    from reviews.tasks import notification_deliver_task  # lazy: the task module imports this app's services

    for notification_id in notification_ids:
        notification_deliver_task.delay(notification_id)


def _watch(candidate: Candidate, user: User) -> None:
    Watch.objects.get_or_create(candidate=candidate, user=user)


def _choice(value: str, choices: type[models.TextChoices], field: str) -> str:
    if value not in choices.values:
        raise ValidationError({field: f"{value!r} is not one of {', '.join(choices.values)}."})
    return value


def _text(value: str, field: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: "This field is required."})
    return value


# ---------------------------------------------------------------- triage


@transaction.atomic
@_owns_audit
def candidate_triage(*, candidate_id: int, by: User) -> Candidate:
    """Accept a predicted candidate for curation."""
    candidate = _lock(candidate_id)
    _require(perms.can_triage(by, candidate), "Only a curator of this market can triage its candidates.")
    _check_state(candidate, "triage")
    _move(candidate, by=by, action="triage", to=Status.TRIAGED)
    return candidate


@transaction.atomic
@_owns_audit
def candidate_deprioritize(*, candidate_id: int, by: User, reason_code: str, reason_text: str = "") -> Candidate:
    """Set a candidate aside with a reason code; "other" needs a text."""
    candidate = _lock(candidate_id)
    _require(perms.can_triage(by, candidate), "Only a curator of this market can deprioritize its candidates.")
    _check_state(candidate, "deprioritize")
    _choice(reason_code, DeprioritizationReason, "reason_code")
    reason_text = (reason_text or "").strip()
    if reason_code == DeprioritizationReason.OTHER and not reason_text:
        raise ValidationError({"reason_text": 'A reason of "Other" needs a text.'})
    record = Deprioritization.objects.create(
        candidate=candidate, reason_code=reason_code, reason_text=reason_text, by=by
    )
    label = DeprioritizationReason(reason_code).label
    reason = f"{label}: {reason_text}" if reason_text else label
    _move(candidate, by=by, action="deprioritize", to=Status.DEPRIORITIZED, reason=reason, obj=record)
    return candidate


@transaction.atomic
@_owns_audit
def candidate_revive(*, candidate_id: int, by: User, reason: str = "") -> Candidate:
    """Bring a deprioritized candidate back to the predicted queue."""
    candidate = _lock(candidate_id)
    _require(perms.can_triage(by, candidate), "Only a curator of this market can revive its candidates.")
    _check_state(candidate, "revive")
    _move(candidate, by=by, action="revive", to=Status.PREDICTED, reason=reason.strip())
    return candidate


# ---------------------------------------------------------------- curation and review


@transaction.atomic
@_owns_audit
def candidate_start_curation(*, candidate_id: int, by: User) -> Candidate:
    """Start curating; the acting curator is recorded on the round and may not review or sign it."""
    candidate = _lock(candidate_id)
    _require(perms.can_curate(by, candidate), "Only a curator of this market can curate its candidates.")
    _check_state(candidate, "start_curation")
    round_ = ReviewRound.open_for(candidate)
    if round_ is None:
        number = (candidate.review_rounds.aggregate(n=models.Max("number"))["n"] or 0) + 1
        round_ = ReviewRound.objects.create(candidate=candidate, number=number, opened_by=by, reason="First review")
    round_.curated_by = by
    round_.save(update_fields=["curated_by"])
    _watch(candidate, by)
    _move(candidate, by=by, action="start_curation", to=Status.IN_CURATION, obj=round_)
    return candidate


@transaction.atomic
@_owns_audit
def review_assign(
    *, candidate_id: int, by: User, reviewers: Sequence[User], due_date: date | None = None
) -> list[Assignment]:
    """Assign reviewers to the open round; already assigned ones are left as they are."""
    candidate = _lock(candidate_id)
    _require(perms.can_assign(by, candidate), "Only a curator or approver of this market can assign reviewers.")
    _check_state(candidate, "review_assign")
    round_ = _open_round(candidate)
    refused = [str(user) for user in reviewers if not (user.is_active and perms.is_eligible_reviewer(user, candidate))]
    if refused:
        raise ValidationError(
            {"reviewers": f"Not eligible (reviewer of this market, active, not its curator): {', '.join(refused)}."}
        )
    created = []
    for user in reviewers:
        assignment, new = Assignment.objects.get_or_create(
            round=round_, reviewer=user, defaults={"assigned_by": by, "due_date": due_date}
        )
        if not new:
            continue
        created.append(assignment)
        _watch(candidate, user)
        event = _audit(
            by=by,
            candidate=candidate,
            action="review.assign",
            obj=assignment,
            changes={"reviewer": [None, user.get_username()], "due_date": [None, due_date and due_date.isoformat()]},
        )
        _notify(event, [user], Notification.Reason.ASSIGNED)
    return created


@transaction.atomic
@_owns_audit
def candidate_send_to_review(*, candidate_id: int, by: User) -> Candidate:
    """Hand the curated candidate to at least two reviewers, none of them its curator."""
    candidate = _lock(candidate_id)
    _require(perms.can_assign(by, candidate), "Only a curator or approver of this market can send to review.")
    _check_state(candidate, "send_to_review")
    round_ = _open_round(candidate)
    reviewer_ids = set(round_.assignments.values_list("reviewer_id", flat=True))
    if round_.curated_by_id in reviewer_ids:
        raise ValidationError("The curator of this candidate may not review it; remove that assignment first.")
    if len(reviewer_ids) < 2:
        raise ValidationError(f"At least two reviewers must be assigned; {len(reviewer_ids)} is.")
    _move(candidate, by=by, action="send_to_review", to=Status.IN_REVIEW, obj=round_)
    return candidate


@transaction.atomic
@_owns_audit
def review_submit(
    *,
    candidate_id: int,
    by: User,
    recommendation: str,
    evidence_level: str,
    decision_stage: str,
    rationale: str,
    proposed_conditions: Sequence[str] = (),
) -> Review:
    """Record one blind vote; the last one decides between conflict and decision pending."""
    candidate = _lock(candidate_id)
    _require(perms.can_review(by, candidate), "Only an assigned reviewer who has not yet submitted can review.")
    _check_state(candidate, "review_submit")
    round_ = _open_round(candidate)
    review = Review.objects.create(
        round=round_,
        reviewer=by,
        recommendation=_choice(recommendation, Decision, "recommendation"),
        evidence_level=_choice(evidence_level, EvidenceLevel, "evidence_level"),
        decision_stage=_choice(decision_stage, DecisionStage, "decision_stage"),
        rationale=_text(rationale, "rationale"),
        proposed_conditions=[c.strip() for c in proposed_conditions if c.strip()],
    )
    # The audit row says that a vote came in, never what it was: the timeline must stay blind.
    _audit(by=by, candidate=candidate, action="review.submit", obj=review)
    if perms.round_is_complete(round_):
        _close_voting(candidate, round_, by=by)
    return review


def _close_voting(candidate: Candidate, round_: ReviewRound, *, by: User) -> None:
    reviews = list(round_.reviews.all())
    votes = {(r.recommendation, r.evidence_level) for r in reviews}
    if len(votes) > 1:
        _move(candidate, by=by, action="review_conflict", to=Status.IN_CONFLICT, obj=round_)
        return
    ((decision, level),) = votes
    _move(
        candidate,
        by=by,
        action="review_agree",
        to=Status.DECISION_PENDING,
        obj=round_,
        recommended_decision=decision,
        evidence_level=level,
        # reviewers agreeing on decision and level may still differ on stage: keep the most cautious
        decision_stage=min(r.decision_stage for r in reviews),
    )


@transaction.atomic
@_owns_audit
def conflict_resolve(
    *, candidate_id: int, by: User, decision: str, level: str, stage: str, note: str
) -> ConflictResolution:
    """Settle a disagreement (approver or third reviewer) and move on to sign-off."""
    candidate = _lock(candidate_id)
    _require(
        perms.can_resolve_conflict(by, candidate),
        "Only an approver or a third reviewer (not the curator, not an assigned reviewer) can resolve.",
    )
    _check_state(candidate, "conflict_resolve")
    resolution = ConflictResolution.objects.create(
        round=_open_round(candidate),
        resolved_by=by,
        decision=_choice(decision, Decision, "decision"),
        level=_choice(level, EvidenceLevel, "level"),
        stage=_choice(stage, DecisionStage, "stage"),
        note=_text(note, "note"),
    )
    _move(
        candidate,
        by=by,
        action="conflict_resolve",
        to=Status.DECISION_PENDING,
        obj=resolution,
        reason=resolution.note,
        recommended_decision=decision,
        evidence_level=level,
        decision_stage=stage,
    )
    return resolution


# ---------------------------------------------------------------- sign-off


@transaction.atomic
@_owns_audit
def signoff_create(*, candidate_id: int, by: User, password: str, decision: str) -> SignOff:
    """Sign a decision electronically: password re-entered, gating checked, content hashed.

    The meaning is fixed by the decision ("Approved: Proceed with Guardrails"), never free text, so the
    record cannot say one thing and decide another.
    """
    candidate = _lock(candidate_id)
    if perms.can_view(by, candidate) and perms.took_part(by, candidate):
        raise PermissionDenied(
            "You curated or reviewed this candidate (or settled its conflict), so you may not sign it off."
        )
    _require(perms.can_sign_off(by, candidate), "Only an approver of this market can sign off.")
    _check_state(candidate, "sign_off")
    if not by.check_password(password):
        raise ValidationError({"password": "The password is not correct; nothing was signed."})
    if not by.get_full_name().strip():
        raise ValidationError(
            "A signature records the signer's full name; yours is not set (ask an admin). Nothing was signed."
        )
    _choice(decision, Decision, "decision")
    refusals = decision_refusals(candidate, decision)
    if refusals:
        raise ValidationError({"decision": refusals})
    round_ = _open_round(candidate)
    before = candidate.status
    changes = _update_candidate(candidate, status=Status.SIGNED_OFF, recommended_decision=decision)
    signoff = _signoff_insert(
        candidate=candidate,
        round=round_,
        signer=by,
        signer_name=by.get_full_name().strip(),
        signed_at=timezone.now(),
        signed_timezone=timezone.get_current_timezone_name(),
        meaning=signature_meaning(decision),
        decision=decision,
        content=candidate_content(candidate),
        content_hash=content_hash(candidate),
    )
    event = _audit(
        by=by,
        candidate=candidate,
        action="candidate.sign_off",
        obj=signoff,
        from_state=before,
        to_state=Status.SIGNED_OFF,
        reason=signoff.meaning,
        changes=changes,
    )
    _watch(candidate, by)
    _notify(event, _watchers(candidate), Notification.Reason.STATUS_CHANGE)
    # Conditions met in an earlier round stay met: a re-signed decision with nothing open is cleared at once.
    _clear_if_resolved(candidate, by=by)
    return signoff


def _signoff_insert(**fields: Any) -> SignOff:
    try:
        with transaction.atomic():
            return SignOff.objects.create(**fields)
    except IntegrityError:
        # The lock makes this unreachable in normal use; the constraint is the last word if it is bypassed.
        raise ValidationError("This round already has a valid signature.") from None


@transaction.atomic
@_owns_audit
def signature_check(*, candidate_id: int, by: User | None = None) -> SignOff | None:
    """Invalidate the current signature if the signed content changed since; return it if so.

    Call after any edit of a decided candidate's content (curation, evidence refresh); `by` is who
    edited, or None for the system.
    """
    candidate = _lock(candidate_id)
    if candidate.status not in TRANSITIONS["signature_invalidate"][0]:
        return None
    round_ = ReviewRound.open_for(candidate)
    signoff = SignOff.objects.filter(round=round_, valid=True).first() if round_ else None
    if signoff is None or signoff.content_hash == content_hash(candidate):
        return None
    now_content = candidate_content(candidate)
    changed = sorted(part for part in now_content if now_content[part] != signoff.content.get(part))
    signoff.valid = False
    signoff.invalidated_at = timezone.now()
    signoff.invalidated_reason = f"Signed content changed: {', '.join(changed)}."
    signoff.save(update_fields=["valid", "invalidated_at", "invalidated_reason"])
    _move(
        candidate,
        by=by,
        action="signature_invalidate",
        to=Status.DECISION_PENDING,
        obj=signoff,
        reason=signoff.invalidated_reason,
    )
    return signoff


def signatures_sweep() -> list[SignOff]:
    """Check every decided candidate's signature (the hourly backstop of the checks queued by edits)."""
    decided = Candidate.objects.filter(status__in=TRANSITIONS["signature_invalidate"][0]).values_list("pk", flat=True)
    voided = (signature_check(candidate_id=pk) for pk in decided.iterator())
    return [signoff for signoff in voided if signoff is not None]


# ---------------------------------------------------------------- conditions


def _lock_condition(condition_id: int) -> tuple[Candidate, GuardrailCondition]:
    candidate_id = GuardrailCondition.objects.filter(pk=condition_id).values_list("candidate_id", flat=True).first()
    if candidate_id is None:
        raise ValidationError(f"Condition {condition_id} does not exist.")
    candidate = _lock(candidate_id)
    return candidate, GuardrailCondition.objects.select_for_update().get(pk=condition_id)


def _resolve_condition(
    candidate: Candidate, condition: GuardrailCondition, *, by: User, to: str, note: str, action: str
) -> GuardrailCondition:
    if condition.status != GuardrailCondition.Status.OPEN:
        raise ValidationError(f"Condition {condition.title!r} is already {condition.status}.")
    before = condition.status
    condition.status = to
    condition.resolution_note = note
    condition.resolved_at = timezone.now()
    condition.resolved_by = by
    condition.save(update_fields=["status", "resolution_note", "resolved_at", "resolved_by"])
    _audit(
        by=by,
        candidate=candidate,
        action=action,
        obj=condition,
        from_state=before,
        to_state=to,
        reason=note,
        changes={"status": [before, to], "resolution_note": ["", note]},
    )
    _clear_if_resolved(candidate, by=by)
    return condition


def _clear_if_resolved(candidate: Candidate, *, by: User) -> None:
    """A signed "Proceed with Guardrails" whose every condition is met or waived becomes cleared."""
    if candidate.status != Status.SIGNED_OFF or candidate.recommended_decision != Decision.GUARDRAILS:
        return
    if candidate.conditions.filter(status=GuardrailCondition.Status.OPEN).exists():
        return
    _move(candidate, by=by, action="clear", to=Status.CLEARED, reason="Every condition is met or waived.")


def _require_signed_content(candidate: Candidate) -> None:
    """Refuse to track conditions of a decision whose signed content has changed since it was signed.

    The change itself voids the signature through `signature_check` (queued by every edit); this guard
    covers the moment before that check has run.
    """
    signoff = SignOff.objects.filter(candidate=candidate, valid=True, round__closed_at__isnull=True).first()
    if signoff is not None and signoff.content_hash != content_hash(candidate):
        raise ValidationError(
            "The candidate's content changed after it was signed, so the signature no longer holds; "
            "it must be signed again before its conditions are tracked."
        )


@transaction.atomic
@_owns_audit
def condition_mark_met(*, condition_id: int, by: User, note: str) -> GuardrailCondition:
    """Mark a condition met, with a note or link as evidence; the last one clears the candidate."""
    candidate, condition = _lock_condition(condition_id)
    _require(
        perms.can_mark_condition_met(by, condition),
        "Only the condition's owner, a curator or an approver of this market can mark it met.",
    )
    _check_state(candidate, "condition_mark_met")
    _require_signed_content(candidate)
    return _resolve_condition(
        candidate,
        condition,
        by=by,
        to=GuardrailCondition.Status.MET,
        note=_text(note, "note"),
        action="condition.mark_met",
    )


@transaction.atomic
@_owns_audit
def condition_waive(*, condition_id: int, by: User, justification: str) -> GuardrailCondition:
    """Waive a condition (approvers only), with a justification."""
    candidate, condition = _lock_condition(condition_id)
    _require(perms.can_waive_condition(by, candidate), "Only an approver of this market can waive a condition.")
    _check_state(candidate, "condition_waive")
    _require_signed_content(candidate)
    return _resolve_condition(
        candidate,
        condition,
        by=by,
        to=GuardrailCondition.Status.WAIVED,
        note=_text(justification, "justification"),
        action="condition.waive",
    )


# ---------------------------------------------------------------- reopen


@transaction.atomic
@_owns_audit
def candidate_reopen(*, candidate_id: int, by: User, reason: str) -> ReviewRound:
    """Reopen a decided candidate in a new round; earlier rounds, reviews and signatures stay as they are."""
    candidate = _lock(candidate_id)
    _require(perms.can_reopen(by, candidate), "Only an approver of this market can reopen a candidate.")
    _check_state(candidate, "reopen")
    reason = _text(reason, "reason")
    previous = ReviewRound.open_for(candidate)
    if previous is not None:
        previous.closed_at = timezone.now()
        previous.save(update_fields=["closed_at"])
    number = (previous.number if previous else 0) + 1
    round_ = ReviewRound.objects.create(candidate=candidate, number=number, opened_by=by, reason=reason)
    _move(candidate, by=by, action="reopen", to=Status.TRIAGED, reason=reason, obj=round_)
    return round_


# ---------------------------------------------------------------- comments and watching

# @name at the start or after a space or punctuation other than "@" or a word character (not e-mails)
MENTION = re.compile(r"(?<![\w@])@([\w.+-]*\w)")


def mentioned_usernames(body: str) -> list[str]:
    return list(dict.fromkeys(MENTION.findall(body)))


@transaction.atomic
@_owns_audit
def comment_add(*, candidate_id: int, by: User, body: str) -> Comment:
    """Post a comment; mentioned users who can see the candidate are linked and notified."""
    candidate = _lock(candidate_id)
    _require(perms.can_comment(by, candidate), "You cannot comment on this candidate.")
    comment = Comment.objects.create(candidate=candidate, author=by, body=_text(body, "body"))
    names = [name.lower() for name in mentioned_usernames(comment.body)]
    mentioned = [
        user
        for user in get_user_model()
        .objects.filter(is_active=True)
        .annotate(lower_name=Lower("username"))
        .filter(lower_name__in=names)
        if perms.can_view(user, candidate)
    ]
    comment.mentions.set(mentioned)
    event = _audit(
        by=by,
        candidate=candidate,
        action="comment.add",
        obj=comment,
        changes={"mentions": [[], [user.get_username() for user in mentioned]]} if mentioned else None,
    )
    _notify(event, mentioned, Notification.Reason.MENTIONED)
    already = {user.pk for user in mentioned}
    _notify(event, [w for w in _watchers(candidate) if w.pk not in already], Notification.Reason.COMMENT)
    _watch(candidate, by)
    return comment


@transaction.atomic
def watch(*, candidate_id: int, by: User) -> Watch:
    """Follow a candidate's changes; idempotent. Not audited: it changes nothing about the candidate."""
    candidate = Candidate.objects.select_related("dossier__market").get(pk=candidate_id)
    _require(perms.can_comment(by, candidate), "You cannot watch this candidate.")
    return Watch.objects.get_or_create(candidate=candidate, user=by)[0]


@transaction.atomic
def unwatch(*, candidate_id: int, by: User) -> None:
    """Stop following a candidate; idempotent."""
    Watch.objects.filter(candidate_id=candidate_id, user=by).delete()
