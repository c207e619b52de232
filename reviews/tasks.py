"""Celery tasks that deliver review emails: load by id, call one service in reviews.notifications, own the retries.

Late acks: a worker killed mid-task leaves its message for redelivery, and the claim on each outbox row
(see reviews.notifications) makes a second run send nothing that the first already sent. The beat jobs
(`portal/settings.py` CELERY_BEAT_SCHEDULE) sweep stuck rows, send the daily digests and the reminders.
"""

from __future__ import annotations

import logging
import smtplib

from celery import Task, shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import OperationalError

from reviews import notifications, services

log = logging.getLogger(__name__)
BACKOFF_BASE_S = 30
BACKOFF_MAX_S = 600  # below the broker's visibility timeout: no long ETAs on Redis
RETRYABLE = (smtplib.SMTPException, OSError, OperationalError)


def _backoff(retries: int) -> int:
    return int(min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**retries))


def _retry(task: Task, exc: Exception) -> Exception:
    if isinstance(exc, notifications.StillClaimed):
        return task.retry(exc=exc, countdown=exc.retry_in)
    return task.retry(exc=exc, countdown=_backoff(task.request.retries))


@shared_task(
    bind=True, name="reviews.notification_deliver", acks_late=True, reject_on_worker_lost=True, max_retries=None
)
def notification_deliver_task(self: Task, notification_id: int) -> str:
    """Send one outbox row (or park or skip it by preference); retried with backoff on SMTP errors."""
    try:
        return notifications.notification_deliver(notification_id=notification_id)
    except notifications.StillClaimed as exc:
        raise _retry(self, exc) from exc
    except RETRYABLE as exc:
        # The service counted the attempt; past NOTIFICATION_MAX_ATTEMPTS the row is failed, stop there.
        if self.request.retries + 1 >= settings.NOTIFICATION_MAX_ATTEMPTS:
            log.error(
                "notification %s: giving up after %s attempts: %s", notification_id, self.request.retries + 1, exc
            )
            raise
        raise _retry(self, exc) from exc


@shared_task(bind=True, name="reviews.reminder_deliver", acks_late=True, reject_on_worker_lost=True, max_retries=None)
def reminder_deliver_task(self: Task, reminder_id: int) -> str:
    """Send one overdue reminder; retried with backoff on SMTP errors."""
    try:
        return notifications.reminder_deliver(reminder_id=reminder_id)
    except notifications.StillClaimed as exc:
        raise _retry(self, exc) from exc
    except RETRYABLE as exc:
        if self.request.retries + 1 >= settings.NOTIFICATION_MAX_ATTEMPTS:
            log.error("reminder %s: giving up after %s attempts: %s", reminder_id, self.request.retries + 1, exc)
            raise
        raise _retry(self, exc) from exc


@shared_task(bind=True, name="reviews.digest_send", acks_late=True, reject_on_worker_lost=True, max_retries=None)
def digest_send_task(self: Task, user_id: int) -> int:
    """Send one user's daily digest; the rows go back to the digest on an SMTP error, retried with backoff."""
    try:
        return notifications.digest_send(user_id=user_id)
    except RETRYABLE as exc:
        if self.request.retries + 1 >= settings.NOTIFICATION_MAX_ATTEMPTS:
            raise
        raise _retry(self, exc) from exc


@shared_task(name="reviews.digests_send", acks_late=True, reject_on_worker_lost=True)
def digests_send_task() -> int:
    """Beat, daily: one digest task per user with rows waiting."""
    users = notifications.digest_recipients()
    for user_id in users:
        digest_send_task.delay(user_id)
    return len(users)


@shared_task(name="reviews.reminders_create", acks_late=True, reject_on_worker_lost=True)
def reminders_create_task() -> int:
    """Beat, daily: write today's overdue reminders (idempotent per object, person and day) and send them."""
    ids = notifications.reminders_create()
    for reminder_id in ids:
        reminder_deliver_task.delay(reminder_id)
    return len(ids)


@shared_task(name="reviews.notifications_sweep", acks_late=True, reject_on_worker_lost=True)
def notifications_sweep_task() -> int:
    """Beat, every minute: re-enqueue rows whose task was lost (crash before publish, killed worker)."""
    notification_ids, reminder_ids = notifications.due_for_retry()
    for notification_id in notification_ids:
        notification_deliver_task.delay(notification_id)
    for reminder_id in reminder_ids:
        reminder_deliver_task.delay(reminder_id)
    for user_id in notifications.digest_recipients_stuck():
        digest_send_task.delay(user_id)
    return len(notification_ids) + len(reminder_ids)


@shared_task(
    name="reviews.signatures_check",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def signatures_check_task(candidate_ids: list[int], by_id: int | None = None) -> int:
    """Sent by name from dossiers after an edit of signed content: void the signatures it changed."""
    by = get_user_model().objects.filter(pk=by_id).first() if by_id else None
    voided = [services.signature_check(candidate_id=pk, by=by) for pk in candidate_ids]
    return sum(signoff is not None for signoff in voided)


@shared_task(name="reviews.signatures_sweep", acks_late=True, reject_on_worker_lost=True)
def signatures_sweep_task() -> int:
    """Beat, hourly: the backstop for edits whose check was lost (broker down at commit, raw SQL)."""
    return len(services.signatures_sweep())
