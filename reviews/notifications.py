"""Email delivery of the review outbox (`Notification`), daily digests and overdue reminders (`Reminder`).

Exactly once at the SMTP server, and the one window where that stops
--------------------------------------------------------------------
A row goes pending → sending → sent (or → digest, skipped, failed). One task delivers one row:

1. Claim, committed on its own before anything is sent: a single
   `UPDATE … SET state='sending', claimed_at=now, message_id=<fixed for the row>
   WHERE id=… AND (state='pending' OR (state='sending' AND claimed_at < now - lease))`.
   PostgreSQL re-checks the WHERE after a concurrent writer commits, so one worker wins; a retried or
   redelivered task that loses finds the row sent (and stops) or still leased (and retries later).
2. Send over an SMTP connection opened beforehand, so `send_messages` returns right at the server's
   250 reply to the end of DATA (QUIT comes after step 3).
3. Mark at once: `UPDATE … SET state='sent' WHERE id=… AND claimed_at=<ours>`.

A worker killed before the end of DATA leaves the row "sending" and nothing accepted by the server
(a dropped connection aborts the SMTP transaction). Once the lease (`NOTIFICATION_SENDING_LEASE`, longer
than any send can take) has run out, the sweep sends it again with the same Message-ID.

Residual window: from the server accepting the data to the commit of step 3 (one database round trip).
A SIGKILL exactly there, an SMTP timeout while waiting for the 250, or a database unreachable for step 3
sends that email a second time (after the lease), with the same Message-ID: mail systems that
de-duplicate on it show one message, and a count by Message-ID at the server finds the repeat. SMTP has
no way to ask a server whether it took a message, so a client cannot close this window; the design
keeps it to one database round trip. Known cost: while the queue is backlogged longer than the lease,
each sweep enqueues the waiting rows again; the extra tasks find them claimed or sent and do nothing.
SMTP errors release the claim (back to pending, error kept) for the task to retry with backoff; after
`NOTIFICATION_MAX_ATTEMPTS` the row is failed.

Preferences: immediate sends each row; digest parks rows for the daily digest (one email per user);
off marks rows skipped. Reminders honour "off" and are sent at once otherwise (they are daily already).
Blindness: an email never carries a vote; vote fields of an event are shown only once the round is
complete (`reviews.permissions.can_see_other_reviews`), the rule the pages use.
"""

from __future__ import annotations

import contextlib
import smtplib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.template.loader import render_to_string
from django.utils import timezone

from dossiers.models import Candidate, GuardrailCondition
from reviews.models import (
    Assignment,
    AuditEvent,
    Comment,
    DeliveryState,
    Notification,
    NotificationPreference,
    Reminder,
    Review,
)
from reviews.permissions import can_see_other_reviews, can_view

State = DeliveryState
Delivery = NotificationPreference.Delivery
DIGEST_PREFIX = "<digest."
# fields that carry (or reveal) reviewers' votes; shown only once the round is complete
VOTE_FIELDS = frozenset(
    {"recommended_decision", "recommendation", "evidence_level", "decision_stage", "rationale", "decision", "level"}
)
ACTION_TITLES = {
    "candidate.triage": "triaged",
    "candidate.deprioritize": "deprioritized",
    "candidate.revive": "revived",
    "candidate.start_curation": "curation started",
    "candidate.send_to_review": "sent to review",
    "candidate.review_conflict": "reviewers disagree",
    "candidate.review_agree": "reviewers agree; decision pending",
    "candidate.conflict_resolve": "conflict resolved",
    "candidate.sign_off": "signed off",
    "candidate.signature_invalidate": "signature invalidated",
    "candidate.clear": "cleared",
    "candidate.reopen": "reopened",
    "review.assign": "you are assigned to review",
    "review.submit": "a review was submitted",
    "comment.add": "new comment",
    "evidence.changed": "evidence changed",
}


class StillClaimed(Exception):
    """Another sender holds the row's claim; try again once its lease has run out."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"claimed by another sender; retry in {retry_in:.0f}s")
        self.retry_in = retry_in


# ---------------------------------------------------------------- preferences


def preference_of(user: User) -> str:
    """The user's delivery choice; no row means immediate."""
    found = NotificationPreference.objects.filter(user=user).values_list("delivery", flat=True).first()
    return found or Delivery.IMMEDIATE


def notification_preference_set(*, user: User, delivery: str) -> NotificationPreference:
    """Choose immediate, daily digest or off for one's own review emails."""
    if delivery not in Delivery.values:
        raise ValidationError({"delivery": f"{delivery!r} is not one of {', '.join(Delivery.values)}."})
    preference, _ = NotificationPreference.objects.update_or_create(user=user, defaults={"delivery": delivery})
    return preference


# ---------------------------------------------------------------- claim, send, mark


def _lease() -> timedelta:
    return timedelta(seconds=settings.NOTIFICATION_SENDING_LEASE)


def _domain() -> str:
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def _claim(model: type[Notification | Reminder], pk: int, message_id: str, now: datetime) -> bool:
    """Take a pending row, or one whose sender died (lease over); True if this caller now owns it."""
    claimable = Q(state=State.PENDING) | Q(state=State.SENDING, claimed_at__lt=now - _lease())
    updated = model.objects.filter(claimable, pk=pk).update(
        state=State.SENDING, claimed_at=now, message_id=message_id, attempts=F("attempts") + 1
    )
    return updated == 1


def _lost_claim(model: type[Notification | Reminder], pk: int) -> str:
    """After a lost claim: the row's final state, or StillClaimed while another sender's lease runs."""
    state, claimed_at = model.objects.values_list("state", "claimed_at").get(pk=pk)
    if state == State.SENDING and claimed_at is not None:
        raise StillClaimed(max(1.0, (claimed_at + _lease() - timezone.now()).total_seconds()))
    return str(state)


def _send(
    model: type[Notification | Reminder],
    claimed: models.QuerySet[Any],
    message: EmailMultiAlternatives,
    *,
    back_to: str,
) -> None:
    """Send one email for the claimed rows and mark them sent; on an SMTP error release them and re-raise."""
    connection = get_connection()
    try:
        connection.open()
        connection.send_messages([message])
    except Exception as exc:
        claimed.update(
            state=Case(
                When(attempts__gte=settings.NOTIFICATION_MAX_ATTEMPTS, then=Value(State.FAILED)),
                default=Value(back_to),
            ),
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        with contextlib.suppress(Exception):
            connection.close()
        raise
    # Mark before QUIT: the window between the server's 250 and this commit is the one we cannot close.
    claimed.update(state=State.SENT, sent_at=timezone.now(), last_error="")
    with contextlib.suppress(OSError, smtplib.SMTPException):
        connection.close()  # the message is accepted and marked; a failed QUIT changes nothing


def _skip_or_park(model: type[Notification | Reminder], pk: int, target: str) -> str:
    if model.objects.filter(pk=pk, state=State.PENDING).update(state=target):
        return target
    return str(model.objects.values_list("state", flat=True).get(pk=pk))  # another run got there first


# ---------------------------------------------------------------- one notification


def _notification_rows() -> models.QuerySet[Notification]:
    return Notification.objects.select_related(
        "recipient", "event__actor", "event__candidate__dossier__drug", "event__candidate__dossier__market"
    )


def notification_deliver(*, notification_id: int) -> str:
    """Deliver one outbox row by its recipient's preference; return its state afterwards.

    Call outside a transaction: the claim must be committed before the email leaves.
    """
    row = _notification_rows().filter(pk=notification_id).first()
    if row is None or row.state not in (State.PENDING, State.SENDING):
        return row.state if row else "missing"
    if row.state == State.PENDING:
        target = _route(row.recipient, row.event.candidate, digest_ok=True)
        if target is not None:
            return _skip_or_park(Notification, row.pk, target)
    message_id = row.message_id or f"<notification.{row.pk}.{row.created_at:%Y%m%d%H%M%S%f}@{_domain()}>"
    message = notification_email(row, message_id=message_id)
    now = timezone.now()
    if not _claim(Notification, row.pk, message_id, now):
        return _lost_claim(Notification, row.pk)
    _send(Notification, Notification.objects.filter(pk=row.pk, claimed_at=now), message, back_to=State.PENDING)
    return State.SENT


def _route(user: User, candidate: Candidate | None, *, digest_ok: bool) -> str | None:
    """Where a pending row goes instead of being sent now: skipped, the digest, or None (send it)."""
    if not user.is_active or not user.email or (candidate is not None and not can_view(user, candidate)):
        return State.SKIPPED
    preference = preference_of(user)
    if preference == Delivery.OFF:
        return State.SKIPPED
    if preference == Delivery.DIGEST and digest_ok:
        return State.DIGEST
    return None


# ---------------------------------------------------------------- what an email says


@dataclass(frozen=True)
class EventSummary:
    """What one email (or digest line) tells about one audit event."""

    candidate: Candidate | None
    title: str
    actor: str
    from_label: str
    to_label: str
    reason: str
    changes: list[tuple[str, Any, Any]]
    comment: str
    url: str
    why: str
    at: datetime


def _status_label(value: str) -> str:
    return str(Candidate.Status(value).label) if value in Candidate.Status.values else value


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _person(user: User | None) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "The portal"


def visible_changes(event: AuditEvent, user: User) -> list[tuple[str, Any, Any]]:
    """The event's field changes this user may read: never a vote before the round is complete."""
    candidate = event.candidate
    if event.object_type == Review._meta.label_lower:
        return []
    blind = candidate is None or not can_see_other_reviews(user, candidate)
    return [
        (name.replace("_", " "), before, after)
        for name, (before, after) in sorted(event.changes.items())
        if name != "status" and not (blind and name in VOTE_FIELDS)  # the status is told as from → to
    ]


def event_summary(row: Notification) -> EventSummary:
    event, candidate = row.event, row.event.candidate
    comment = ""
    if event.object_type == Comment._meta.label_lower:
        comment = Comment.objects.filter(pk=event.object_id).values_list("body", flat=True).first() or ""
    return EventSummary(
        candidate=candidate,
        title=ACTION_TITLES.get(event.action, event.action.split(".")[-1].replace("_", " ")),
        actor=_person(event.actor),
        from_label=_status_label(event.from_state) if event.from_state else "",
        to_label=_status_label(event.to_state) if event.to_state else "",
        reason=event.reason,
        changes=visible_changes(event, row.recipient),
        comment=comment,
        url=_absolute(candidate.get_absolute_url()) if candidate else settings.SITE_URL + "/",
        why=str(Notification.Reason(row.reason).label) if row.reason in Notification.Reason.values else row.reason,
        at=event.at,
    )


def _render(name: str, context: dict[str, Any], *, to: str, message_id: str) -> EmailMultiAlternatives:
    """An email from the templates/email/<name>_subject.txt, <name>.txt and <name>.html triplet."""
    context = {**context, "base_url": settings.SITE_URL, "settings_url": _absolute("/notifications/settings/")}
    subject = " ".join(render_to_string(f"email/{name}_subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject, render_to_string(f"email/{name}.txt", context), to=[to], headers={"Message-ID": message_id}
    )
    message.attach_alternative(render_to_string(f"email/{name}.html", context), "text/html")
    return message


def notification_email(row: Notification, *, message_id: str) -> EmailMultiAlternatives:
    return _render(
        "notification",
        {"item": event_summary(row), "user": row.recipient},
        to=row.recipient.email,
        message_id=message_id,
    )


# ---------------------------------------------------------------- digests


def _stuck_digests() -> Q:
    return Q(state=State.SENDING, message_id__startswith=DIGEST_PREFIX, claimed_at__lt=timezone.now() - _lease())


def digest_recipients() -> list[int]:
    """Users with rows waiting for the digest, or a digest whose sender died."""
    rows = Notification.objects.filter(Q(state=State.DIGEST) | _stuck_digests())
    return sorted(set(rows.values_list("recipient_id", flat=True)))


def digest_recipients_stuck() -> list[int]:
    """Users whose digest sender died mid-send (lease over): the sweep sends those again."""
    return sorted(set(Notification.objects.filter(_stuck_digests()).values_list("recipient_id", flat=True)))


def digest_send(*, user_id: int) -> int:
    """Send one email with every row waiting for this user's digest; return how many rows it carried.

    A digest whose sender died is sent again first, alone and with its Message-ID (see the module doc).
    """
    now = timezone.now()
    mine = Notification.objects.filter(recipient_id=user_id)
    stuck = (
        mine.filter(state=State.SENDING, message_id__startswith=DIGEST_PREFIX, claimed_at__lt=now - _lease())
        .values_list("message_id", flat=True)
        .first()
    )
    message_id = stuck or f"{DIGEST_PREFIX}{user_id}.{now:%Y%m%d%H%M%S%f}@{_domain()}>"
    waiting = mine.filter(state=State.SENDING, message_id=stuck, claimed_at__lt=now - _lease()) if stuck else None
    waiting = waiting if waiting is not None else mine.filter(state=State.DIGEST)
    if not waiting.update(state=State.SENDING, claimed_at=now, message_id=message_id, attempts=F("attempts") + 1):
        return 0
    claimed = mine.filter(state=State.SENDING, message_id=message_id, claimed_at=now)
    rows = list(_notification_rows().filter(pk__in=claimed.values("pk")).order_by("event__at", "id"))
    user = rows[0].recipient
    shown = [r for r in rows if _route(user, r.event.candidate, digest_ok=False) is None]
    if not shown:
        claimed.update(state=State.SKIPPED)
        return 0
    claimed.exclude(pk__in=[r.pk for r in shown]).update(state=State.SKIPPED)
    items = [event_summary(r) for r in shown]
    message = _render("digest", {"items": items, "user": user}, to=user.email, message_id=message_id)
    _send(Notification, claimed.filter(pk__in=[r.pk for r in shown]), message, back_to=State.DIGEST)
    return len(shown)


# ---------------------------------------------------------------- sweep


def due_for_retry() -> tuple[list[int], list[int]]:
    """Ids of notifications and reminders to (re)try: pending for a lease or more, or claimed by a dead sender.

    Fresh pending rows are left to the task enqueued with them; the digest has its own stuck check.
    """
    old = timezone.now() - _lease()
    due = Q(state=State.PENDING, created_at__lt=old) | Q(state=State.SENDING, claimed_at__lt=old)
    notifications = Notification.objects.filter(due).exclude(message_id__startswith=DIGEST_PREFIX)
    reminders = Reminder.objects.filter(due)
    return list(notifications.values_list("pk", flat=True)), list(reminders.values_list("pk", flat=True))


# ---------------------------------------------------------------- overdue reminders


@dataclass(frozen=True)
class Overdue:
    kind: str
    object_id: int
    candidate_id: int
    recipient_id: int
    due_date: date


def overdue_items(today: date) -> list[Overdue]:
    """Open assignments without a review past their due date, and open owned conditions past theirs."""
    items = []
    default_days = timedelta(days=settings.REVIEW_DUE_DAYS)
    assignments = (
        Assignment.objects.filter(round__closed_at__isnull=True, round__candidate__status=Candidate.Status.IN_REVIEW)
        .exclude(
            models.Exists(Review.objects.filter(round=models.OuterRef("round"), reviewer=models.OuterRef("reviewer")))
        )
        .select_related("round")
    )
    for assignment in assignments:
        due = assignment.due_date or timezone.localdate(assignment.assigned_at) + default_days
        if due < today:
            items.append(
                Overdue(
                    Reminder.Kind.REVIEW_OVERDUE,
                    assignment.pk,
                    assignment.round.candidate_id,
                    assignment.reviewer_id,
                    due,
                )
            )
    conditions = GuardrailCondition.objects.filter(
        status=GuardrailCondition.Status.OPEN, due_date__lt=today, owner__isnull=False
    ).exclude(candidate__status=Candidate.Status.DEPRIORITIZED)
    for condition in conditions:
        assert condition.owner_id is not None and condition.due_date is not None
        items.append(
            Overdue(
                Reminder.Kind.CONDITION_OVERDUE,
                condition.pk,
                condition.candidate_id,
                condition.owner_id,
                condition.due_date,
            )
        )
    return items


def reminders_create(*, today: date | None = None) -> list[int]:
    """Write today's reminder rows (one per object, person and day, whatever runs twice); return pending ids."""
    today = today or timezone.localdate()
    Reminder.objects.bulk_create(
        [
            Reminder(
                kind=item.kind,
                object_id=item.object_id,
                candidate_id=item.candidate_id,
                recipient_id=item.recipient_id,
                day=today,
                due_date=item.due_date,
            )
            for item in overdue_items(today)
        ],
        ignore_conflicts=True,
    )
    return list(Reminder.objects.filter(day=today, state=State.PENDING).values_list("pk", flat=True))


def reminder_deliver(*, reminder_id: int) -> str:
    """Send one reminder unless its recipient turned emails off; return its state afterwards."""
    row = (
        Reminder.objects.select_related("recipient", "candidate__dossier__drug", "candidate__dossier__market")
        .filter(pk=reminder_id)
        .first()
    )
    if row is None or row.state not in (State.PENDING, State.SENDING):
        return row.state if row else "missing"
    if row.state == State.PENDING:
        target = _route(row.recipient, row.candidate, digest_ok=False)
        if target is not None:
            return _skip_or_park(Reminder, row.pk, target)
    message_id = row.message_id or f"<reminder.{row.pk}.{row.day:%Y%m%d}@{_domain()}>"
    context = {
        "reminder": row,
        "candidate": row.candidate,
        "what": row.get_kind_display(),
        "days_late": (row.day - row.due_date).days,
        "detail": _reminder_detail(row),
        "url": _absolute(row.candidate.get_absolute_url()),
        "user": row.recipient,
    }
    message = _render("reminder", context, to=row.recipient.email, message_id=message_id)
    now = timezone.now()
    if not _claim(Reminder, row.pk, message_id, now):
        return _lost_claim(Reminder, row.pk)
    _send(Reminder, Reminder.objects.filter(pk=row.pk, claimed_at=now), message, back_to=State.PENDING)
    return State.SENT


def _reminder_detail(row: Reminder) -> str:
    if row.kind == Reminder.Kind.CONDITION_OVERDUE:
        title = GuardrailCondition.objects.filter(pk=row.object_id).values_list("title", flat=True).first()
        return f"condition “{title}”" if title else ""
    return "your review"
